"""The CLI's command registry, and the small import footprint the Claude Code hooks rely on."""

import argparse
import importlib
import subprocess
import sys

import pytest

from rlmlab.cli import COMMANDS, main


def test_every_module_adds_exactly_the_commands_the_registry_gives_it():
    for module in set(COMMANDS.values()):
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        importlib.import_module(module).add_commands(subparsers)
        assert set(subparsers.choices) == {command for command, owner in COMMANDS.items() if owner == module}


def test_help_lists_every_command_and_a_typo_is_named(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    assert all(command in listed for command in COMMANDS)
    with pytest.raises(SystemExit) as stop:
        main(["trnascripts", "flush"])
    assert stop.value.code == 2 and "trnascripts" in capsys.readouterr().err


def test_a_hook_run_imports_neither_the_engine_nor_the_server_nor_boto3():
    probe = (
        "import sys\n"
        "from rlmlab.cli import build_parser\n"
        "args = build_parser('transcripts').parse_args(['transcripts', 'hook', 'session-end'])\n"
        "import rlmlab.transcripts.hooks\n"
        "heavy = ('rlmlab.sim', 'rlmlab.rlm', 'rlmlab.llm', 'rlmlab.replay', 'rlmlab.bench', 'boto3', 'pandas', 'openai')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
