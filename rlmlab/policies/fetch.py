"""Fetch policies: which GETs to issue for a set of missing segments, and how many at once.

A policy plans `RangeRequest`s and runs them; it never retries, verifies or caches (the
segment reader does that around each request). With `layout="segments"` every segment is
its own object, so a request is one whole-object GET; with `layout="single"` segments are
byte ranges of one object, which `coalesced` can merge into fewer ranged GETs.
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from typing import Callable, Sequence

from ..layout import Segment
from . import Registry

registry = Registry("fetch")

Member = tuple[int, Segment]  # (segment index in the manifest, segment)


@dataclass(frozen=True, slots=True)
class RangeRequest:
    """One GET: a whole object (`start is None`) or bytes [start, stop) of it."""

    key: str
    start: int | None
    stop: int | None
    members: tuple[Member, ...]  # the segments it carries, in byte order

    @property
    def nbytes(self) -> int:
        if self.start is None:
            return sum(seg.byte_length for _, seg in self.members)
        return self.stop - self.start

    @property
    def byte_range(self) -> tuple[int, int]:
        """The range named in errors: for a whole object, [0, its expected length)."""
        if self.start is None:
            return (0, self.nbytes)
        return (self.start, self.stop)

    def split(self, data: bytes) -> list[tuple[int, Segment, bytes]]:
        """Each member's bytes cut out of this request's `data` (already length-checked)."""
        base = 0 if self.start is None else self.start
        return [
            (i, seg, data[seg.byte_offset - base : seg.byte_offset - base + seg.byte_length])
            for i, seg in self.members
        ]


def one_request_per_segment(members: Sequence[Member], layout: str) -> list[RangeRequest]:
    if layout == "single":
        return [RangeRequest(s.key, s.byte_offset, s.byte_offset + s.byte_length, ((i, s),)) for i, s in members]
    return [RangeRequest(s.key, None, None, ((i, s),)) for i, s in members]


class FetchPolicy:
    """Base: plan one GET per segment; subclasses decide concurrency and merging."""

    name = ""

    def __init__(self, *, workers: int = 16):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.requests = 0  # GETs planned (retries are counted by the reader, not here)
        self.segments = 0
        self.bytes = 0
        self._pool: ThreadPoolExecutor | None = None  # started on the first parallel fetch
        self._pool_lock = threading.Lock()

    def plan(self, members: Sequence[Member], layout: str) -> list[RangeRequest]:
        return one_request_per_segment(members, layout)

    def fetch(self, members: Sequence[Member], layout: str, do: Callable[[RangeRequest], object]) -> None:
        """Plan requests for `members` and run `do` on each; raise the first failure, after all finished."""
        requests = self.plan(members, layout)
        self.requests += len(requests)
        self.segments += len(members)
        self.bytes += sum(r.nbytes for r in requests)
        self.run(requests, do)

    def run(self, requests: list[RangeRequest], do: Callable[[RangeRequest], object]) -> None:
        if len(requests) <= 1 or self.workers == 1:
            for request in requests:
                do(request)
            return
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"rlmlab-{self.name}")
            pool = self._pool
        futures = [pool.submit(do, r) for r in requests]
        wait_all(futures)
        for future in futures:
            future.result()  # re-raises the first failure in request order

    def batches(self, members: Sequence[Member], layout: str) -> list[list[Member]]:
        """Cut a long prefetch list into rounds that keep every worker busy without claiming far ahead."""
        step = self.workers
        return [list(members[k : k + step]) for k in range(0, len(members), step)]

    def spawn(self) -> "FetchPolicy":
        """A twin with the same settings, its own pool and zeroed counters (for background prefetch)."""
        twin = copy.copy(self)
        twin._pool, twin._pool_lock = None, threading.Lock()
        twin.requests = twin.segments = twin.bytes = 0
        return twin

    def describe(self) -> str:
        return f"{self.name}({self.workers})"

    def close(self, wait: bool = True) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)


@registry.register
class Sequential(FetchPolicy):
    """One GET after another, one per segment: the seed's Monocontext behaviour (the baseline)."""

    name = "sequential"

    def __init__(self, *, workers: int = 1):
        super().__init__(workers=1)

    def describe(self) -> str:
        return self.name


@registry.register
class Parallel(FetchPolicy):
    """One GET per segment, up to `workers` at once on a thread pool."""

    name = "parallel"


@registry.register
class Coalesced(FetchPolicy):
    """Merge nearby ranges of the single-object layout into fewer ranged GETs, run in parallel.

    Two ranges merge when the hole between them is at most `hole_bytes` (default 8 KiB,
    Arrow's ReadRangeCache: below that a second request costs more than reading the gap)
    and the merged range stays within `max_range_bytes` (default 8 MiB, the low end of
    the 8-16 MB ranged-GET size AWS recommends; bigger ranges would serialise work that
    parallel GETs can share). For the segments layout, where each segment is its own
    object, there is nothing to merge: it falls back to parallel whole-object GETs.
    """

    name = "coalesced"

    def __init__(self, *, workers: int = 16, hole_bytes: int = 8 * 1024, max_range_bytes: int = 8 * 1024 * 1024):
        super().__init__(workers=workers)
        if hole_bytes < 0 or max_range_bytes < 1:
            raise ValueError(f"hole_bytes must be >= 0 and max_range_bytes >= 1, got {hole_bytes}, {max_range_bytes}")
        self.hole_bytes = hole_bytes
        self.max_range_bytes = max_range_bytes

    def plan(self, members: Sequence[Member], layout: str) -> list[RangeRequest]:
        if layout != "single":
            return one_request_per_segment(members, layout)
        ordered = sorted(members, key=lambda m: (m[1].key, m[1].byte_offset))
        requests: list[RangeRequest] = []
        group: list[Member] = []
        for member in ordered:
            seg = member[1]
            if group:
                first, last = group[0][1], group[-1][1]
                same_object = seg.key == first.key
                hole = seg.byte_offset - (last.byte_offset + last.byte_length)
                merged = seg.byte_offset + seg.byte_length - first.byte_offset
                if not (same_object and 0 <= hole <= self.hole_bytes and merged <= self.max_range_bytes):
                    requests.append(_range_over(group))
                    group = []
            group.append(member)
        if group:
            requests.append(_range_over(group))
        return requests

    def batches(self, members, layout):
        if layout != "single":
            return super().batches(members, layout)
        budget = self.workers * self.max_range_bytes
        rounds: list[list[Member]] = [[]]
        size = 0
        for member in members:
            if rounds[-1] and size + member[1].byte_length > budget:
                rounds.append([])
                size = 0
            rounds[-1].append(member)
            size += member[1].byte_length
        return [r for r in rounds if r]

    def describe(self) -> str:
        return f"{self.name}({self.workers}, hole={self.hole_bytes}, cap={self.max_range_bytes})"


def _range_over(group: list[Member]) -> RangeRequest:
    first, last = group[0][1], group[-1][1]
    return RangeRequest(first.key, first.byte_offset, last.byte_offset + last.byte_length, tuple(group))
