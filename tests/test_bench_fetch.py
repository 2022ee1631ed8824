"""The fetch benchmark's arithmetic: medians per configuration and the ratios judged against the targets.

The rows here are made up on purpose (known numbers in, known ratios out); the benchmark's
real measurements come from `rlmlab bench fetch`.
"""

from __future__ import annotations

import json

import pytest

from rlmlab.bench.fetch import QUICK, summarise
from rlmlab.bench.report import write_fetch_report, write_index
from rlmlab.storage_pricing import STORAGE_PRICES, storage_costs


def _rows(ttfb: float, naive_whole: float, parallel_whole: float, best_whole: float) -> list[dict]:
    base = {"ttfb_ms": ttfb, "gets": 1, "bytes_fetched": 1}
    rows = []
    for repeat, jitter in enumerate([1.0, 1.1, 0.9]):  # medians must ignore the jitter
        def row(workload, policy, layout, size, wall, stall=None, requests=1):
            return {**base, "repeat": repeat, "workload": workload, "policy": policy, "layout": layout,
                    "segment_bytes": size, "wall_s": wall * jitter, "stall_s": (wall if stall is None else stall) * jitter,
                    "requests": requests, **storage_costs(gets=requests, bytes_out=10_000_000)}
        rows += [
            row("whole_read", "sequential/none/none", "monocontext", 100_000, naive_whole, requests=101),
            row("whole_read", "parallel/memory/none", "monocontext", 100_000, parallel_whole, requests=101),
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
    usd = at50["whole_read"]["usd_per_1000_reads"]
    s3 = STORAGE_PRICES["s3-in-region"]
    assert usd["naive"]["s3-in-region"] == 1000 * s3.cost(gets=101) and usd["best_overall"]["s3-in-region"] == 1000 * s3.cost(gets=1)
    assert usd["naive"]["s3-internet"] > usd["naive"]["s3-in-region"]  # egress on top of requests
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
    assert "Cost of 1,000 whole reads" in report
    for plot in ("whole_read.png", "whole_read_cost.png", "paced_scan.png", "cold_slice.png"):
        assert (tmp_path / plot).stat().st_size > 0
    (tmp_path / "fetch").mkdir()
    index = write_index(tmp_path, {"fetch": summary}).read_text()
    assert "by_ttfb_ms.50.whole_read.best_same_layout.speedup | 20" in index


def test_slow_tail_compares_hedged_with_unhedged_reads(tmp_path):
    rows = _rows(50.0, naive_whole=50.0, parallel_whole=2.5, best_whole=1.0)
    for repeat in range(3):
        for workload, hedged, plain in (("slow_tail_whole_read", 0.4, 2.4), ("slow_tail_targeted_reads", 2.0, 6.0)):
            for policy, wall, requests in (("parallel/memory/none", hedged, 105), ("parallel/memory/none (no hedge)", plain, 100)):
                rows.append({"ttfb_ms": 50.0, "repeat": repeat, "workload": workload, "policy": policy, "layout": "monocontext",
                             "segment_bytes": 100_000, "wall_s": wall, "stall_s": wall, "gets": requests, "bytes_fetched": 1,
                             "requests": requests, **storage_costs(gets=requests, bytes_out=1)})
    summary = summarise(rows, {"median_ms": 1.5, "p90_ms": 3.0}, [50.0], QUICK, 3, quick=True)
    tail = summary["slow_tail"]
    assert tail["whole_read"]["speedup"] == pytest.approx(6.0) and tail["targeted_reads"]["speedup"] == pytest.approx(3.0)
    assert abs(tail["whole_read"]["extra_requests_pct"] - 5.0) < 1e-9 and tail["whole_read"]["repeats"] == 3
    assert summary["by_ttfb_ms"]["50"]["whole_read"]["best_same_layout"]["speedup"] == 20.0  # tail rows kept apart
    report = write_fetch_report(tmp_path, rows, summary).read_text()
    assert "Slow tail" in report and "**6.0×**" in report and "+5.0% requests" in report
