"""Hedged GETs: when a GET runs well past what GETs of its size usually take, send a
duplicate and keep whichever answers first (Dean and Barroso, "The Tail at Scale", 2013).

Object stores have long tails: a busy node or a throttled connection answers seconds late.
Without hedging, a reader stalls for the whole slow response, and a scan stalls once per
slow GET; retries do not help, because nothing failed. A hedge costs one extra request,
sent only after `factor` times the median latency of recent GETs in the same size class
(sizes in powers of 4), so on a healthy store almost no request is duplicated.

The duplicate's bytes go through the same length and sha256 checks as any GET: hedging
changes when text arrives, never what text.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

_perf = time.perf_counter


class LatencyHistory:
    """Recent GET latencies by size class (powers of 4), shared by every reader of one store.

    Shared, because a Context opened for one query starts with no samples of its own, and
    a parallel read sends all its GETs before any returns: only what earlier readers of the
    same store saw can tell a slow response from a normal one.
    """

    _by_store: dict[tuple, "LatencyHistory"] = {}
    _registry_lock = threading.Lock()

    def __init__(self, window: int = 64):
        self._samples: dict[int, deque] = {}
        self._window = window
        self._lock = threading.Lock()

    @classmethod
    def of(cls, store) -> "LatencyHistory":
        """The process-wide history of `store` (by type, endpoint and URI)."""
        key = (type(store).__name__, getattr(store, "endpoint_url", None), store.uri)
        with cls._registry_lock:
            return cls._by_store.setdefault(key, cls())

    @staticmethod
    def size_class(nbytes: int) -> int:
        return max(nbytes, 1).bit_length() // 2

    def observe(self, nbytes: int, latency_s: float) -> None:
        with self._lock:
            samples = self._samples.setdefault(self.size_class(nbytes), deque(maxlen=self._window))
            samples.append(latency_s)

    def median(self, nbytes: int, min_samples: int) -> float | None:
        """The median latency of GETs of about `nbytes`, or None with fewer than `min_samples`."""
        with self._lock:
            samples = self._samples.get(self.size_class(nbytes))
            if samples is None or len(samples) < min_samples:
                return None
            return statistics.median(samples)


class HedgePolicy:
    """When to duplicate a GET, and the threads that run hedged GETs (one policy per Context).

    `factor` x the size class's median latency is the wait before the duplicate;
    `min_delay_s` keeps a store with sub-millisecond latency (a local simulator) from
    hedging on noise; until the history holds `min_samples` GETs of a size class, those
    GETs are not hedged (nothing to compare with). Without a `history`, the policy keeps
    its own. Every hedged GET runs on the policy's threads (the caller must be free to take the
    first answer), created as needed up to `threads`: a cap below the reader's demand and
    prefetch workers together would queue GETs there and make them look slow.
    """

    def __init__(
        self,
        factor: float = 3.0,
        min_delay_s: float = 0.02,
        min_samples: int = 8,
        history: LatencyHistory | None = None,
        threads: int = 512,
    ):
        if factor <= 1:
            raise ValueError(f"factor must be > 1 (a hedge before the median doubles most GETs), got {factor}")
        if min_delay_s < 0 or min_samples < 1 or threads < 2:
            raise ValueError(f"need min_delay_s >= 0, min_samples >= 1 and threads >= 2, got {min_delay_s}, {min_samples}, {threads}")
        self.factor, self.min_delay_s, self.min_samples, self.threads = factor, min_delay_s, min_samples, threads
        self.history = history or LatencyHistory()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        self.hedged = 0  # duplicates sent
        self.won = 0  # duplicates that answered first

    def delay_for(self, nbytes: int) -> float | None:
        """Seconds to wait before duplicating a GET of `nbytes`; None while there are too few samples."""
        median = self.history.median(nbytes, self.min_samples)
        return None if median is None else max(self.min_delay_s, self.factor * median)

    def observe(self, nbytes: int, latency_s: float) -> None:
        self.history.observe(nbytes, latency_s)

    def get(self, fetch: Callable[[], bytes], nbytes: int, on_duplicate: Callable[[bool], None]) -> bytes:
        """`fetch()`'s bytes, from the original request or from a duplicate.

        `on_duplicate(True)` is called when a duplicate is sent (the caller counts requests).
        An error from one request is raised only when the other failed too (or was never sent).
        """
        began = _perf()
        delay = self.delay_for(nbytes)
        first = None if delay is None else self._submit(fetch)
        if first is None:  # too few samples yet, or closed: an ordinary GET
            data = fetch()
            self.observe(nbytes, _perf() - began)
            return data
        racing = {first}
        if not wait(racing, timeout=delay).done:
            duplicate = self._submit(fetch)
            if duplicate is not None:
                racing.add(duplicate)
                on_duplicate(True)
                with self._lock:
                    self.hedged += 1
        error: BaseException | None = None
        while racing:
            done, racing = wait(racing, return_when=FIRST_COMPLETED)
            for future in done:
                if future.exception() is None:
                    if future is not first:
                        with self._lock:
                            self.won += 1
                    self.observe(nbytes, _perf() - began)
                    return future.result()
                error = error or future.exception()
        raise error

    def _submit(self, fetch: Callable[[], bytes]) -> Future | None:
        """Run `fetch` on the hedging threads; None once closed."""
        with self._lock:
            if self._closed:
                return None
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="rlmlab-hedge")
            return self._pool.submit(fetch)

    def close(self) -> None:
        """Stop taking hedged GETs; a losing request still in flight finishes on its own."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
