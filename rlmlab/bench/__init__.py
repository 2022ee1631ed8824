"""Benchmark suites: each one a module writing tidy results plus `summary.json`."""
