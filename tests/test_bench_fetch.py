"""The fetch benchmark's arithmetic: medians per configuration and the ratios judged against the targets.

The rows here are made up on purpose (known numbers in, known ratios out); the benchmark's
real measurements come from `rlmlab bench fetch`.
"""

from __future__ import annotations

import json

from rlmlab.bench.fetch import QUICK, summarise
from rlmlab.bench.report import write_fetch_report, write_index


def _rows(ttfb: float, naive_whole: float, parallel_whole: float, best_whole: float) -> list[dict]:
    base = {"ttfb_ms": ttfb, "gets": 1, "bytes_fetched": 1}
    rows = []
    for repeat, jitter in enumerate([1.0, 1.1, 0.9]):  # medians must ignore the jitter
        def row(workload, policy, layout, size, wall, stall=None):
            return {**base, "repeat": repeat, "workload": workload, "policy": policy, "layout": layout,
                    "segment_bytes": size, "wall_s": wall * jitter, "stall_s": (wall if stall is None else stall) * jitter}
        rows += [
            row("whole_read", "sequential/none/none", "monocontext", 100_000, naive_whole),
            row("whole_read", "parallel/memory/none", "monocontext", 100_000, parallel_whole),
            row("whole_read", "parallel/memory/none", "segments", 1_000_000, best_whole),
            row("whole_read", "s3fs (default readahead)", "single", 10_000_000, best_whole / 2),
            row("cold_slice", "one GET of the same size", "object", 1_000_000, 0.05),
            row("cold_slice", "parallel/none/none", "segments", 100_000, 0.06),
            row("paced_scan", "sequential/none/none", "segments", 1_000_000, 9.0, stall=8.0),
            row("paced_scan", "parallel/memory/adaptive", "segments", 1_000_000, 8.0, stall=0.06),
        ]
    return rows


def test_summary_ratios_and_targets(tmp_path):
    rows = _rows(50.0, naive_whole=50.0, parallel_whole=2.5, best_whole=1.0)
    summary = summarise(rows, {"median_ms": 1.5, "p90_ms": 3.0}, [50.0], QUICK, 3, quick=True)
    at50 = summary["by_ttfb_ms"]["50"]
    assert at50["whole_read"]["best_same_layout"]["speedup"] == 20.0
    # s3fs is reported beside rlmlab, not counted as rlmlab's best
    assert at50["whole_read"]["best_overall"]["policy"] == "parallel/memory/none"
    assert at50["whole_read"]["best_overall"]["speedup"] == 50.0
    assert at50["whole_read"]["s3fs_speedup"] == 100.0
    assert abs(at50["cold_slice"]["ratio_to_one_get"] - 1.2) < 1e-9
    assert at50["paced_scan"]["best_stall_s"] == 0.06
    assert summary["targets_at_50ms"] == {
        "whole_read_same_layout_speedup>=10": True,
        "whole_read_best_layout_speedup>=30": True,
        "cold_slice_ratio<=1.5": True,
        "paced_scan_stall<=2xTTFB": True,
    }
    json.dumps(summary)  # plain JSON types only

    slow = summarise(_rows(50.0, naive_whole=5.0, parallel_whole=2.5, best_whole=1.0), {"median_ms": 1, "p90_ms": 1}, [50.0], QUICK, 3, quick=True)
    assert slow["targets_at_50ms"]["whole_read_same_layout_speedup>=10"] is False


def test_report_states_the_numbers_of_the_summary(tmp_path):
    rows = _rows(50.0, naive_whole=50.0, parallel_whole=2.5, best_whole=1.0)
    summary = summarise(rows, {"median_ms": 1.5, "p90_ms": 3.0}, [50.0], QUICK, 3, quick=True)
    report = write_fetch_report(tmp_path, rows, summary).read_text()
    assert "**20.0×**" in report and "**50.0×**" in report and "quick mode" in report
    for plot in ("whole_read.png", "paced_scan.png", "cold_slice.png"):
        assert (tmp_path / plot).stat().st_size > 0
    (tmp_path / "fetch").mkdir()
    index = write_index(tmp_path, {"fetch": summary}).read_text()
    assert "by_ttfb_ms.50.whole_read.best_same_layout.speedup | 20" in index
