"""`rlmlab` command line: a thin layer over the package.

Each area adds its own subcommands through an `add_commands(subparsers)` function in the
module listed in COMMANDS, so this file stays small and nobody edits it to add a flag.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Top-level command -> the module that adds it. A run imports only its command's module:
# the Claude Code hooks must answer fast, and they need neither the engine nor the server.
COMMANDS = {
    "s3": "rlmlab.sim",
    "bench": "rlmlab.bench.commands",
    "transcripts": "rlmlab.transcripts.commands",
    "data": "rlmlab.transcripts.commands",
    "ask": "rlmlab.rlm.commands",
    "record": "rlmlab.replay.commands",
    "replay": "rlmlab.replay.commands",
    "gc": "rlmlab.gc",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for `command` alone when it is known, else for every command (help, typos)."""
    parser = argparse.ArgumentParser(prog="rlmlab", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
