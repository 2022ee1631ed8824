"""`rlmlab` command line: a thin layer over the package.

Each area adds its own subcommands through an `add_commands(subparsers)` function in the
module listed in COMMAND_MODULES, so this file stays small and nobody edits it to add a flag.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = [
    "rlmlab.sim",
    "rlmlab.bench.commands",
    "rlmlab.transcripts.commands",
    "rlmlab.rlm.commands",
    "rlmlab.replay.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlmlab", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
