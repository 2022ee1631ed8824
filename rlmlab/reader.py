"""The segment reader: the one place a segment's text comes from.

Order of lookup: the cache, then a GET already in flight for that segment (waited for,
never duplicated), then the fetch policy. Every GET goes through `_get`, which retries
`TransientStoreError` with capped, jittered backoff, duplicates a GET that runs far
past its usual latency (hedge.py), checks the byte count, and records one `GetEvent` per
attempt; every whole segment is checked against its sha256 before it
is decoded. A reader therefore returns the manifest's text or raises a typed error that
names the key and byte range (`ObjectChanged`, `RetriesExhausted`): never partial or
wrong text.

Prefetching runs on a coordinator thread with its own fetch pool, so a read never queues
behind background work; the newest wish from the prefetch policy replaces older ones not
yet started. Prefetched segments go to the cache; when the cache would not keep one
(`cache="none"`, or a segment larger than the budget) it is held until read once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import Future
from typing import Sequence

from .errors import ObjectChanged, RetriesExhausted, StoreError, TransientStoreError
from .hedge import HedgePolicy
from .layout import Manifest, Segment
from .policies.cache import CachePolicy
from .policies.fetch import FetchPolicy, RangeRequest
from .policies.prefetch import PrefetchPolicy
from .retry import RetryPolicy
from .stores import Store
from .trace import GETS, MISSES, STALL, GetEvent, Trace

_perf = time.perf_counter


class SegmentReader:
    def __init__(
        self,
        store: Store,
        manifest: Manifest,
        *,
        fetch: FetchPolicy,
        cache: CachePolicy,
        prefetch: PrefetchPolicy,
        retry: RetryPolicy,
        trace: Trace,
        hedge: HedgePolicy | None = None,
    ):
        self.store = store
        self.manifest = manifest
        self.segments: Sequence[Segment] = manifest.segments
        self.layout = manifest.layout
        self.fetch = fetch
        self.cache = cache
        self.prefetch = prefetch
        self.retry = retry
        self.hedge = hedge
        self.trace = trace
        self.byte_prefix = [0]  # byte_prefix[i]: bytes in segments before segment i
        for seg in self.segments:
            self.byte_prefix.append(self.byte_prefix[-1] + seg.byte_length)
        self._lock = threading.Lock()
        self._inflight: dict[int, Future] = {}
        self._staged: dict[int, str] = {}  # prefetched text the cache would not keep, until read once
        self._prefetched: set[int] = set()  # brought in by prefetch and not read yet
        self._closed = False
        self._prefetching = prefetch.name != "none"
        self._pending: list[int] = []
        self._working = False
        self._wake = threading.Condition()
        self.background_fetch: FetchPolicy | None = None  # the prefetch twin of `fetch`, once started
        self._coordinator: threading.Thread | None = None
        prefetch.bind(self.segments)
        if self._prefetching:
            wanted = prefetch.on_open()
            if prefetch.blocking:
                try:
                    self._load(wanted, "prefetch", None)
                except BaseException:
                    self.close()
                    raise
            elif wanted:
                self._schedule(wanted)

    # -- demand reads -------------------------------------------------------------

    def texts(self, first: int, stop: int, stats: list | None) -> list[str]:
        """The text of segments [first, stop), fetching what is missing; blocks until all are here.

        `stats` (a `trace.new_stats()` list, or None when not tracing) gets the misses,
        GETs and stall time of this call.
        """
        get, segments = self.cache.get, self.segments
        out = [get(segments[i]) for i in range(first, stop)]
        if None in out:
            self._fill(out, first, stats)
        if self._prefetched:
            self._count_prefetch_hits(first, stop)
        if self._prefetching:
            self._hint(first, stop - 1)
        return out

    def cached_text(self, i: int) -> str | None:
        """Segment i's text if the cache holds it, else None (then call `fetch_text`).

        The warm path of a slice inside one segment: no list, and nothing for the caller
        to count (no miss, no GET, no stall).
        """
        text = self.cache.get(self.segments[i])
        if text is not None:
            if self._prefetched:
                self._count_prefetch_hits(i, i + 1)
            if self._prefetching:
                self._hint(i, i)
        return text

    def fetch_text(self, i: int, stats: list | None) -> str:
        """Segment i's text after `cached_text(i)` returned None; adds to `stats` like `texts`."""
        out = [None]
        self._fill(out, i, stats)
        if self._prefetched:
            self._count_prefetch_hits(i, i + 1)
        if self._prefetching:
            self._hint(i, i)
        return out[0]

    def _fill(self, out: list, first: int, stats: list | None) -> None:
        """The slow path of `texts`: staged prefetches, then fetches and in-flight waits."""
        missing = []
        for k, text in enumerate(out):
            if text is None:
                staged = self._staged.pop(first + k, None) if self._staged else None
                if staged is None:
                    missing.append(first + k)
                else:
                    out[k] = staged
        if not missing:
            return
        if self._closed:
            raise ValueError("this Context is closed: it can no longer read from storage")
        started = _perf()
        loaded = self._load(missing, "demand", stats)
        for i in missing:
            out[i - first] = loaded[i]
        if stats is not None:
            stats[MISSES] += len(missing)
            stats[STALL] += _perf() - started

    def _count_prefetch_hits(self, first: int, stop: int) -> None:
        prefetched = self._prefetched
        for i in range(first, stop):
            if i in prefetched:
                prefetched.discard(i)
                self.prefetch.hits += 1

    def _load(self, indices: Sequence[int], purpose: str, stats: list | None) -> dict[int, str]:
        """Bring `indices` in: claim the ones nobody is fetching, fetch those, wait for the rest."""
        segments = self.segments
        claimed: list[int] = []
        waiting: dict[int, Future] = {}
        ready: dict[int, str] = {}
        with self._lock:
            for i in indices:
                future = self._inflight.get(i)
                if future is not None:
                    waiting[i] = future
                elif segments[i] in self.cache or i in self._staged:
                    if purpose == "demand":
                        ready[i] = None  # fill in below, outside the lock
                else:
                    self._inflight[i] = Future()
                    claimed.append(i)
        vanished = []
        for i in list(ready):
            text = self.cache.get(segments[i])
            if text is None:
                text = self._staged.pop(i, None)
            if text is None:  # evicted (or read by another thread) meanwhile
                del ready[i]
                vanished.append(i)
            else:
                ready[i] = text
        if claimed:
            policy = self.fetch if purpose == "demand" or self.background_fetch is None else self.background_fetch
            try:
                policy.fetch(
                    [(i, segments[i]) for i in claimed],
                    self.layout,
                    lambda request: ready.update(self._complete(request, purpose, stats)),
                )
            except BaseException as error:
                self._fail(claimed, error)
                raise
        for i, future in waiting.items():
            try:
                ready[i] = future.result()
            except Exception:
                if purpose == "demand":
                    vanished.append(i)  # the GET we waited for failed or was a cancelled prefetch
        if vanished:
            ready.update(self._load(vanished, purpose, stats))  # one more round, fetching them ourselves
        return ready

    def _fail(self, claimed: list[int], error: BaseException) -> None:
        """Release claims that will not complete; their waiters retry the fetch themselves."""
        if not isinstance(error, Exception):  # an interrupt is the claimant's, not the waiters'
            error = StoreError(f"the read that was fetching this segment was interrupted ({type(error).__name__})")
        with self._lock:
            futures = [self._inflight.pop(i) for i in claimed if i in self._inflight]
        for future in futures:
            future.set_exception(error)

    def _complete(self, request: RangeRequest, purpose: str, stats: list | None) -> dict[int, str]:
        """GET one request, verify and decode each segment in it, hand them to cache and waiters."""
        data = self._get(request, purpose, stats)
        texts = {}
        for i, seg, piece in request.split(data):
            if seg.sha256 and hashlib.sha256(piece).hexdigest() != seg.sha256:
                raise ObjectChanged(
                    "segment bytes do not match the manifest's sha256 (the object was rewritten?)",
                    key=seg.key,
                    byte_range=(seg.byte_offset, seg.byte_offset + seg.byte_length),
                )
            try:
                texts[i] = (piece, piece.decode("utf-8"))
            except UnicodeDecodeError as error:
                raise ObjectChanged(
                    f"segment is not valid UTF-8 ({error.reason} at byte {error.start})",
                    key=seg.key,
                    byte_range=(seg.byte_offset, seg.byte_offset + seg.byte_length),
                ) from None
        out = {}
        for i, (piece, text) in texts.items():
            seg = self.segments[i]
            self.cache.put(seg, piece, text)
            if purpose == "prefetch":
                if seg not in self.cache:
                    self._staged[i] = text
                self._prefetched.add(i)
                self.prefetch.segments_fetched += 1
                self.prefetch.bytes_fetched += seg.byte_length
            with self._lock:
                future = self._inflight.pop(i, None)
            if future is not None:
                future.set_result(text)
            out[i] = text
        return out

    def _get(self, request: RangeRequest, purpose: str, stats: list | None) -> bytes:
        """One GET with retries; exactly `request.nbytes` bytes or a typed error.

        A short body is retried like a transient fault (a truncated transfer); if every
        attempt comes back short, the object is smaller than the manifest says, and a
        longer body means it was rewritten: both are `ObjectChanged`.
        """
        expected = request.nbytes
        trace, retry, hedge, store = self.trace, self.retry, self.hedge, self.store
        outcome = ""
        for attempt in range(1, retry.attempts + 1):
            began = trace.now()
            duplicates = []  # the hedge appends one entry per duplicate GET it sends
            try:
                if hedge is None:
                    data = store.get(request.key, request.start, request.stop)
                else:
                    data = hedge.get(lambda: store.get(request.key, request.start, request.stop), expected, duplicates.append)
            except TransientStoreError as error:
                outcome, nbytes = error.kind, 0
            except StoreError as error:
                self._record_get(request, began, 0, attempt, type(error).__name__, purpose, stats, duplicates)
                raise
            else:
                nbytes = len(data)
                if nbytes == expected:
                    self._record_get(request, began, nbytes, attempt, "ok", purpose, stats, duplicates)
                    return data
                if nbytes > expected:
                    self._record_get(request, began, nbytes, attempt, "changed", purpose, stats, duplicates)
                    raise ObjectChanged(
                        f"GET returned {nbytes} bytes where the manifest says {expected}",
                        key=request.key,
                        byte_range=request.byte_range,
                    )
                outcome = "short_read"
            self._record_get(request, began, nbytes, attempt, outcome, purpose, stats, duplicates)
            if attempt < retry.attempts and not self._closed:
                time.sleep(retry.delay(attempt))
            elif self._closed:
                break
        if outcome == "short_read":
            raise ObjectChanged(
                f"every one of {attempt} GETs returned fewer bytes than the manifest's {expected}",
                key=request.key,
                byte_range=request.byte_range,
            )
        raise RetriesExhausted(
            f"GET failed {attempt} times (last: {outcome})", key=request.key, byte_range=request.byte_range
        )

    def _record_get(self, request, began, nbytes, attempt, outcome, purpose, stats, duplicates) -> None:
        requests = 1 + len(duplicates)
        if self.trace.enabled:
            self.trace.record(
                GetEvent(
                    began, request.key, request.start, request.stop, nbytes,
                    self.trace.now() - began, attempt, outcome, purpose, requests,
                )
            )
        if stats is not None:
            with self._lock:
                stats[GETS] += requests

    # -- prefetch -----------------------------------------------------------------

    def _hint(self, first: int, last: int) -> None:
        wanted = self.prefetch.after_access(first, last)
        if wanted is None:
            return
        segments, cache = self.segments, self.cache
        wanted = [i for i in wanted if segments[i] not in cache and i not in self._staged and i not in self._inflight]
        if wanted or self._pending:
            self._schedule(wanted)

    def _schedule(self, wanted: list[int]) -> None:
        with self._wake:
            if self._closed:
                return
            self._pending = wanted
            if self._coordinator is None:
                self.background_fetch = self.fetch.spawn()
                self._coordinator = threading.Thread(target=self._prefetch_loop, name="rlmlab-prefetch", daemon=True)
                self._coordinator.start()
            self._wake.notify()

    def _prefetch_loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                wanted, self._pending = self._pending, []
                self._working = True
            members = [(i, self.segments[i]) for i in wanted]
            for round_ in self.background_fetch.batches(members, self.layout):
                if self._closed or self._pending:
                    break  # closing, or a newer wish replaced this one
                try:
                    self._load([i for i, _ in round_], "prefetch", None)
                except Exception:
                    pass  # the GET events record it; a read that needs the segment will retry
            with self._wake:
                self._working = False

    def wait_prefetch_idle(self, timeout: float = 30.0) -> bool:
        """Block until background prefetching has nothing left to do (for tests and benchmarks)."""
        deadline = _perf() + timeout
        while _perf() < deadline:
            with self._wake:
                idle = not self._pending and not self._working
            if idle:
                return True
            time.sleep(0.002)
        return False

    def close(self, wait: bool = True) -> None:
        """Stop prefetching and the fetch pools. `wait=False` when called from a finalizer,
        which may run on one of those very threads."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        coordinator = self._coordinator
        if wait and coordinator is not None and coordinator is not threading.current_thread():
            coordinator.join()
        for policy in (self.fetch, self.background_fetch, self.cache):
            if policy is not None:
                policy.close(wait=wait)
        if self.hedge is not None:
            self.hedge.close()
