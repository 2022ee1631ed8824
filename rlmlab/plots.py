"""Figures drawn from a `Trace`: where a run's time went.

`timeline(trace)` is a Gantt chart with one band per kind of work: root-model calls (one
lane per depth), sub-calls (packed into as many lanes as were in flight at once), REPL
cells, and storage stalls (Context accesses that waited on storage, drawn at the end of
the access where the wait happened). Failed model calls are hatched.
"""

from __future__ import annotations

COLORS = {"root": "#1f77b4", "sub": "#ff7f0e", "cell": "#2ca02c", "stall": "#d62728"}


def _pack(spans: list[tuple[float, float, bool]]) -> list[list[tuple[float, float, bool]]]:
    """Greedy interval packing: each span goes to the first lane free at its start."""
    lanes: list[list[tuple[float, float, bool]]] = []
    ends: list[float] = []
    for span in sorted(spans):
        for i, end in enumerate(ends):
            if span[0] >= end:
                lanes[i].append(span)
                ends[i] = span[1]
                break
        else:
            lanes.append([span])
            ends.append(span[1])
    return lanes


def timeline_rows(trace) -> list[tuple[str, str, list[tuple[float, float, bool]]]]:
    """(label, color key, [(start, end, failed)]) per lane, top to bottom: what `timeline` draws."""
    rows = []
    llm = trace["llm"]
    for depth in sorted({e.depth for e in llm if e.role == "root"}):
        spans = [(e.start, e.start + e.latency_s, e.error is not None) for e in llm if e.role == "root" and e.depth == depth]
        rows.append((f"root (depth {depth})", "root", spans))
    sub_lanes = _pack([(e.start, e.start + e.latency_s, e.error is not None) for e in llm if e.role == "sub"])
    rows += [(f"sub-calls {i + 1}" if len(sub_lanes) > 1 else "sub-calls", "sub", lane) for i, lane in enumerate(sub_lanes)]
    cell_lanes = _pack([(c.start, c.start + c.duration_s, c.error is not None) for c in trace["cell"]])
    rows += [("REPL cells" if i == 0 else f"REPL cells {i + 1}", "cell", lane) for i, lane in enumerate(cell_lanes)]
    stalls = [(a.start + a.wall_s - a.stall_s, a.start + a.wall_s, False) for a in trace["access"] if a.stall_s > 0]
    if stalls:
        rows.append(("storage stalls", "stall", stalls))
    return rows


def timeline(trace, ax=None, *, title: str | None = None):
    """Draw the run's Gantt chart; returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    rows = timeline_rows(trace)
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 1.2 + 0.35 * max(len(rows), 1)))
    for y, (label, kind, spans) in enumerate(reversed(rows)):
        ok = [(s, e - s) for s, e, failed in spans if not failed]
        bad = [(s, e - s) for s, e, failed in spans if failed]
        ax.broken_barh(ok, (y - 0.4, 0.8), facecolors=COLORS[kind], edgecolors="white", linewidth=0.8)
        if bad:
            ax.broken_barh(bad, (y - 0.4, 0.8), facecolors="white", edgecolors=COLORS[kind], hatch="///")
    ax.set_yticks(range(len(rows)), [label for label, _, _ in reversed(rows)])
    ax.set_xlabel("seconds since the trace began")
    ax.set_xlim(left=0)
    if title:
        ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return ax
