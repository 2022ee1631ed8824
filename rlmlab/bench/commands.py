"""`rlmlab bench SUITE [--quick]`: one subcommand per suite module.

A suite module (listed in SUITES) exposes `add_arguments(parser)` and `run(args) -> dict`
(the summary it wrote). `rlmlab bench quick` runs every suite in its quick mode: the main
job of `make run`.
"""

from __future__ import annotations

import argparse
import importlib
import json

SUITES = {
    "fetch": "rlmlab.bench.fetch",
}


def _load(name: str):
    return importlib.import_module(SUITES[name])


def add_commands(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="run a benchmark suite and write its results")
    suites = bench.add_subparsers(dest="suite", required=True)
    for name in SUITES:
        module = _load(name)
        parser = suites.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        parser.add_argument("--quick", action="store_true", help="scaled-down workloads of the same shape")
        parser.add_argument("--out", default="results", help="results directory (default: results/)")
        module.add_arguments(parser)
        parser.set_defaults(func=lambda args, m=module: _report(m.run(args)))
    quick = suites.add_parser("quick", help="every suite in quick mode (the main job of `make run`)")
    quick.add_argument("--out", default="results")
    quick.set_defaults(func=_run_all_quick)


def _report(summary: dict) -> int:
    print(json.dumps({k: v for k, v in summary.items() if k != "machine"}, indent=2, default=str))
    return 0


def _run_all_quick(args) -> int:
    for name in SUITES:
        module = _load(name)
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        suite_args = parser.parse_args([])
        suite_args.quick, suite_args.out = True, args.out
        print(f"== rlmlab bench {name} --quick")
        module.run(suite_args)
    return 0
