"""Human-readable reports of benchmark results: a Markdown page and its plots.

Numbers in the page come from the results frame and summary the suite wrote, never from
this module, so the words and the data cannot drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure  # figures without pyplot: no backend, no global state


def _colors():
    from itertools import cycle

    from matplotlib import rcParams

    return cycle(rcParams["axes.prop_cycle"].by_key()["color"])


def _label(row) -> str:
    size = int(row.segment_bytes)
    size_text = f"{size / 1e6:g} MB" if size >= 1_000_000 else f"{size / 1e3:g} KB"
    return f"{row.policy} · {row.layout} {size_text}"


def _medians(rows) -> pd.DataFrame:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    keys = ["ttfb_ms", "workload", "policy", "layout", "segment_bytes"]
    return frame.drop(columns="repeat").groupby(keys, as_index=False).median(numeric_only=True)


def plot_fetch(med: pd.DataFrame, out: Path) -> list[Path]:
    paths = []
    fig = Figure(figsize=(9, 5))
    ax = fig.subplots()
    whole = med[med.workload == "whole_read"]
    for label, group in whole.assign(label=whole.apply(_label, axis=1)).groupby("label"):
        ax.plot(group.ttfb_ms, group.wall_s, marker="o", label=label)
    ax.set(xlabel="time to first byte (ms)", ylabel="whole read, median seconds (log)", yscale="log",
           title="Reading a whole context: policy and layout")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "whole_read.png")
    fig.savefig(paths[-1], dpi=110)

    if "cost_usd_s3-in-region" in whole:
        fig = Figure(figsize=(10, 5))
        ax = fig.subplots()
        markers = dict(zip(sorted(whole.ttfb_ms.unique()), "os^Dv"))
        labelled = whole.assign(label=whole.apply(_label, axis=1))
        for (label, group), color in zip(labelled.groupby("label"), _colors()):
            for i, (_, row) in enumerate(group.iterrows()):
                ax.scatter(row.wall_s, 1000 * row["cost_usd_s3-in-region"], color=color, marker=markers[row.ttfb_ms],
                           label=None if i else label)
        ax.set(xscale="log", yscale="log", xlabel="whole read, median seconds (log); marker: " +
               ", ".join(f"{m} {t:g} ms" for t, m in markers.items()),
               ylabel="USD per 1,000 whole reads\n(S3 requests, in-region; log)", title="Time and request cost of a whole read")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.tight_layout()
        paths.append(out / "whole_read_cost.png")
        fig.savefig(paths[-1], dpi=110)

    for workload, column, title in [
        ("paced_scan", "stall_s", "Paced scan (64 KB chunks, 50 ms thinking): total stall on storage"),
        ("cold_slice", "wall_s", "Cold 1 MB slice over 10 segments vs one GET of 1 MB"),
    ]:
        part = med[med.workload == workload]
        table = part.pivot_table(index="policy", columns="ttfb_ms", values=column)
        fig = Figure(figsize=(9, 4.5))
        ax = fig.subplots()
        table.plot.bar(ax=ax, rot=20)
        ax.set(ylabel=f"median {column.replace('_s', '')} (s)", title=title)
        ax.legend(title="TTFB ms")
        fig.tight_layout()
        paths.append(out / f"{workload}.png")
        fig.savefig(paths[-1], dpi=110)
    return paths


def _cost_line(usd: dict) -> str:
    stores = list(usd["naive"])
    per = lambda name: " / ".join(f"${usd[name][store]:.4g}" for store in stores)  # noqa: E731
    return f"- Cost of 1,000 whole reads ({' / '.join(stores)}): naive {per('naive')}; rlmlab's best {per('best_overall')}."


def write_fetch_report(out: Path, rows, summary: dict) -> Path:
    med = _medians(rows)
    plots = plot_fetch(med, out)
    floor = summary["server_floor_ms"]
    lines = [
        "# rlmlab bench fetch",
        "",
        f"Server floor (one small GET, nothing injected): median {floor['median_ms']:.2f} ms, p90 {floor['p90_ms']:.2f} ms.",
        f"Scale: {json.dumps(summary['scale'])}" + (" — **quick mode**: fewer segments of the same sizes." if summary["quick"] else ""),
        "",
    ]
    for ttfb, s in summary["by_ttfb_ms"].items():
        w, c, p = s["whole_read"], s["cold_slice"], s["paced_scan"]
        lines += [
            f"## TTFB {ttfb} ms",
            "",
            f"- Whole read: naive sequential {w['naive_s']:.2f} s; best on the seed layout "
            f"`{w['best_same_layout']['policy']}` {w['best_same_layout']['s']:.2f} s "
            f"(**{w['best_same_layout']['speedup']:.1f}×**); best overall `{w['best_overall']['policy']}` on "
            f"{w['best_overall']['layout']} {w['best_overall']['s']:.2f} s (**{w['best_overall']['speedup']:.1f}×**); "
            f"s3fs reading the single object as raw bytes (no checksum, no decoding) {w['s3fs_single_object_s']:.2f} s "
            f"({w['s3fs_speedup']:.1f}×).",
            *([_cost_line(w["usd_per_1000_reads"])] if "usd_per_1000_reads" in w else []),
            f"- Cold 1 MB slice over 10 segments: `{c['best_policy']}` ({c['best_layout']}) {c['best_s'] * 1000:.0f} ms vs one GET "
            f"{c['one_get_s'] * 1000:.0f} ms (**{c['ratio_to_one_get']:.2f}×**).",
            f"- Paced scan: naive stalls {p['naive_stall_s']:.2f} s; `{p['best_policy']}` stalls {p['best_stall_s'] * 1000:.0f} ms"
            + (f" ({p['best_stall_in_ttfbs']:.1f} × TTFB)." if p["best_stall_in_ttfbs"] is not None else "."),
            "",
        ]
    tail = summary.get("slow_tail")
    if tail:
        lines += [f"## Slow tail: {tail['slow_rate']:.0%} of reads held back {tail['slow_ms'] / 1000:.0f} s", ""]
        for workload in ("whole_read", "targeted_reads"):
            if workload in tail:
                t = tail[workload]
                lines.append(
                    f"- {workload.replace('_', ' ')} at {t['ttfb_ms']:.0f} ms TTFB (`{t['policy']}`): hedged GETs {t['hedged_s']:.2f} s, "
                    f"without {t['unhedged_s']:.2f} s (**{t['speedup']:.1f}×**), for {t['extra_requests_pct']:+.1f}% requests "
                    f"(medians of {t['repeats']})."
                )
        lines.append("")
    if summary.get("targets_at_50ms"):
        lines += ["## Targets at 50 ms TTFB", ""]
        lines += [f"- {name}: {'met' if ok else '**not met**'}" for name, ok in summary["targets_at_50ms"].items()]
        lines.append("")
    lines += ["## Medians", "", "```", med.to_string(index=False, float_format=lambda v: f"{v:.4f}"), "```", ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path



def _flatten(value, prefix: str = ""):
    """(dotted.key, scalar) pairs of a nested summary, lists of scalars joined."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, inner in enumerate(value):
            yield from _flatten(inner, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def write_index(out: str | Path, summaries: dict[str, dict]) -> Path:
    """`REPORT.md` over every suite that ran: each summary's numbers, and links to its files."""
    out = Path(out)
    lines = ["# rlmlab benchmark report", ""]
    for name, summary in summaries.items():
        machine = summary.get("machine", {})
        lines += [f"## {name}", ""]
        if machine:
            lines.append(f"Run {machine.get('when', '?')} on {machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}.")
        links = [f"[{p.name}]({name}/{p.name})" for p in sorted((out / name).glob("*")) if p.suffix in {".md", ".png", ".csv", ".json"}]
        if links:
            lines.append("Files: " + ", ".join(links))
        lines += ["", "| measure | value |", "|---|---|"]
        lines += [f"| {key} | {_cell(value)} |" for key, value in _flatten({k: v for k, v in summary.items() if k != "machine"})]
        lines.append("")
    path = out / "REPORT.md"
    path.write_text("\n".join(lines) + "\n")
    return path
