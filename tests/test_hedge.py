"""Hedged GETs: a GET far slower than its size class's median gets a duplicate, the first
answer wins, errors surface only when both fail, and a Context under slow responses still
returns exact text while the trace counts every request the store billed."""

from __future__ import annotations

import threading

import pytest

from rlmlab.context import open_context
from rlmlab.errors import TransientStoreError
from rlmlab.hedge import HedgePolicy
from rlmlab.layout import write_context
from rlmlab.stores import MemoryStore, open_store


class Requests:
    """A fetch function whose calls are scripted by number: 'fast', 'hold' (until released), or an error."""

    def __init__(self, plan: dict[int, str]):
        self.plan = plan
        self.calls = 0
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self) -> bytes:
        with self.lock:
            self.calls += 1
            n = self.calls
        kind = self.plan.get(n, "fast")
        if kind == "hold":
            assert self.release.wait(30)
            return b"late"
        if kind == "fail":
            raise TransientStoreError("injected", kind="server_error", key="k")
        if kind == "hold-then-fail":
            assert self.release.wait(30)
            raise TransientStoreError("injected", kind="reset", key="k")
        return f"answer {n}".encode()


def warmed(policy: HedgePolicy, nbytes: int = 1000, latency_s: float = 0.001) -> HedgePolicy:
    for _ in range(policy.min_samples):
        policy.observe(nbytes, latency_s)
    return policy


def test_a_slow_get_is_duplicated_and_the_duplicate_answers():
    hedge = warmed(HedgePolicy(min_delay_s=0.01))
    requests, sent = Requests({1: "hold"}), []
    try:
        assert hedge.get(requests, 1000, sent.append) == b"answer 2"
        assert requests.calls == 2 and sent == [True] and (hedge.hedged, hedge.won) == (1, 1)
    finally:
        requests.release.set()
        hedge.close()


def test_no_duplicate_without_enough_samples_or_for_another_size_class():
    hedge = HedgePolicy(min_delay_s=0.01, min_samples=8)
    for _ in range(7):
        hedge.observe(1000, 0.001)
    assert hedge.delay_for(1000) is None  # 7 samples: not enough to call anything slow
    hedge.observe(1000, 0.001)
    assert hedge.delay_for(1000) == pytest.approx(0.01)  # 3 x 1 ms, raised to the floor
    assert hedge.delay_for(1_000_000) is None  # a 1 MB GET is not judged by 1 KB GETs
    requests, sent = Requests({}), []
    assert hedge.get(requests, 1_000_000, sent.append) == b"answer 1" and sent == []
    hedge.close()


def test_an_error_is_raised_only_when_both_requests_failed():
    hedge = warmed(HedgePolicy(min_delay_s=0.01))
    requests, sent = Requests({1: "hold-then-fail"}), []
    try:
        assert hedge.get(requests, 1000, sent.append) == b"answer 2"  # the slow one failing later is ignored
    finally:
        requests.release.set()
    both_fail, sent = Requests({1: "hold-then-fail", 2: "fail"}), []
    threading.Timer(0.05, both_fail.release.set).start()
    with pytest.raises(TransientStoreError):
        hedge.get(both_fail, 1000, sent.append)
    assert sent == [True]
    hedge.close()


def test_a_closed_policy_makes_ordinary_gets():
    hedge = warmed(HedgePolicy(min_delay_s=0.01))
    hedge.close()
    requests, sent = Requests({}), []
    assert hedge.get(requests, 1000, sent.append) == b"answer 1" and sent == []


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="factor"):
        HedgePolicy(factor=1.0)
    with pytest.raises(ValueError, match="min_samples"):
        HedgePolicy(min_samples=0)


def test_hedging_is_on_by_default_only_for_remote_stores(s3_uri, s3_server):
    write_context("a line\n" * 100, s3_uri, endpoint_url=s3_server.endpoint_url, progress=False)
    with open_context(s3_uri, endpoint_url=s3_server.endpoint_url) as remote:
        assert isinstance(remote.reader.hedge, HedgePolicy)
    with open_context(s3_uri, endpoint_url=s3_server.endpoint_url, hedge=False) as unhedged:
        assert unhedged.reader.hedge is None
    write_context("a line\n", "mem://hedge-local", progress=False)
    with open_context("mem://hedge-local") as local:
        assert local.reader.hedge is None
    with pytest.raises(TypeError, match="hedge"):
        open_context("mem://hedge-local", hedge="yes")
    assert not MemoryStore.remote and open_store(s3_uri, endpoint_url=s3_server.endpoint_url).remote


@pytest.mark.slow
def test_slow_responses_are_cut_short_and_every_request_is_traced(s3_server_factory, new_bucket_uri):
    server = s3_server_factory(ttfb_ms=5, slow_rate=0.1, slow_ms=1500, seed=5)
    uri = new_bucket_uri(server)
    text = "".join(f"{i:05d} ünïcödé line {'x' * (i % 40)}\n" for i in range(6000))
    manifest = write_context(text, uri, segment_bytes=4096, endpoint_url=server.endpoint_url, progress=False)
    hedge = HedgePolicy(min_samples=4)
    with open_context(uri, endpoint_url=server.endpoint_url, fetch="sequential", cache="none", prefetch="none", hedge=hedge) as ctx:
        before = server.counts
        pieces = [ctx[s.char_offset : s.char_offset + s.char_length] for s in manifest.segments]
        after = server.counts
        gets = ctx.trace.to_pandas("get")
        summary = ctx.trace.summary()
    assert "".join(pieces) == text
    assert after["slow"] - before["slow"] >= 3, "the server slowed too few GETs for the test to mean anything"
    assert hedge.hedged >= 1 and hedge.won >= 1
    assert (gets.requests == 2).sum() == hedge.hedged and (gets.outcome == "ok").all()
    # the trace bills what the server served; a losing request still in flight is counted too
    assert summary["gets"] >= after["object_reads"] - before["object_reads"]
