"""The engine benchmark runs both engines end to end (figures are the benchmark's business, not asserted)."""

import argparse
import json

import pytest

from rlmlab.bench import engine
from rlmlab.llm import claude_code_problem


@pytest.mark.slow
def test_engine_suite_runs_both_engines_and_writes_a_summary(tmp_path):
    args = argparse.Namespace(quick=True, out=str(tmp_path), repeats=1, iterations=3)
    summary = engine.run(args)
    written = json.loads((tmp_path / "engine" / "summary.json").read_text())
    assert written["batched"]["floor_s"] == pytest.approx(0.8)
    assert summary["batched"]["rlmlab_max_in_flight"] == 16
    for key in ("rlmlab_median_s", "reference_median_s"):
        assert summary["batched"][key] >= 0.8  # nobody beats four waves of 200 ms
    assert summary["overhead"]["iterations"] == 3
    assert (tmp_path / "engine" / "results.parquet").exists()
    claude_code = summary["claude_code"]
    if claude_code_problem() is None:  # the real CLI against a fake Anthropic server: one root call a step both ways
        assert claude_code["agent_root_calls"] == claude_code["text_loop_root_calls"] == 3
        assert claude_code["agent_ms_per_iteration"] > 0 and claude_code["text_loop_ms_per_iteration"] > 0
    else:
        assert claude_code == {"skipped": claude_code_problem()}
