"""`rlmlab bench tracing` writes tidy rows and a summary (its numbers are reported, never asserted)."""

from __future__ import annotations

import argparse
import json

import pandas as pd

from rlmlab.bench import tracing


def test_tracing_suite_writes_results_and_summary(tmp_path):
    parser = argparse.ArgumentParser()
    tracing.add_arguments(parser)
    args = parser.parse_args(["--repeats", "2", "--context-mb", "2"])
    args.quick, args.out = True, str(tmp_path)
    summary = tracing.run(args)
    rows = pd.read_parquet(tmp_path / "tracing" / "results.parquet")
    assert set(rows.slice_chars) == set(tracing.SIZES) and len(rows) == 2 * len(tracing.SIZES)
    assert (rows.on_us > 0).all() and (rows.off_us > 0).all()
    written = json.loads((tmp_path / "tracing" / "summary.json").read_text())
    assert written["by_slice_chars"].keys() == summary["by_slice_chars"].keys() == {str(s) for s in tracing.SIZES}
    assert written["quick"] is True and "quick mode" in written["note"]


def test_tracing_summary_derives_its_threshold_from_the_measurements(tmp_path):
    parser = argparse.ArgumentParser()
    tracing.add_arguments(parser)
    args = parser.parse_args(["--repeats", "1", "--context-mb", "2"])
    args.quick, args.out = True, str(tmp_path)
    summary = tracing.run(args)
    by_size = summary["by_slice_chars"]
    for row in by_size.values():
        assert row["meets_target"] == (row["ratio"] < summary["target_ratio"]) and row["materialise_us"] > 0
    meeting = [size for size in tracing.SIZES if by_size[str(size)]["meets_target"]]
    threshold = summary["meets_target_from_slice_chars"]
    if threshold is None:
        assert not by_size[str(tracing.SIZES[-1])]["meets_target"]
    else:
        assert meeting and set(meeting) >= {s for s in tracing.SIZES if s >= threshold}
        below = [s for s in tracing.SIZES if s < threshold]
        assert not below or not by_size[str(below[-1])]["meets_target"]
    assert 0 < summary["clock_pair_us"] < by_size["100"]["on_us"]
