"""Read policies, the segment reader's retries and checks, and the Context's instrumentation.

Stores here are a MemoryStore wrapped in small test stores that count GETs, hold them at
a gate, or inject faults; the last tests run against the embedded S3.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
import time
import uuid

import pytest

from rlmlab.context import Context, open_context
from rlmlab.errors import ObjectChanged, RetriesExhausted, TransientStoreError
from rlmlab.layout import write_context
from rlmlab.policies import cache as cache_policies
from rlmlab.policies import fetch as fetch_policies
from rlmlab.policies import prefetch as prefetch_policies
from rlmlab.policies.prefetch import Adaptive
from rlmlab.retry import RetryPolicy
from rlmlab.stores import MemoryStore, Store

FAST_RETRIES = RetryPolicy(attempts=8, base_s=0.0005, cap_s=0.002)
TEXT = "".join(
    f"{i:04d} line with ünïcödé, € and 🎉{' padding' * (i % 5)}\n" + ("\r\n" if i % 7 == 0 else "")
    for i in range(160)
)


class WrappedStore(Store):
    """Delegates to `inner`, logging every GET (key, start, stop) before it runs."""

    def __init__(self, inner: Store):
        self.inner = inner
        self.uri = f"test+{inner.uri}"
        self.gets: list[tuple[str, int | None, int | None]] = []
        self._log_lock = threading.Lock()

    def get(self, key, start=None, stop=None):
        with self._log_lock:
            self.gets.append((key, start, stop))
        return self._get(key, start, stop)

    def _get(self, key, start, stop):
        return self.inner.get(key, start, stop)

    def gets_of(self, key: str) -> int:
        return sum(1 for k, _, _ in self.gets if k == key)

    def put(self, key, data, *, if_none_match=False):
        self.inner.put(key, data, if_none_match=if_none_match)

    def exists(self, key):
        return self.inner.exists(key)

    def list_info(self, prefix=""):
        return self.inner.list_info(prefix)

    def delete(self, key):
        self.inner.delete(key)


class GatedStore(WrappedStore):
    """GETs of the keys in `gated` wait until `gate` is set."""

    def __init__(self, inner, gated=()):
        super().__init__(inner)
        self.gated = set(gated)
        self.gate = threading.Event()
        self.arrived = threading.Event()

    def _get(self, key, start, stop):
        if key in self.gated:
            self.arrived.set()
            assert self.gate.wait(10), "test gate never opened"
        return self.inner.get(key, start, stop)


class FaultyStore(WrappedStore):
    """Injects faults: transient errors, short reads, or rewritten bytes, by rate or by key."""

    def __init__(self, inner, *, seed=0, transient=0.0, short=0.0, keys=None, mode=None):
        super().__init__(inner)
        self.rng = random.Random(seed)
        self.transient, self.short = transient, short
        self.keys, self.mode = keys, mode  # with `keys`: always apply `mode` to those keys
        self._rng_lock = threading.Lock()

    def _get(self, key, start, stop):
        data = self.inner.get(key, start, stop)
        if self.keys is not None and key in self.keys:
            return self._break(self.mode, key, start, stop, data)
        with self._rng_lock:
            roll = self.rng.random()
        if roll < self.transient:
            return self._break("5xx", key, start, stop, data)
        if roll < self.transient + self.short:
            return self._break("short", key, start, stop, data)
        return data

    @staticmethod
    def _break(mode, key, start, stop, data):
        if mode == "5xx":
            raise TransientStoreError("injected 503", kind="5xx", key=key, byte_range=(start, stop))
        if mode == "short":
            return data[: len(data) // 2]
        if mode == "flipped":
            return bytes([data[0] ^ 0x01]) + data[1:]
        if mode == "longer":
            return data + b"x"
        if mode == "interrupt":
            raise KeyboardInterrupt
        raise AssertionError(mode)


@pytest.fixture
def stored():
    """`stored(text, layout, segment_bytes)` -> (MemoryStore, Manifest)."""

    def make(text=TEXT, layout="segments", segment_bytes=300):
        store = MemoryStore(f"policies-{uuid.uuid4().hex}")
        return store, write_context(text, store, layout=layout, segment_bytes=segment_bytes, progress=False)

    return make


def open_ctx(store, manifest, **options) -> Context:
    options.setdefault("retries", FAST_RETRIES)
    return Context.from_manifest(store, manifest, **options)


def sample_slices(n: int, count: int, seed: int = 1):
    rng = random.Random(seed)
    for _ in range(count):
        a, b = sorted(rng.randrange(n + 1) for _ in range(2))
        yield a, b


# --------------------------------------------------------------------------- every combination


@pytest.mark.parametrize("layout", ["segments", "single"])
@pytest.mark.parametrize("prefetch", sorted(prefetch_policies.registry))
@pytest.mark.parametrize("cache", sorted(cache_policies.registry))
@pytest.mark.parametrize("fetch", sorted(fetch_policies.registry))
def test_every_policy_combination_returns_identical_text(stored, tmp_path, fetch, cache, prefetch, layout):
    store, manifest = stored(layout=layout)
    options = {"cache_dir": tmp_path} if cache == "disk" else {}
    with open_ctx(store, manifest, fetch=fetch, cache=cache, prefetch=prefetch, workers=4, **options) as ctx:
        for a, b in sample_slices(len(TEXT), 25):
            assert ctx[a:b] == TEXT[a:b]
        assert ctx[::-7] == TEXT[::-7]
        assert ctx.find("0150 line") == TEXT.find("0150 line")
        assert ctx.count("🎉") == TEXT.count("🎉")
        assert ctx.lines(40, 55) == "".join(TEXT.splitlines(True)[40:55])
        assert str(ctx) == TEXT
        assert str(ctx) == TEXT  # a second full read, served by whatever the policies kept


# --------------------------------------------------------------------------- caches


def test_memory_lru_stays_within_cache_bytes_and_evicts_least_recent(stored):
    store, manifest = stored()
    counting = WrappedStore(store)
    budget = 3 * max(s.byte_length for s in manifest.segments)
    with open_ctx(counting, manifest, fetch="sequential", cache="memory", cache_bytes=budget, prefetch="none") as ctx:
        cache = ctx.reader.cache
        for seg in manifest.segments:
            ctx[seg.char_offset : seg.char_offset + 1]
            assert cache.size <= budget
        assert cache.evictions >= len(manifest.segments) - 3
        last, first = manifest.segments[-1], manifest.segments[0]
        before = len(counting.gets)
        ctx[last.char_offset]  # most recent: still cached
        assert len(counting.gets) == before
        ctx[first.char_offset]  # evicted long ago: fetched again
        assert counting.gets_of(first.key) == 2


def test_segment_larger_than_the_cache_is_read_but_not_kept(stored):
    store, manifest = stored(segment_bytes=4000)
    counting = WrappedStore(store)
    with open_ctx(counting, manifest, cache="memory", cache_bytes=100, prefetch="none") as ctx:
        assert str(ctx) == TEXT and str(ctx) == TEXT
        assert ctx.reader.cache.size == 0
        assert len(counting.gets) == 2 * len(manifest.segments)


def test_disk_cache_survives_reopen(stored, tmp_path):
    store, manifest = stored()
    with open_ctx(store, manifest, cache="disk", cache_dir=tmp_path, prefetch="none") as ctx:
        assert str(ctx) == TEXT
    counting = WrappedStore(store)
    with open_ctx(counting, manifest, cache="disk", cache_dir=tmp_path, prefetch="none") as ctx:
        assert str(ctx) == TEXT
        assert counting.gets == []
        assert ctx.reader.cache.hits == len(manifest.segments)
    assert not list(tmp_path.rglob(".tmp-*")), "atomic writes leave no temporary files"


def test_disk_cache_serves_warm_reads_from_its_memory_front(stored, tmp_path):
    store, manifest = stored()
    counting = WrappedStore(store)
    with open_ctx(counting, manifest, cache="disk", cache_dir=tmp_path, prefetch="none") as ctx:
        assert str(ctx) == TEXT
        for path in tmp_path.rglob("*"):
            if path.is_file():
                path.unlink()
        assert str(ctx) == TEXT  # the files are gone, the decoded text in front of them is not
        assert len(counting.gets) == len(manifest.segments)
        assert ctx.reader.cache.front.hits == len(manifest.segments)


def test_disk_cache_drops_a_corrupted_entry_instead_of_returning_it(stored, tmp_path):
    store, manifest = stored()
    with open_ctx(store, manifest, cache="disk", cache_dir=tmp_path, prefetch="none") as ctx:
        str(ctx)
    victim = manifest.segments[2]
    path = tmp_path / victim.sha256[:2] / victim.sha256
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    counting = WrappedStore(store)
    with open_ctx(counting, manifest, cache="disk", cache_dir=tmp_path, prefetch="none") as ctx:
        assert str(ctx) == TEXT
    assert counting.gets == [(victim.key, None, None)]
    assert path.read_bytes() == store.get(victim.key)


def test_disk_cache_stays_within_cache_bytes_across_reopen(stored, tmp_path):
    store, manifest = stored()
    budget = 4 * max(s.byte_length for s in manifest.segments)
    with open_ctx(store, manifest, cache="disk", cache_dir=tmp_path, cache_bytes=budget, prefetch="none") as ctx:
        assert str(ctx) == TEXT
        assert ctx.reader.cache.evictions > 0
    on_disk = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert on_disk <= budget
    smaller = budget // 2
    cache_policies.DiskLRU(cache_bytes=smaller, cache_dir=tmp_path)
    assert sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()) <= smaller


# --------------------------------------------------------------------------- in-flight and prefetch


def test_a_read_waits_for_the_prefetch_in_flight_instead_of_a_second_get(stored):
    store, manifest = stored()
    seg1 = manifest.segments[1]
    gated = GatedStore(store, gated={seg1.key})
    with open_ctx(gated, manifest, cache="memory", prefetch="readahead", readahead_segments=1) as ctx:
        ctx[0]  # reads segment 0; readahead starts the GET of segment 1, held at the gate
        assert gated.arrived.wait(10)
        started = threading.Event()
        result = {}

        def read_segment_1():
            started.set()
            result["text"] = ctx[seg1.char_offset : seg1.char_offset + seg1.char_length]

        reader = threading.Thread(target=read_segment_1)
        reader.start()
        assert started.wait(10)
        time.sleep(0.2)  # the reader is now blocked: on the in-flight GET, or on a second GET at the gate
        assert reader.is_alive()
        gated.gate.set()
        reader.join(10)
        assert result["text"] == TEXT[seg1.char_offset : seg1.char_offset + seg1.char_length]
        assert gated.gets_of(seg1.key) == 1
        access = ctx.trace.to_pandas("access").iloc[-1]
        assert (access.misses, access.gets) == (1, 0) and access.stall_s > 0


def test_concurrent_cold_reads_of_one_segment_issue_one_get(stored):
    store, manifest = stored()
    seg = manifest.segments[3]
    gated = GatedStore(store, gated={seg.key})
    with open_ctx(gated, manifest, prefetch="none") as ctx:
        results = []
        threads = [threading.Thread(target=lambda: results.append(ctx[seg.char_offset : seg.char_offset + 5]))
                   for _ in range(4)]
        for t in threads:
            t.start()
        assert gated.arrived.wait(10)
        time.sleep(0.2)
        gated.gate.set()
        for t in threads:
            t.join(10)
        assert results == [TEXT[seg.char_offset : seg.char_offset + 5]] * 4
        assert gated.gets_of(seg.key) == 1


def test_readahead_fetches_the_next_segments_and_reads_then_hit(stored):
    store, manifest = stored()
    counting = WrappedStore(store)
    with open_ctx(counting, manifest, prefetch="readahead", readahead_segments=3) as ctx:
        ctx[0]
        assert ctx.wait_prefetch()
        assert ctx.reader.prefetch.segments_fetched == 3
        gets = ctx.trace.to_pandas("get")
        assert sorted(gets[gets.purpose == "prefetch"].key) == sorted(s.key for s in manifest.segments[1:4])
        end = manifest.segments[3].char_offset + manifest.segments[3].char_length
        before = len(counting.gets)
        assert ctx[manifest.segments[1].char_offset : end] == TEXT[manifest.segments[1].char_offset : end]
        access = ctx.trace.to_pandas("access").iloc[-1]
        assert (access.segments, access.hits, access.gets) == (3, 3, 0)
        assert ctx.reader.prefetch.hits == 3
        demand = [g for g in counting.gets[before:] if g[0] in {s.key for s in manifest.segments[1:4]}]
        assert demand == []


def test_adaptive_window_doubles_while_sequential_and_resets_on_a_jump(stored):
    store, manifest = stored(segment_bytes=100)
    policy = Adaptive(initial_window_bytes=100, max_window_bytes=400)
    policy.bind(manifest.segments)
    windows = []
    for i in range(5):
        wanted = policy.after_access(i, i)
        windows.append(policy.window)
        assert wanted[0] == i + 1
        assert sum(manifest.segments[j].byte_length for j in wanted[:-1]) <= policy.window
    assert windows == [100, 200, 400, 400, 400]
    assert policy.after_access(4, 4) is None  # a re-read of the same segment changes nothing
    assert policy.after_access(30, 30) == [] and policy.window == 0  # a jump
    assert policy.after_access(31, 31)[0] == 32 and policy.window == 100  # sequential again


def test_adaptive_prefetch_serves_a_sequential_scan(stored):
    store, manifest = stored(segment_bytes=200)
    counting = WrappedStore(store)
    with open_ctx(counting, manifest, prefetch="adaptive", initial_window_bytes=400) as ctx:
        for pos in range(0, len(TEXT), 50):
            assert ctx[pos : pos + 50] == TEXT[pos : pos + 50]
            ctx.wait_prefetch()
        access = ctx.trace.to_pandas("access")
        assert access.gets.sum() == 1  # only the very first read went to storage
        assert ctx.reader.prefetch.hits == len(manifest.segments) - 1
        assert sorted(k for k, _, _ in counting.gets) == sorted(s.key for s in manifest.segments)


def test_background_prefetch_does_not_block_open_and_pulls_everything(stored):
    store, manifest = stored()
    gated = GatedStore(store, gated={s.key for s in manifest.segments})
    with open_ctx(gated, manifest, prefetch="background", workers=4) as ctx:
        assert gated.arrived.wait(10)  # open returned while the background GETs wait at the gate
        gated.gate.set()
        assert ctx.wait_prefetch()
        assert ctx.reader.prefetch.segments_fetched == len(manifest.segments)
        before = len(gated.gets)
        assert str(ctx) == TEXT
        assert len(gated.gets) == before


def test_eager_loads_everything_before_open_returns(stored):
    store, manifest = stored()
    counting = WrappedStore(store)
    with open_ctx(counting, manifest, prefetch="eager") as ctx:
        assert len(counting.gets) == len(manifest.segments)
        assert str(ctx) == TEXT
        assert len(counting.gets) == len(manifest.segments)
        assert ctx.trace.to_pandas("access").iloc[-1].gets == 0


def test_coalesced_merges_single_object_ranges_up_to_the_cap(stored):
    store, manifest = stored(layout="single", segment_bytes=200)
    counting = WrappedStore(store)
    cap = 1000
    with open_ctx(counting, manifest, fetch="coalesced", max_range_bytes=cap, prefetch="none") as ctx:
        assert str(ctx) == TEXT
    assert all(stop - start <= cap for _, start, stop in counting.gets)
    covered = sorted((start, stop) for _, start, stop in counting.gets)
    assert covered[0][0] == 0 and covered[-1][1] == manifest.total_bytes
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))  # contiguous, no overlap
    assert len(counting.gets) < len(manifest.segments) / 2


def test_coalesced_on_the_segments_layout_is_one_get_per_segment(stored):
    store, manifest = stored(layout="segments")
    counting = WrappedStore(store)
    with open_ctx(counting, manifest, fetch="coalesced", prefetch="none") as ctx:
        assert str(ctx) == TEXT
    assert sorted(counting.gets) == sorted((s.key, None, None) for s in manifest.segments)


@pytest.mark.parametrize("cache,prefetch", [("memory", "adaptive"), ("none", "readahead"), ("memory", "background")])
def test_threads_reading_at_once_through_a_small_cache_all_get_the_right_text(stored, cache, prefetch):
    store, manifest = stored(segment_bytes=120)
    faulty = FaultyStore(store, seed=2, transient=0.05)
    budget = 4 * max(s.byte_length for s in manifest.segments)  # far smaller than the context: constant eviction
    with open_ctx(faulty, manifest, cache=cache, cache_bytes=budget, prefetch=prefetch, workers=3) as ctx:
        failures = []

        def reader(seed):
            for a, b in sample_slices(len(TEXT), 150, seed=seed):
                if ctx[a:b] != TEXT[a:b]:
                    failures.append((a, b))

        threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert failures == [] and not any(t.is_alive() for t in threads)
        assert ctx.wait_prefetch() and not ctx.reader._inflight


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("layout,fetch", [("segments", "parallel"), ("single", "coalesced"), ("single", "sequential")])
def test_transient_errors_and_short_reads_are_retried_to_identical_text(stored, layout, fetch):
    store, manifest = stored(layout=layout, segment_bytes=150)
    faulty = FaultyStore(store, seed=7, transient=0.15, short=0.05)  # 10 failures in a row: p = 1e-7
    retries = RetryPolicy(attempts=10, base_s=0.0005, cap_s=0.002)
    with open_ctx(faulty, manifest, fetch=fetch, cache="none", prefetch="readahead", workers=4, retries=retries) as ctx:
        for a, b in sample_slices(len(TEXT), 150, seed=3):
            assert ctx[a:b] == TEXT[a:b]
        gets = ctx.trace.to_pandas("get")
    assert {"ok", "5xx", "short_read"} <= set(gets.outcome)
    assert gets.attempt.max() > 1


@pytest.mark.parametrize("layout", ["segments", "single"])
def test_retries_exhausted_names_the_key_and_range(stored, layout):
    store, manifest = stored(layout=layout)
    seg = manifest.segments[1]
    faulty = FaultyStore(store, keys={seg.key}, mode="5xx")
    with open_ctx(faulty, manifest, fetch="sequential", prefetch="none", retries=RetryPolicy(4, 0.0001, 0.001)) as ctx:
        with pytest.raises(RetriesExhausted) as raised:
            ctx[seg.char_offset]
        expected = (0, seg.byte_length) if layout == "segments" else (seg.byte_offset, seg.byte_offset + seg.byte_length)
        assert raised.value.key == seg.key and raised.value.byte_range == expected
        assert seg.key in str(raised.value) and f"bytes={expected[0]}-{expected[1]}" in str(raised.value)
        assert faulty.gets_of(seg.key) == 4
        faulty.keys = set()  # the store recovers: nothing wrong was kept
        assert str(ctx) == TEXT


@pytest.mark.parametrize("mode", ["flipped", "longer", "short"])
@pytest.mark.parametrize("layout", ["segments", "single"])
def test_changed_objects_raise_object_changed_never_wrong_text(stored, layout, mode):
    store, manifest = stored(layout=layout)
    seg = manifest.segments[2]
    key = seg.key
    faulty = FaultyStore(store, keys={key}, mode=mode)
    fetch = "coalesced" if layout == "single" else "parallel"
    with open_ctx(faulty, manifest, fetch=fetch, prefetch="none", retries=RetryPolicy(3, 0.0001, 0.001)) as ctx:
        if layout == "single":  # every segment shares the one object: any read fails
            with pytest.raises(ObjectChanged) as raised:
                ctx[seg.char_offset]
        else:
            assert ctx[: seg.char_offset] == TEXT[: seg.char_offset]
            with pytest.raises(ObjectChanged) as raised:
                ctx[seg.char_offset :]
        assert raised.value.key == key
        low, high = raised.value.byte_range
        assert low <= seg.byte_offset and seg.byte_offset + seg.byte_length <= high
        faulty.keys = set()
        assert str(ctx) == TEXT


def test_an_interrupted_read_leaves_the_context_usable(stored):
    store, manifest = stored()
    seg = manifest.segments[4]
    faulty = FaultyStore(store, keys={seg.key}, mode="interrupt")
    with open_ctx(faulty, manifest, fetch="parallel", prefetch="readahead") as ctx:
        with pytest.raises(KeyboardInterrupt):
            ctx[seg.char_offset]
        assert not ctx.reader._inflight  # no claim left behind for others to wait on forever
        faulty.keys = set()
        assert str(ctx) == TEXT
        assert ctx.wait_prefetch()


def test_a_failed_prefetch_leaves_reads_working(stored):
    store, manifest = stored()
    seg1 = manifest.segments[1]
    faulty = FaultyStore(store, keys={seg1.key}, mode="5xx")
    with open_ctx(faulty, manifest, prefetch="readahead", readahead_segments=1,
                  retries=RetryPolicy(2, 0.0001, 0.001)) as ctx:
        ctx[0]
        assert ctx.wait_prefetch()
        gets = ctx.trace.to_pandas("get")
        assert list(gets[gets.key == seg1.key].outcome) == ["5xx", "5xx"]
        faulty.keys = set()
        assert ctx[seg1.char_offset : seg1.char_offset + 10] == TEXT[seg1.char_offset : seg1.char_offset + 10]


# --------------------------------------------------------------------------- options and instrumentation


def test_unknown_policies_and_options_are_named(stored):
    store, manifest = stored()
    with pytest.raises(ValueError, match="unknown fetch policy 'fastest'.*coalesced, parallel, sequential"):
        open_ctx(store, manifest, fetch="fastest")
    with pytest.raises(TypeError, match="unknown option 'hole_bytes' for fetch=parallel"):
        open_ctx(store, manifest, fetch="parallel", hole_bytes=10)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        open_ctx(store, manifest, workers=0)
    with pytest.raises(TypeError, match="retries must be"):
        open_ctx(store, manifest, retries="many")


def test_policies_can_be_passed_as_instances_and_shared(stored):
    store, manifest = stored()
    shared = cache_policies.MemoryLRU(cache_bytes=1 << 20)
    counting = WrappedStore(store)
    with open_ctx(counting, manifest, cache=shared, prefetch="none") as first:
        str(first)
    with open_ctx(counting, manifest, cache=shared, prefetch="none") as second:
        assert str(second) == TEXT
    assert len(counting.gets) == len(manifest.segments)


def test_repr_names_size_and_policies_but_never_the_text(stored):
    store, manifest = stored()
    with open_ctx(store, manifest, fetch="coalesced", cache="memory", prefetch="readahead") as ctx:
        text = repr(ctx)
    assert f"{len(TEXT):,} chars" in text and f"{len(manifest.segments)} segments" in text
    assert "coalesced" in text and "memory" in text and "readahead" in text
    assert "line with" not in text


def test_trace_records_one_access_per_operation_and_one_get_per_attempt(stored):
    store, manifest = stored()
    segs = manifest.segments
    with open_ctx(store, manifest, fetch="parallel", prefetch="none") as ctx:
        lo, hi = segs[1].char_offset + 3, segs[3].char_offset + 2
        ctx[lo:hi]  # cold: three segments
        ctx[lo:hi]  # warm
        ctx.find("0099")
        len(ctx)  # metadata only: not an access
        access, gets = ctx.trace.to_pandas("access"), ctx.trace.to_pandas("get")
    assert list(access.op) == ["slice", "slice", "find"]
    cold, warm = access.iloc[0], access.iloc[1]
    assert (cold.char_start, cold.char_stop, cold.segments, cold.misses, cold.hits, cold.gets) == (lo, hi, 3, 3, 0, 3)
    assert cold.bytes_needed == sum(s.byte_length for s in segs[1:4])
    assert cold.stall_s > 0 and cold.wall_s >= cold.stall_s
    assert (warm.misses, warm.hits, warm.gets, warm.stall_s) == (0, 3, 0, 0.0)
    first_gets = gets.iloc[:3]
    assert sorted(first_gets.key) == sorted(s.key for s in segs[1:4])
    assert set(first_gets.outcome) == {"ok"} and set(first_gets.purpose) == {"demand"}
    assert dict(zip(first_gets.key, first_gets.nbytes)) == {s.key: s.byte_length for s in segs[1:4]}
    assert (first_gets.latency_s >= 0).all() and (first_gets.attempt == 1).all()


def test_trace_can_be_turned_off(stored):
    store, manifest = stored()
    with open_ctx(store, manifest, trace=False) as ctx:
        assert str(ctx) == TEXT and ctx[5:10] == TEXT[5:10]
        assert ctx.trace.to_pandas("access").empty and ctx.trace.to_pandas("get").empty


# --------------------------------------------------------------------------- embedded S3


@pytest.mark.parametrize("client", ["boto3", "obstore"])
def test_open_context_over_the_embedded_s3(s3_server, s3_uri, client):
    write_context(TEXT, s3_uri, segment_bytes=400, endpoint_url=s3_server.endpoint_url, progress=False)
    with open_context(s3_uri, endpoint_url=s3_server.endpoint_url, client=client, retries=FAST_RETRIES) as ctx:
        assert len(ctx) == len(TEXT)
        for a, b in sample_slices(len(TEXT), 30):
            assert ctx[a:b] == TEXT[a:b]
        assert ctx.findall(r"0\d\d7 line") == re.findall(r"0\d\d7 line", TEXT)
        assert str(ctx) == TEXT


def test_random_slices_survive_an_s3_that_fails_and_resets(s3_server_factory, new_bucket_uri):
    server = s3_server_factory(error_rate=0.1, reset_rate=0.03, seed=11)
    uri = new_bucket_uri(server)
    write_context(TEXT, uri, layout="single", segment_bytes=300, endpoint_url=server.endpoint_url, progress=False)
    with open_context(uri, endpoint_url=server.endpoint_url, fetch="coalesced", cache="none",
                      prefetch="readahead", retries=FAST_RETRIES) as ctx:
        for a, b in sample_slices(len(TEXT), 120, seed=5):
            assert ctx[a:b] == TEXT[a:b]
        outcomes = set(ctx.trace.to_pandas("get").outcome)
    assert "ok" in outcomes and len(outcomes) > 1  # faults were injected, and retried away


def test_a_closed_context_refuses_storage_reads_and_a_dropped_one_stops_its_threads(stored):
    store, manifest = stored()
    ctx = open_ctx(store, manifest, cache="memory", prefetch="readahead")
    assert ctx[:5] == TEXT[:5]
    ctx.close()
    assert ctx[:5] == TEXT[:5]  # cached text is still there
    with pytest.raises(ValueError, match="closed"):
        ctx[-1]
    dropped = open_ctx(store, manifest, prefetch="readahead")
    dropped[0]
    reader = dropped.reader
    del dropped
    import gc

    gc.collect()
    assert reader._closed
    # The finalizer cannot wait (it may run on the prefetch thread itself), so the
    # coordinator finishes the round it is fetching and then exits on its own.
    if reader._coordinator is not None:
        reader._coordinator.join(timeout=10)
        assert not reader._coordinator.is_alive()
