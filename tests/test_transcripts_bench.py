"""The ingest and redact suites run end to end on tiny inputs and write their results."""

from __future__ import annotations

import argparse
import json

import pytest


@pytest.mark.parametrize("suite", ["ingest", "redact"])
def test_suite_runs_small(suite, tmp_path):
    import importlib

    module = importlib.import_module(f"rlmlab.bench.{suite}")
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    extra = ["--size", "100kB", "--repeats", "1"] + (["--seeds", "2"] if suite == "redact" else [])
    args = parser.parse_args(extra)
    args.quick, args.out = True, str(tmp_path)
    summary = module.run(args)
    written = json.loads((tmp_path / suite / "summary.json").read_text())
    assert (tmp_path / suite / "results.parquet").exists()
    if suite == "ingest":
        synthetic = written["inputs"]["synthetic"]
        assert synthetic["bytes"] >= 100_000 and synthetic["speedup_vs_claude_code_log"] > 0
    else:
        assert summary["rlmlab"]["recall"] == 1.0 and summary["rlmlab"]["false_positive_lines"] == 0
        assert 0 <= written["detect-secrets"]["recall"] <= 1


@pytest.mark.slow
def test_hooks_suite_runs_small(tmp_path):
    from rlmlab.bench import hooks as briefing

    if not briefing.RECORDING.is_file():
        pytest.skip(f"no shipped recording at {briefing.RECORDING}")
    parser = argparse.ArgumentParser()
    briefing.add_arguments(parser)
    args = parser.parse_args(["--repeats", "1", "--ttfb", "0", "--end-runs", "2"])
    args.quick, args.out = True, str(tmp_path)
    summary = briefing.run(args)
    assert summary["sessions"] == 120 and summary["briefing_chars"] > 0
    assert summary["replay_divergences"] == [0]
    assert summary["spool_delivery"] == {"spooled": 2, "sent_after_recovery": 2, "exactly_once": True}
    assert summary["hook_process_median_s"] > 0 and summary["on_demand_rlm_median_s"] > 0
