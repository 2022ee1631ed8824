"""One `Trace` per run: every Context access, every GET, every LLM call and every REPL cell.

Events are small slotted dataclasses appended to per-kind lists (a list append is atomic
under the GIL, so worker threads record without a lock). Times are seconds relative to
the trace's origin, so events from storage, the engine and the REPL share one clock and
line up in `rlmlab.plots.timeline`.

Context accesses are the exception, because a warm slice takes about a microsecond and
keeping one `AccessEvent` per slice would add a tenth of that (building the object, and
the garbage collector re-scanning a long list of them): the Context extends a flat list
of plain numbers instead (`Trace.access_log`), and the trace turns it into AccessEvents
whenever its events are read. Nothing is lost, only deferred.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from operator import attrgetter
from typing import Any


@dataclass(slots=True)
class AccessEvent:
    """One operation on a Context (a slice, a find, a regex scan...)."""

    start: float
    op: str
    char_start: int
    char_stop: int
    bytes_needed: int
    segments: int
    hits: int
    misses: int
    gets: int
    stall_s: float
    wall_s: float


@dataclass(slots=True)
class GetEvent:
    """One attempt at one GET (a whole object or a byte range) against a store."""

    start: float
    key: str
    byte_start: int | None
    byte_stop: int | None
    nbytes: int
    latency_s: float
    attempt: int
    outcome: str  # "ok" or the error kind that caused a retry or a failure
    purpose: str = "demand"  # "demand" (a reader waits) or "prefetch"
    requests: int = 1  # 2 when the GET was slow and a hedged duplicate was sent (both are billed)


@dataclass(slots=True)
class LLMCallEvent:
    """One call to a language model, root or sub."""

    start: float
    role: str  # "root" or "sub"
    depth: int
    model: str
    batch_id: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    latency_s: float
    cost_usd: float
    usage_estimated: bool = False
    error: str | None = None


@dataclass(slots=True)
class CellEvent:
    """One REPL cell the root model's code ran."""

    start: float
    depth: int
    iteration: int
    code: str
    duration_s: float
    output_chars: int
    error: str | None = None


EVENT_KINDS: dict[str, type] = {
    "access": AccessEvent,
    "get": GetEvent,
    "llm": LLMCallEvent,
    "cell": CellEvent,
}
_KIND_OF = {cls: kind for kind, cls in EVENT_KINDS.items()}

# What one Context access cost, as a plain list (the cheapest thing to allocate on the
# warm path): the Context counts segments and bytes when it scans, the segment reader adds
# misses, GETs and stall time, and only when something was missing.
SEGMENTS, NBYTES, MISSES, GETS, STALL = range(5)


def new_stats() -> list:
    return [0, 0, 0, 0, 0.0]


ACCESS_RECORD_WIDTH = 8  # items per access in the raw log: see `Trace.access_log`


def _access_events(log: list, origin: float) -> list[AccessEvent]:
    """AccessEvents from whole records of the raw access log."""
    events = []
    fields = [iter(log)] * ACCESS_RECORD_WIDTH
    for began, ended, op, char_start, char_stop, nbytes, segments, stats in zip(*fields):
        misses, gets, stall = (0, 0, 0.0) if stats is None else (stats[MISSES], stats[GETS], stats[STALL])
        events.append(
            AccessEvent(
                began - origin, op, char_start, char_stop, nbytes, segments,
                segments - misses, misses, gets, stall, ended - began,
            )
        )
    return events


class Trace:
    """Collects events of every kind on one clock; `to_pandas()` gives tidy frames."""

    def __init__(self, enabled: bool = True, origin: float | None = None):
        self.enabled = enabled
        self.origin = time.perf_counter() if origin is None else origin
        self._events: dict[str, list] = {k: [] for k in EVENT_KINDS}
        self._pending: list = []  # the raw access log, oldest first (see `access_log`)
        self._flush_lock = threading.Lock()

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={len(v)}" for k, v in self.events.items())
        return f"Trace(enabled={self.enabled}, origin={self.origin}, {counts})"

    @property
    def events(self) -> dict[str, list]:
        """Every event so far, by kind (``{"access": [...], "get": [...], ...}``)."""
        self._flush()
        return self._events

    def now(self) -> float:
        """Seconds since this trace's origin."""
        return time.perf_counter() - self.origin

    def record(self, event: Any) -> None:
        if not self.enabled:
            return
        kind = _KIND_OF[type(event)]
        if kind != "access":
            self._events[kind].append(event)
            return
        with self._flush_lock:  # after the raw accesses logged before it
            self._flush_locked()
            self._events[kind].append(event)

    @property
    def access_log(self) -> list:
        """The raw log of Context accesses, for the Context's warm path: extend only.

        Each access is `ACCESS_RECORD_WIDTH` consecutive items, added by one
        `extend((began, ended, op, char_start, char_stop, bytes_needed, segments,
        stats))` (atomic under the GIL, so threads never interleave inside a record):
        `perf_counter()` readings at its start and end, and the reader's `new_stats()`
        list (misses, GETs, stall) or None when every segment was a cache hit. Appending
        one tuple per access would leave a tuple per access for the garbage collector to
        scan. It stays the same list across `clear()`, so a Context may keep it.
        """
        return self._pending

    def _flush(self) -> None:
        """Turn the raw access log into AccessEvents (readers call this; writers never wait)."""
        if self._pending:
            with self._flush_lock:
                self._flush_locked()

    def _flush_locked(self) -> None:
        pending = self._pending
        n = len(pending)  # a whole number of records: each was added by one atomic extend
        if n:
            batch = pending[:n]  # records added meanwhile land after n and wait for the next flush
            del pending[:n]
            self._events["access"].extend(_access_events(batch, self.origin))

    def __getitem__(self, kind: str) -> list:
        return self.events[kind]

    def clear(self) -> None:
        with self._flush_lock:
            self._pending.clear()  # in place: contexts keep it
            for events in self._events.values():
                events.clear()

    def to_pandas(self, kind: str | None = None):
        """A DataFrame per event kind (``{"access": df, "get": df, ...}``), or one kind's frame."""
        import pandas as pd

        events = self.events

        def frame(k: str):
            columns = [f.name for f in dataclasses.fields(EVENT_KINDS[k])]
            row = attrgetter(*columns)  # events are flat, so this equals dataclasses.astuple
            return pd.DataFrame([row(e) for e in events[k]], columns=columns)

        if kind is not None:
            return frame(kind)
        return {k: frame(k) for k in EVENT_KINDS}

    def summary(self) -> dict[str, float]:
        """Totals that benchmarks and notebooks print next to each run."""
        events = self.events
        gets = [g for g in events["get"] if g.outcome == "ok"]
        return {
            "accesses": len(events["access"]),
            "gets": sum(g.requests for g in events["get"]),
            "bytes_fetched": sum(g.nbytes for g in gets),
            "stall_s": sum(a.stall_s for a in events["access"]),
            "llm_calls": len(events["llm"]),
            "llm_cost_usd": sum(c.cost_usd for c in events["llm"]),
            "cells": len(events["cell"]),
        }
