"""The Context's access events: raw records on the warm path, AccessEvents whenever read.

A slice logs a flat raw record (`Trace.access_log`) and the trace builds AccessEvents
lazily; these tests check that nothing is lost or reordered by that: the fields equal
what an eager AccessEvent would hold, raw and eagerly recorded accesses keep their
order, concurrent slices and readers neither drop nor tear records, and `clear()` keeps
working for a Context that holds the log.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid

import pytest

from rlmlab.context import Context
from rlmlab.layout import write_context
from rlmlab.stores import MemoryStore
from rlmlab.trace import ACCESS_RECORD_WIDTH, AccessEvent, Trace

TEXT = "".join(f"{i:03d} ünïcödé line, € and 🎉\n" for i in range(120))


@pytest.fixture
def ctx():
    store = MemoryStore(f"trace-{uuid.uuid4().hex}")
    manifest = write_context(TEXT, store, segment_bytes=300, progress=False)
    with Context.from_manifest(store, manifest, fetch="sequential", prefetch="none") as context:
        yield context


def test_slice_events_hold_what_an_eager_event_would(ctx):
    segs = ctx.manifest.segments
    inside = (segs[2].char_offset + 1, segs[2].char_offset + 9)  # within one segment
    across = (segs[4].char_offset - 3, segs[6].char_offset + 2)  # segments 3 to 6
    for lo, hi in (inside, inside, across, across):
        assert ctx[lo:hi] == TEXT[lo:hi]
    ctx[5:5]  # empty: still an access
    cold_in, warm_in, cold_across, warm_across, empty = ctx.trace["access"]
    assert all(type(e) is AccessEvent for e in ctx.trace["access"])
    assert (cold_in.char_start, cold_in.char_stop, cold_in.segments, cold_in.bytes_needed) == (
        *inside, 1, segs[2].byte_length)
    assert (cold_in.hits, cold_in.misses, cold_in.gets) == (0, 1, 1) and cold_in.stall_s > 0
    assert (warm_in.hits, warm_in.misses, warm_in.gets, warm_in.stall_s) == (1, 0, 0, 0.0)
    assert (cold_across.segments, cold_across.misses, cold_across.gets) == (4, 4, 4)
    assert cold_across.bytes_needed == sum(s.byte_length for s in segs[3:7])
    assert (warm_across.hits, warm_across.misses, warm_across.gets, warm_across.stall_s) == (4, 0, 0, 0.0)
    assert (empty.char_start, empty.char_stop, empty.segments, empty.bytes_needed) == (5, 5, 0, 0)
    starts = [e.start for e in ctx.trace["access"]]
    assert starts == sorted(starts) and 0 <= starts[0] < ctx.trace.now()
    assert all(e.wall_s >= e.stall_s >= 0 for e in ctx.trace["access"])


def test_raw_and_recorded_accesses_keep_their_order(ctx):
    ctx[0:10]
    assert ctx.find("005") == TEXT.find("005")  # a scan: recorded as an AccessEvent right away
    ctx[20:30]
    ctx.trace.record(AccessEvent(ctx.trace.now(), "external", 0, 1, 1, 1, 1, 0, 0, 0.0, 0.0))
    ctx.lines(2, 4)
    ctx[40:50]
    assert [e.op for e in ctx.trace.events["access"]] == ["slice", "find", "slice", "external", "lines", "slice"]
    frame = ctx.trace.to_pandas("access")
    assert list(frame.columns) == [f.name for f in dataclasses.fields(AccessEvent)]
    assert [tuple(row) for row in frame.itertuples(index=False)] == [
        dataclasses.astuple(e) for e in ctx.trace["access"]
    ]
    assert ctx.trace.summary()["accesses"] == 6


def test_clear_keeps_the_log_a_context_writes_to(ctx):
    ctx[0:10]
    ctx.trace["access"]
    ctx[10:20]  # still raw when cleared
    ctx.trace.clear()
    assert ctx.trace["access"] == [] and ctx.trace.access_log == []
    ctx[30:40]
    assert [(e.char_start, e.char_stop) for e in ctx.trace["access"]] == [(30, 40)]


def test_a_disabled_trace_logs_nothing():
    trace = Trace(enabled=False)
    trace.record(AccessEvent(0.0, "slice", 0, 1, 1, 1, 1, 0, 0, 0.0, 0.0))
    assert trace.events["access"] == [] and trace.access_log == []


def test_concurrent_slices_and_readers_lose_and_tear_nothing(ctx):
    """Records are added by one atomic extend each, and read while they keep coming."""
    ctx[:]  # warm
    per_thread, threads = 2_000, 4
    stop_reading = threading.Event()
    seen_lengths, problems = [], []

    def slicer(k: int) -> None:
        for j in range(per_thread):
            lo = (k * 997 + j * 13) % (len(TEXT) - 50)
            if ctx[lo : lo + 1 + k] != TEXT[lo : lo + 1 + k]:
                problems.append(("wrong text", lo, k))

    def reader() -> None:
        while not stop_reading.is_set():
            seen_lengths.append(len(ctx.trace["access"]))
            if len(ctx.trace.access_log) % ACCESS_RECORD_WIDTH:
                problems.append("a partial record in the raw log")

    watcher = threading.Thread(target=reader)
    watcher.start()
    workers = [threading.Thread(target=slicer, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop_reading.set()
    watcher.join()
    assert problems == []
    events = ctx.trace["access"][1:]  # after the warming read
    assert len(events) == threads * per_thread and seen_lengths == sorted(seen_lengths)
    assert all(e.op == "slice" and 1 <= e.char_stop - e.char_start <= threads for e in events)
    assert all((e.segments, e.hits, e.misses, e.gets) in ((1, 1, 0, 0), (2, 2, 0, 0)) for e in events)
