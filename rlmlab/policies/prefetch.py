"""Prefetch policies: which segments to pull in the background, ahead of the reader.

A policy only decides *what* to fetch; the segment reader fetches it on background
threads, so prefetching never blocks a read (a read that needs a segment already in
flight waits for that GET rather than issuing a second one). `after_access` returns the
segments wanted now (replacing any earlier wish not yet started) or None for "no change".
The reader keeps the counters: segments and bytes fetched, and hits (demand reads served
by a segment this policy brought in).
"""

from __future__ import annotations

from typing import Sequence

from ..layout import Segment
from . import Registry

registry = Registry("prefetch")


class PrefetchPolicy:
    name = ""
    blocking = False  # True: `on_open` segments are loaded before open returns

    def __init__(self):
        self.segments_fetched = 0
        self.bytes_fetched = 0
        self.hits = 0
        self.segments: Sequence[Segment] = ()

    def bind(self, segments: Sequence[Segment]) -> None:
        self.segments = segments

    def on_open(self) -> list[int]:
        return []

    def after_access(self, first: int, last: int) -> list[int] | None:
        """Segments [first, last] were just read."""
        return None

    def describe(self) -> str:
        return self.name


@registry.register
class NoPrefetch(PrefetchPolicy):
    """Fetch only what a read needs, when it needs it."""

    name = "none"


@registry.register
class Readahead(PrefetchPolicy):
    """After every read, the next `readahead_segments` segments (fsspec's readahead, by segment)."""

    name = "readahead"

    def __init__(self, *, readahead_segments: int = 4):
        super().__init__()
        if readahead_segments < 1:
            raise ValueError(f"readahead_segments must be at least 1, got {readahead_segments}")
        self.n = readahead_segments
        self._last: tuple[int, int] | None = None

    def after_access(self, first, last):
        if self._last == (first, last):
            return None
        self._last = (first, last)
        return list(range(last + 1, min(last + 1 + self.n, len(self.segments))))

    def describe(self):
        return f"{self.name}({self.n})"


@registry.register
class Adaptive(PrefetchPolicy):
    """Mountpoint-S3's prefetcher: a byte window that doubles while reads stay sequential.

    A read is sequential when it starts inside or right after the previous read's
    segments (the very first read counts when it starts at segment 0). Moving forward
    sequentially doubles the window, from `initial_window_bytes` (1 MiB) up to
    `max_window_bytes` (64 MiB); a jump resets it to nothing, so random access costs no
    extra GETs. The window always covers at least one whole segment.
    """

    name = "adaptive"

    def __init__(self, *, initial_window_bytes: int = 1 << 20, max_window_bytes: int = 64 << 20):
        super().__init__()
        if not 0 < initial_window_bytes <= max_window_bytes:
            raise ValueError(
                f"need 0 < initial_window_bytes <= max_window_bytes, got {initial_window_bytes}, {max_window_bytes}"
            )
        self.initial = initial_window_bytes
        self.max = max_window_bytes
        self.window = 0
        self._last: tuple[int, int] | None = None

    def after_access(self, first, last):
        previous = self._last
        if previous == (first, last):
            return None
        self._last = (first, last)
        if previous is None:
            sequential = first == 0
        else:
            sequential = previous[0] <= first <= previous[1] + 1
        if not sequential:
            self.window = 0
            return []
        if self.window == 0:
            self.window = self.initial
        elif last > previous[1]:
            self.window = min(self.window * 2, self.max)
        wanted, size = [], 0
        for i in range(last + 1, len(self.segments)):
            if wanted and size + self.segments[i].byte_length > self.window:
                break
            wanted.append(i)
            size += self.segments[i].byte_length
        return wanted

    def describe(self):
        return f"{self.name}({self.initial >> 10} KiB..{self.max >> 20} MiB)"


@registry.register
class Background(PrefetchPolicy):
    """Pull the whole context, in order, in the background right after open."""

    name = "background"

    def on_open(self):
        return list(range(len(self.segments)))


@registry.register
class Eager(PrefetchPolicy):
    """Load everything before open returns: the seed's "pull it all into RAM" baseline."""

    name = "eager"
    blocking = True

    def on_open(self):
        return list(range(len(self.segments)))
