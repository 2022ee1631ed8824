"""`Context`: a remote text that model code uses like a `str`.

The RLM's code sees `context` and slices it, searches it, splits it; it must not need to
know the text lives in object storage. Every operation maps characters to segments
through the manifest's character offsets (bisect), asks the segment reader for those
segments' text, and applies the plain `str` operation to just that text, so every result
equals the same operation on the whole string.

Searches (`find`, `count`, `in`, ...) walk the segments in order, fetching a round of
segments at a time (so a cold scan fetches in parallel) and stopping as soon as the
answer is known; matches that straddle a segment boundary are found by re-checking the
boundary with len(sub) - 1 characters of overlap. The regex helpers, `split`,
`splitlines` and any other `str` method materialise the whole text once: a regex match
can span any distance, and a split's result is the whole text anyway.

Every operation except `len` records one `AccessEvent` in `ctx.trace` (a slice adds a raw
record that the trace turns into an AccessEvent when read: see `Trace.access_log`).
"""

from __future__ import annotations

import operator
import re
import time
import weakref
from array import array
from bisect import bisect_right
from collections import OrderedDict
from itertools import accumulate
from typing import Iterator

from .errors import ManifestError
from .layout import Manifest, load_manifest
from .policies import cache as cache_policies
from .policies import fetch as fetch_policies
from .policies import prefetch as prefetch_policies
from .reader import SegmentReader
from .hedge import HedgePolicy, LatencyHistory
from .retry import RetryPolicy
from .stores import Store, open_store
from .trace import GETS, MISSES, NBYTES, SEGMENTS, STALL, AccessEvent, Trace, new_stats

_perf = time.perf_counter
DEFAULT_CACHE_BYTES = cache_policies.DEFAULT_CACHE_BYTES
LINE_INDEX_SEGMENTS = 16  # segments whose line starts `lines()` keeps


def open_context(
    uri_or_store: str | Store,
    *,
    fetch: str | fetch_policies.FetchPolicy = "parallel",
    workers: int = 16,
    cache: str | cache_policies.CachePolicy = "memory",
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    prefetch: str | prefetch_policies.PrefetchPolicy = "adaptive",
    client: str = "boto3",
    endpoint_url: str | None = None,
    trace: Trace | bool | None = None,
    retries: RetryPolicy | int | None = None,
    hedge: HedgePolicy | bool | None = None,
    **policy_options,
) -> "Context":
    """Open the context stored at `uri_or_store` (`mem://`, `file:///`, `s3://` or a Store).

    Policies are chosen by name (see `rlmlab.policies`) or passed as instances; any extra
    keyword (`readahead_segments=`, `hole_bytes=`, `cache_dir=`, ...) goes to the chosen
    policy that accepts it. `trace=False` turns tracing off; `retries` is an attempt
    count or a `RetryPolicy`; `hedge` duplicates GETs that run far past their usual
    latency (a `HedgePolicy`, True, or False; by default on for remote stores).
    """
    if isinstance(uri_or_store, Store):
        store = uri_or_store
    elif isinstance(uri_or_store, str):
        # demand and background prefetch each run `workers` GETs at once
        store = open_store(uri_or_store, endpoint_url=endpoint_url, client=client, max_connections=max(64, 2 * workers))
    else:
        raise TypeError(f"open_context needs a URI or a Store, not {type(uri_or_store).__name__}")
    manifest = load_manifest(store, workers=workers)
    return Context.from_manifest(
        store,
        manifest,
        fetch=fetch,
        workers=workers,
        cache=cache,
        cache_bytes=cache_bytes,
        prefetch=prefetch,
        trace=trace,
        retries=retries,
        hedge=hedge,
        **policy_options,
    )


def _hedge_for(store: Store, hedge: HedgePolicy | bool | None) -> HedgePolicy | None:
    if hedge is None:
        hedge = store.remote
    if isinstance(hedge, HedgePolicy):
        return hedge
    if isinstance(hedge, bool):
        return HedgePolicy(history=LatencyHistory.of(store)) if hedge else None
    raise TypeError(f"hedge must be a HedgePolicy, True, False or None, not {type(hedge).__name__}")


def _normalize(start, end, n: int) -> tuple[int, int]:
    """str's own index adjustment for find/count/startswith: start may exceed n, end is clamped."""
    s = 0 if start is None else operator.index(start)
    e = n if end is None else operator.index(end)
    if e > n:
        e = n
    elif e < 0:
        e = max(e + n, 0)
    if s < 0:
        s = max(s + n, 0)
    return s, e


def _has_border(sub: str) -> bool:
    """Whether a proper prefix of `sub` is also its suffix, i.e. two matches could overlap."""
    return any(sub[:k] == sub[-k:] for k in range(1, len(sub)))


def _check_str(sub, what: str = "argument") -> None:
    if not isinstance(sub, str):
        raise TypeError(f"{what} must be str, not {type(sub).__name__}")


class Context:
    """A str-like view of a stored context. Build it with `open_context` or `from_manifest`."""

    def __init__(self, reader: SegmentReader, trace: Trace, *, source: str = ""):
        self.reader = reader
        self.manifest: Manifest = reader.manifest
        self.trace = trace
        self.source = source
        self._n = self.manifest.total_chars
        # segment i holds characters [_char_bounds[i], _char_bounds[i + 1])
        self._char_bounds = [s.char_offset for s in self.manifest.segments] + [self._n]
        self._line_starts = [s.line_offset for s in self.manifest.segments]
        self._byte_prefix = reader.byte_prefix
        self._segment_bytes = [s.byte_length for s in self.manifest.segments]
        self._round = max(1, reader.fetch.workers)  # segments fetched together while scanning
        self._line_index: OrderedDict[int, array] = OrderedDict()  # see `_line_offsets`
        self._access_log = trace.access_log  # a flat list of numbers, extended once per access
        # a Context dropped without close() still stops its threads (the reader must not refer back to it)
        self._finalizer = weakref.finalize(self, reader.close, False)

    @classmethod
    def from_manifest(
        cls,
        store: Store,
        manifest: Manifest,
        *,
        fetch: str | fetch_policies.FetchPolicy = "parallel",
        workers: int = 16,
        cache: str | cache_policies.CachePolicy = "memory",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        prefetch: str | prefetch_policies.PrefetchPolicy = "adaptive",
        trace: Trace | bool | None = None,
        retries: RetryPolicy | int | None = None,
        hedge: HedgePolicy | bool | None = None,
        **policy_options,
    ) -> "Context":
        """A Context over a manifest already in hand (tests, benchmarks, a shared store)."""
        kinds = {
            "fetch": (fetch_policies.registry, fetch, {"workers": workers}),
            "cache": (cache_policies.registry, cache, {"cache_bytes": cache_bytes}),
            "prefetch": (prefetch_policies.registry, prefetch, {}),
        }
        accepted = {kind: registry.options(spec) for kind, (registry, spec, _) in kinds.items()}
        for option, value in policy_options.items():
            takers = [kind for kind in kinds if option in accepted[kind]]
            if not takers:
                choices = ", ".join(sorted(set().union(*accepted.values()) - {"workers", "cache_bytes"})) or "none"
                raise TypeError(
                    f"unknown option {option!r} for fetch={_label(fetch)}, cache={_label(cache)}, "
                    f"prefetch={_label(prefetch)} (these accept: {choices})"
                )
            for kind in takers:
                kinds[kind][2][option] = value
        policies = {}
        for kind, (registry, spec, options) in kinds.items():
            options = {k: v for k, v in options.items() if k in accepted[kind]}
            policies[kind] = registry.create(spec, **options)
        if trace is None or trace is True:
            trace = Trace()
        elif trace is False:
            trace = Trace(enabled=False)
        reader = SegmentReader(
            store,
            manifest,
            fetch=policies["fetch"],
            cache=policies["cache"],
            prefetch=policies["prefetch"],
            retry=RetryPolicy.coerce(retries),
            trace=trace,
            hedge=_hedge_for(store, hedge),
        )
        return cls(reader, trace, source=store.uri)

    # -- plumbing -----------------------------------------------------------------

    def _segment_of(self, char: int) -> int:
        """The segment holding character `char` (0 <= char < len)."""
        return bisect_right(self._char_bounds, char) - 1

    def _record(self, op: str, lo: int, hi: int, stats: list, began: float) -> None:
        segments, misses = stats[SEGMENTS], stats[MISSES]
        self.trace.record(
            AccessEvent(
                began - self.trace.origin, op, lo, hi, stats[NBYTES], segments,
                segments - misses, misses, stats[GETS], stats[STALL], _perf() - began,
            )
        )

    def _join(self, texts: list[str], first: int, last: int, lo: int, hi: int) -> str:
        """Cut [lo, hi) out of the texts of segments first..last."""
        base = self._char_bounds[first]
        if first == last:
            return texts[0][lo - base : hi - base]
        texts[0] = texts[0][lo - base :]
        texts[-1] = texts[-1][: hi - self._char_bounds[last]]
        return "".join(texts)

    def _text(self, op: str, lo: int, hi: int) -> str:
        """Characters [lo, hi), recorded as one access.

        The warm path of every slice, where tens of nanoseconds show (`rlmlab bench
        tracing`): so the untraced and the traced branch are each written out in full, a
        range inside one segment skips the second bisect and the list of texts, and the
        traced branch adds a raw record to `Trace.access_log`, not an AccessEvent, keeping
        the reader's stats list only when something was fetched.
        """
        reader = self.reader
        if not self.trace.enabled:
            if lo >= hi:
                return ""
            bounds = self._char_bounds
            first = bisect_right(bounds, lo) - 1
            if hi <= bounds[first + 1]:
                text = reader.cached_text(first)
                if text is None:
                    text = reader.fetch_text(first, None)
                base = bounds[first]
                return text[lo - base : hi - base]
            last = bisect_right(bounds, hi - 1) - 1
            return self._join(reader.texts(first, last + 1, None), first, last, lo, hi)
        began = _perf()
        if lo >= hi:
            self._record(op, lo, hi, new_stats(), began)
            return ""
        bounds = self._char_bounds
        first = bisect_right(bounds, lo) - 1
        if hi <= bounds[first + 1]:
            text = reader.cached_text(first)
            stats = None
            if text is None:
                stats = new_stats()
                text = reader.fetch_text(first, stats)
            base = bounds[first]
            text = text[lo - base : hi - base]
            self._access_log.extend((began, _perf(), op, lo, hi, self._segment_bytes[first], 1, stats))
            return text
        last = bisect_right(bounds, hi - 1) - 1
        stats = [0, 0, 0, 0, 0.0]  # new_stats(), without the call
        text = self._join(reader.texts(first, last + 1, stats), first, last, lo, hi)
        nbytes = self._byte_prefix[last + 1] - self._byte_prefix[first]
        fetched = stats if stats[MISSES] else None
        self._access_log.extend((began, _perf(), op, lo, hi, nbytes, last - first + 1, fetched))
        return text

    def _pieces(self, lo: int, hi: int, stats: list | None, reverse: bool = False) -> Iterator[tuple[int, str]]:
        """(position, text) of each segment's share of [lo, hi), a round of segments fetched at a time."""
        if lo >= hi:
            return
        first, last = self._segment_of(lo), self._segment_of(hi - 1)
        starts, step = self._char_bounds, self._round
        rounds = range(first, last + 1, step)
        for round_start in reversed(rounds) if reverse else rounds:
            stop = min(round_start + step, last + 1)
            if stats is not None:
                stats[SEGMENTS] += stop - round_start
                stats[NBYTES] += self._byte_prefix[stop] - self._byte_prefix[round_start]
            texts = self.reader.texts(round_start, stop, stats)
            pieces = []
            for i, text in zip(range(round_start, stop), texts):
                base = starts[i]
                a, b = max(lo - base, 0), min(hi - base, len(text))
                pieces.append((base + a, text[a:b] if (a, b) != (0, len(text)) else text))
            yield from reversed(pieces) if reverse else pieces

    def _scan(self, op: str, lo: int, hi: int, work):
        """Run `work(stats)` as one recorded access over [lo, hi)."""
        if not self.trace.enabled:
            return work(None)
        began = _perf()
        stats = new_stats()
        try:
            return work(stats)
        finally:
            self._record(op, lo, hi, stats, began)

    # -- str protocol -------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index) -> str:
        n = self._n
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step == 1:
                return self._text("slice", start, stop if stop > start else start)
            span = range(start, stop, step)
            if not span:
                return self._text("slice", start, start)
            lo, hi = min(span[0], span[-1]), max(span[0], span[-1]) + 1
            return self._text("slice", lo, hi)[span[0] - lo :: step][: len(span)]
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"Context indices must be integers or slices, not {type(index).__name__}") from None
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("Context index out of range")
        return self._text("index", i, i + 1)

    def __str__(self) -> str:
        return self._text("str", 0, self._n)

    def __format__(self, spec: str) -> str:
        return format(self._text("format", 0, self._n), spec)

    def __iter__(self) -> Iterator[str]:
        stats = new_stats() if self.trace.enabled else None
        began = _perf()
        try:
            for _, piece in self._pieces(0, self._n, stats):
                yield from piece
        finally:
            if stats is not None:
                self._record("iter", 0, self._n, stats, began)

    def __contains__(self, sub) -> bool:
        if not isinstance(sub, str):
            raise TypeError(f"'in <Context>' requires string as left operand, not {type(sub).__name__}")
        return self._scan("contains", 0, self._n, lambda stats: self._find(sub, 0, self._n, stats)) != -1

    def __eq__(self, other) -> bool:
        if isinstance(other, Context):
            if other is self:
                return True
            other = str(other)
        if not isinstance(other, str):
            return NotImplemented
        if len(other) != self._n:
            return False

        def compare(stats):
            return all(other[pos : pos + len(piece)] == piece for pos, piece in self._pieces(0, self._n, stats))

        return self._scan("eq", 0, self._n, compare)

    __hash__ = None  # equal to a str, but hashing would mean reading everything

    def __add__(self, other: str) -> str:
        if not isinstance(other, str):
            return NotImplemented
        return str(self) + other

    def __radd__(self, other: str) -> str:
        if not isinstance(other, str):
            return NotImplemented
        return other + str(self)

    def __repr__(self) -> str:
        m, r = self.manifest, self.reader
        return (
            f"<Context {self._n:,} chars, {m.total_lines:,} lines, {len(m.segments)} segments "
            f"({m.layout} layout, {m.total_bytes:,} bytes) at {self.source or '?'}; "
            f"fetch={r.fetch.describe()} cache={r.cache.describe()} prefetch={r.prefetch.describe()}>"
        )

    def __getattr__(self, name: str):
        """Any other `str` method (upper, replace, encode, ...) runs on the whole text."""
        if name.startswith("_") or not hasattr(str, name):
            raise AttributeError(f"'Context' object has no attribute {name!r}")

        def method(*args, **kwargs):
            return getattr(self._text(f"str.{name}", 0, self._n), name)(*args, **kwargs)

        method.__name__ = name
        method.__doc__ = getattr(str, name).__doc__
        return method

    # -- searching ----------------------------------------------------------------

    def find(self, sub: str, start=None, end=None) -> int:
        _check_str(sub)
        s, e = _normalize(start, end, self._n)
        return self._scan("find", min(s, self._n), e, lambda stats: self._find(sub, s, e, stats))

    def index(self, sub: str, start=None, end=None) -> int:
        found = self.find(sub, start, end)
        if found < 0:
            raise ValueError("substring not found")
        return found

    def rfind(self, sub: str, start=None, end=None) -> int:
        _check_str(sub)
        s, e = _normalize(start, end, self._n)
        return self._scan("rfind", min(s, self._n), e, lambda stats: self._rfind(sub, s, e, stats))

    def rindex(self, sub: str, start=None, end=None) -> int:
        found = self.rfind(sub, start, end)
        if found < 0:
            raise ValueError("substring not found")
        return found

    def count(self, sub: str, start=None, end=None) -> int:
        _check_str(sub)
        s, e = _normalize(start, end, self._n)
        return self._scan("count", min(s, self._n), e, lambda stats: self._count(sub, s, e, stats))

    def _find(self, sub: str, s: int, e: int, stats) -> int:
        m = len(sub)
        if e - s < m:
            return -1
        if m == 0:
            return s
        carry = ""  # the last m-1 characters before the current piece
        for pos, piece in self._pieces(s, e, stats):
            if carry:
                k = (carry + piece[: m - 1]).find(sub)
                if k >= 0:
                    return pos - len(carry) + k
            k = piece.find(sub)
            if k >= 0:
                return pos + k
            if m > 1:
                carry = (carry + piece)[-(m - 1) :] if len(piece) < m - 1 else piece[-(m - 1) :]
        return -1

    def _rfind(self, sub: str, s: int, e: int, stats) -> int:
        m = len(sub)
        if e - s < m:
            return -1
        if m == 0:
            return e
        carry = ""  # the first m-1 characters after the current piece
        for pos, piece in self._pieces(s, e, stats, reverse=True):
            if carry:
                tail = piece[-(m - 1) :]
                k = (tail + carry).rfind(sub)
                if k >= 0:
                    return pos + len(piece) - len(tail) + k
            k = piece.rfind(sub)
            if k >= 0:
                return pos + k
            if m > 1:
                carry = (piece + carry)[: m - 1]
        return -1

    def _count(self, sub: str, s: int, e: int, stats) -> int:
        m = len(sub)
        if e - s < m:
            return 0
        if m == 0:
            return e - s + 1
        total = 0
        carry = ""
        if not _has_border(sub):
            # matches cannot overlap, so counting inside pieces and across boundaries is exact
            for _, piece in self._pieces(s, e, stats):
                if carry:
                    total += (carry + piece[: m - 1]).count(sub)
                total += piece.count(sub)
                if m > 1:
                    carry = (carry + piece)[-(m - 1) :] if len(piece) < m - 1 else piece[-(m - 1) :]
            return total
        # overlapping matches are possible: follow str.count's left-to-right greedy scan
        for _, piece in self._pieces(s, e, stats):
            buf = carry + piece
            k = 0
            while (j := buf.find(sub, k)) >= 0:
                total += 1
                k = j + m
            carry = buf[max(k, len(buf) - (m - 1)) :]
        return total

    def startswith(self, prefix, start=None, end=None) -> bool:
        return self._affix_match("startswith", prefix, start, end)

    def endswith(self, suffix, start=None, end=None) -> bool:
        return self._affix_match("endswith", suffix, start, end)

    def _affix_match(self, op: str, affix, start, end) -> bool:
        """str's tailmatch: only the characters an affix could cover are read."""
        affixes = affix if isinstance(affix, tuple) else (affix,)
        for p in affixes:
            _check_str(p, f"{op} first arg")
        s, e = _normalize(start, end, self._n)
        fits = [p for p in affixes if e - len(p) >= s]
        if not fits:
            return bool(self._text(op, min(s, self._n), min(s, self._n)))  # records the (empty) access
        width = max(map(len, fits))
        if op == "startswith":
            window = self._text(op, s, min(e, s + width))
            return any(window[: len(p)] == p for p in fits)
        window = self._text(op, max(s, e - width), e)
        return any(window[len(window) - len(p) :] == p for p in fits)

    # -- lines ----------------------------------------------------------------------

    def lines(self, start: int | None = 0, stop: int | None = None) -> str:
        """Lines [start, stop) (as `str.splitlines(keepends=True)` counts them), joined, ends kept.

        Negative indices count from the last line, as in a slice. Only the segments that
        hold those lines are read: the manifest knows where every segment's lines begin,
        and the line starts inside the segments used last are kept, so looping over
        small line ranges does not re-split a segment each time.
        """
        a, b, _ = slice(start, stop).indices(self.manifest.total_lines)
        if a >= b:
            return self._text("lines", 0, 0)
        began = _perf()
        stats = new_stats() if self.trace.enabled else None
        line_starts, char_starts = self._line_starts, self._char_bounds
        first = bisect_right(line_starts, a) - 1
        last = bisect_right(line_starts, b - 1) - 1
        if stats is not None:
            stats[SEGMENTS] += last - first + 1
            stats[NBYTES] += self._byte_prefix[last + 1] - self._byte_prefix[first]
        texts = self.reader.texts(first, last + 1, stats)
        lo = char_starts[first] + self._line_offsets(first, texts[0])[a - line_starts[first]]
        hi = char_starts[last] + self._line_offsets(last, texts[-1])[b - line_starts[last]]
        text = self._join(texts, first, last, lo, hi)
        if stats is not None:
            self._record("lines", lo, hi, stats, began)
        return text

    def _line_offsets(self, i: int, text: str) -> array:
        """Character offsets of segment i's line starts, plus its end (line_count + 1 entries)."""
        index = self._line_index
        offsets = index.get(i)
        if offsets is None:
            offsets = array("q", accumulate(map(len, text.splitlines(keepends=True)), initial=0))
            seg = self.manifest.segments[i]
            if len(offsets) != seg.line_count + 1:
                raise ManifestError(
                    f"segment {seg.key} holds {len(offsets) - 1} lines but the manifest says {seg.line_count}"
                )
            index[i] = offsets
            while len(index) > LINE_INDEX_SEGMENTS:
                index.popitem(last=False)
        return offsets

    def splitlines(self, keepends: bool = False) -> list[str]:
        return self._text("splitlines", 0, self._n).splitlines(keepends)

    def split(self, sep: str | None = None, maxsplit: int = -1) -> list[str]:
        return self._text("split", 0, self._n).split(sep, maxsplit)

    def rsplit(self, sep: str | None = None, maxsplit: int = -1) -> list[str]:
        return self._text("rsplit", 0, self._n).rsplit(sep, maxsplit)

    # -- regular expressions ------------------------------------------------------

    def search(self, pattern: str | re.Pattern, flags: int = 0) -> re.Match | None:
        """`re.search(pattern, str(ctx), flags)`: reads the whole text (a match may span segments)."""
        return re.compile(pattern, flags).search(self._text("search", 0, self._n))

    def finditer(self, pattern: str | re.Pattern, flags: int = 0) -> Iterator[re.Match]:
        """`re.finditer(pattern, str(ctx), flags)`: reads the whole text (a match may span segments)."""
        return re.compile(pattern, flags).finditer(self._text("finditer", 0, self._n))

    def findall(self, pattern: str | re.Pattern, flags: int = 0) -> list:
        """`re.findall(pattern, str(ctx), flags)`: reads the whole text (a match may span segments)."""
        return re.compile(pattern, flags).findall(self._text("findall", 0, self._n))

    # -- lifetime and statistics ----------------------------------------------------

    def stats(self) -> dict[str, dict]:
        """Each policy's own counters (fetch requests and bytes, cache hits, prefetch use)."""
        r = self.reader
        out = {
            "fetch": {"requests": r.fetch.requests, "segments": r.fetch.segments, "bytes": r.fetch.bytes},
            "cache": {"hits": r.cache.hits, "misses": r.cache.misses, "bytes_stored": r.cache.bytes_stored,
                      "evictions": r.cache.evictions},
            "prefetch": {"segments": r.prefetch.segments_fetched, "bytes": r.prefetch.bytes_fetched,
                         "hits": r.prefetch.hits},
        }
        background = r.background_fetch
        if background is not None:
            out["prefetch"]["requests"] = background.requests
        return out

    def wait_prefetch(self, timeout: float = 30.0) -> bool:
        """Block until background prefetching is idle (benchmarks use it to separate phases)."""
        return self.reader.wait_prefetch_idle(timeout)

    def close(self) -> None:
        """Stop background prefetching and release the fetch threads.

        Text already cached can still be read; anything that needs storage raises ValueError.
        """
        self._finalizer.detach()
        self.reader.close()

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _label(spec) -> str:
    return spec if isinstance(spec, str) else type(spec).__name__
