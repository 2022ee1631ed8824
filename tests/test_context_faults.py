"""Issue 2's fault acceptance: with 5% 5xx, 1% resets and 1% slow responses injected by the
embedded S3, 10,000 random slices read from several threads return text identical to the
source, and the trace shows the faults were met: errors retried away, slow responses
waited out or cut short by hedged duplicates.
"""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from rlmlab.context import open_context
from rlmlab.layout import write_context

SLICES = 10_000
THREADS = 8
SEGMENT_BYTES = 16 * 1024
# A slow response only has to be far slower than a normal one (a few ms here) to exercise
# the reader waiting on it; the 2 s default would add ~150 slow GETs x 2 s / 8
# threads = ~40 s of pure sleep, so 200 ms keeps the whole test near half a minute.
SLOW_MS = 200
FAILURE_KINDS = {"server_error", "slow_down", "reset", "short_read", "connection", "timeout"}


def _source_text(n_bytes: int) -> str:
    """Lines of mixed scripts (ASCII, accents, CJK, emoji, some CRLF) of about `n_bytes`."""
    rng = random.Random(2)
    words = "log entry alpha ünïcödé naïve façade 東京 データ €42 🎉 ok 👩‍💻 ∑x² end".split()
    lines, size = [], 0
    while size < n_bytes:
        line = f"{len(lines):06d} " + " ".join(rng.choice(words) for _ in range(rng.randrange(3, 30)))
        line += "\r\n" if len(lines) % 11 == 0 else "\n"
        lines.append(line)
        size += len(line.encode())
    return "".join(lines)


def _random_slices(n_chars: int, boundaries: list[int], count: int, seed: int) -> list[tuple[int, int]]:
    """Random [start, stop) ranges: short ones anywhere, some across segment boundaries, some long."""
    rng = random.Random(seed)
    slices = []
    for _ in range(count):
        shape = rng.random()
        if shape < 0.6:  # short, anywhere
            start = rng.randrange(n_chars)
            stop = start + rng.randrange(1, 2_000)
        elif shape < 0.9:  # straddling a boundary between two segments
            edge = rng.choice(boundaries)
            start = edge - rng.randrange(1, 500)
            stop = edge + rng.randrange(1, 500)
        else:  # long: up to about three segments
            start = rng.randrange(n_chars)
            stop = start + rng.randrange(1, 3 * SEGMENT_BYTES)
        slices.append((max(start, 0), min(stop, n_chars)))
    return slices


@pytest.mark.slow
def test_ten_thousand_slices_are_exact_under_injected_faults(s3_server_factory, new_bucket_uri):
    server = s3_server_factory(error_rate=0.05, reset_rate=0.01, slow_rate=0.01, slow_ms=SLOW_MS, seed=7)
    uri = new_bucket_uri(server)
    text = _source_text(2_000_000)
    manifest = write_context(text, uri, segment_bytes=SEGMENT_BYTES, endpoint_url=server.endpoint_url, progress=False)
    assert len(manifest.segments) > 100 and len(text.encode()) > len(text)  # small segments, multi-byte text
    boundaries = [s.char_offset for s in manifest.segments[1:]]
    slices = _random_slices(len(text), boundaries, SLICES, seed=3)

    with open_context(uri, endpoint_url=server.endpoint_url, cache="none", prefetch="none") as ctx:
        before = server.counts  # the manifest's own GET at open may have met a fault too

        def check(chunk: list[tuple[int, int]]) -> list[tuple[int, int]]:
            return [(a, b) for a, b in chunk if ctx[a:b] != text[a:b]]

        with ThreadPoolExecutor(THREADS) as pool:
            wrong = [bad for chunk in pool.map(check, [slices[k::THREADS] for k in range(THREADS)]) for bad in chunk]
        after = server.counts
        accesses, gets = ctx.trace.to_pandas("access"), ctx.trace.to_pandas("get")

    assert wrong == [], f"{len(wrong)} of {SLICES} slices differ from the source, e.g. {wrong[:5]}"
    assert len(accesses) == SLICES and (accesses.misses == accesses.segments).all()  # cache="none": all GETs

    injected = {kind: after[kind] - before[kind] for kind in ("errors", "resets", "slow")}
    assert all(injected.values()), f"the server injected no faults of some kind: {injected}"
    # the trace saw every GET the server did, hedged duplicates included
    assert gets.requests.sum() >= after["object_reads"] - before["object_reads"]

    outcomes = Counter(gets.outcome)
    failed, ok = gets[gets.outcome != "ok"], gets[gets.outcome == "ok"]
    assert set(outcomes) - {"ok"} <= FAILURE_KINDS, f"unexpected GET outcomes: {outcomes}"
    assert outcomes.keys() & {"server_error", "slow_down"} and outcomes.keys() & {"reset", "short_read"}, outcomes
    # every injected 5xx and reset surfaced as a failed attempt (or lost a hedged race), and each was retried to success
    masked = (ok.requests - 1).sum()
    assert failed.requests.sum() + masked >= injected["errors"] + injected["resets"], (outcomes, injected)
    assert (gets.attempt > 1).sum() == len(failed)
    where = ["key", "byte_start", "byte_stop"]
    succeeded = set(map(tuple, ok[where].astype(str).values))
    assert set(map(tuple, failed[where].astype(str).values)) <= succeeded
    # each slow response was waited out, or cut short by a hedged duplicate
    assert (ok.latency_s >= SLOW_MS / 1000).sum() + (gets.requests - 1).sum() >= injected["slow"]
    assert ctx.reader.hedge.won >= 1
