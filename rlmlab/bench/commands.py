"""`rlmlab bench SUITE [--quick]`: one suite module per name, imported only when it runs.

A suite module (listed in SUITES) exposes `add_arguments(parser)` and `run(args) -> dict`
(the summary it wrote). `rlmlab bench quick` runs every suite in its quick mode: the main
job of `make run`.
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

SUITES = {
    "fetch": "rlmlab.bench.fetch",
    "engine": "rlmlab.bench.engine",
    "ingest": "rlmlab.bench.ingest",
    "redact": "rlmlab.bench.redact",
    "hooks": "rlmlab.bench.hooks",
    "replay": "rlmlab.bench.replay",
    "tracing": "rlmlab.bench.tracing",
}


def _load(name: str):
    return importlib.import_module(SUITES[name])


def suite_parser(name: str) -> argparse.ArgumentParser:
    """The full argument parser of one suite (its module is imported only when it runs)."""
    module = _load(name)
    parser = argparse.ArgumentParser(prog=f"rlmlab bench {name}", description=module.__doc__)
    parser.add_argument("--quick", action="store_true", help="scaled-down workloads of the same shape")
    parser.add_argument("--out", default="results", help="results directory (default: results/)")
    module.add_arguments(parser)
    return parser


def add_commands(subparsers) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="run a benchmark suite and write its results",
        description="Suites: " + ", ".join(SUITES) + ", or `quick` for every suite in quick mode. "
        "`rlmlab bench SUITE --help` lists a suite's options.",
    )
    bench.add_argument("suite", choices=[*SUITES, "quick"])
    bench.add_argument("suite_args", nargs=argparse.REMAINDER, help="the suite's own options")
    bench.set_defaults(func=_run)


def _run(args) -> int:
    if args.suite == "quick":
        return _run_all_quick(args.suite_args)
    suite_args = suite_parser(args.suite).parse_args(args.suite_args)
    summary = _load(args.suite).run(suite_args)
    print(json.dumps({k: v for k, v in summary.items() if k != "machine"}, indent=2, default=str))
    return 0


def _run_all_quick(argv: list[str]) -> int:
    """Every suite in quick mode, one after another, then `REPORT.md` over all of them."""
    from .report import write_index

    common = argparse.ArgumentParser(prog="rlmlab bench quick")
    common.add_argument("--out", default="results")
    out = common.parse_args(argv).out
    summaries = {}
    for name in SUITES:
        print(f"== rlmlab bench {name} --quick --out {out}", flush=True)
        summary = _load(name).run(suite_parser(name).parse_args(["--quick", "--out", out]))
        written = Path(out) / name / "summary.json"  # as written, with the machine it ran on
        summaries[name] = json.loads(written.read_text()) if written.exists() else summary
    print(f"report: {write_index(out, summaries)}")
    return 0
