"""One `Trace` per run: every Context access, every GET, every LLM call and every REPL cell.

Events are small slotted dataclasses appended to per-kind lists (a list append is atomic
under the GIL, so worker threads record without a lock). Times are seconds relative to
the trace's origin, so events from storage, the engine and the REPL share one clock and
line up in `rlmlab.plots.timeline`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
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


@dataclass
class Trace:
    """Collects events of every kind on one clock; `to_pandas()` gives tidy frames."""

    enabled: bool = True
    origin: float = field(default_factory=time.perf_counter)
    events: dict[str, list] = field(default_factory=lambda: {k: [] for k in EVENT_KINDS})

    def now(self) -> float:
        """Seconds since this trace's origin."""
        return time.perf_counter() - self.origin

    def record(self, event: Any) -> None:
        if self.enabled:
            self.events[_KIND_OF[type(event)]].append(event)

    def __getitem__(self, kind: str) -> list:
        return self.events[kind]

    def clear(self) -> None:
        for events in self.events.values():
            events.clear()

    def to_pandas(self, kind: str | None = None):
        """A DataFrame per event kind (``{"access": df, "get": df, ...}``), or one kind's frame."""
        import pandas as pd

        def frame(k: str):
            columns = [f.name for f in dataclasses.fields(EVENT_KINDS[k])]
            rows = [dataclasses.astuple(e) for e in self.events[k]]
            return pd.DataFrame(rows, columns=columns)

        if kind is not None:
            return frame(kind)
        return {k: frame(k) for k in EVENT_KINDS}

    def summary(self) -> dict[str, float]:
        """Totals that benchmarks and notebooks print next to each run."""
        gets = [g for g in self.events["get"] if g.outcome == "ok"]
        return {
            "accesses": len(self.events["access"]),
            "gets": len(self.events["get"]),
            "bytes_fetched": sum(g.nbytes for g in gets),
            "stall_s": sum(a.stall_s for a in self.events["access"]),
            "llm_calls": len(self.events["llm"]),
            "llm_cost_usd": sum(c.cost_usd for c in self.events["llm"]),
            "cells": len(self.events["cell"]),
        }
