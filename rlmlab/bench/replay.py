"""Replay the shipped recordings on the embedded S3 under naive, parallel+cache and adaptive prefetch.

Each recording in `data/recordings/` is replayed against its own corpus (regenerated from
its header and written to the embedded S3 at each segment size) with the server's first
byte delayed by `--ttfb` ms, under three read policies. Model calls take their recorded
time, so prefetch can hide storage behind "model thinking" as it would in a live run.
Per run, the end-to-end time is split into model time, REPL time, storage stall and
engine time; per recording, the summary gives stall(best policy) / stall(naive).

It also measures the engine's own time for a zero-latency replay of a synthetic
30-iteration, 500-sub-call run (in memory, no storage), the engine-overhead figure the
issue asks for.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from ..context import open_context
from ..layout import write_context
from ..llm.fakes import ScriptedClient
from ..replay.cassette import read_cassette
from ..replay.record import record
from ..replay.replay import replay
from ..rlm.engine import RLM
from ..replay.scripted import corpus_text
from ..sim import S3Server
from .common import median, suite_dir, write_results

POLICIES = {
    "naive": {"fetch": "sequential", "cache": "none", "prefetch": "none"},
    "parallel+memory": {"fetch": "parallel", "cache": "memory", "prefetch": "none"},
    "adaptive-prefetch": {"fetch": "parallel", "cache": "memory", "prefetch": "adaptive"},
}
DEFAULT_RECORDINGS = Path(__file__).resolve().parents[2] / "data" / "recordings"


def add_arguments(parser) -> None:
    parser.add_argument("--recordings", default=str(DEFAULT_RECORDINGS), help="directory of cassettes (*.jsonl)")
    parser.add_argument("--ttfb", type=float, default=50.0, help="first-byte latency of the embedded S3, ms")
    parser.add_argument("--segment-bytes", default=None, help="comma-separated segment sizes (default 16000; full adds 64000)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per cell (default 1 quick, 3 full)")
    parser.add_argument("--latency", default="recorded", help="model latency for the replays (recorded, zero, scale:K, fitted)")


def run(args) -> dict:
    repeats = args.repeats or (1 if args.quick else 3)
    sizes = [int(s) for s in str(args.segment_bytes).split(",")] if args.segment_bytes else (
        [16_000] if args.quick else [16_000, 64_000])
    out = suite_dir(args.out, "replay")
    cassettes = _recordings(Path(args.recordings))
    if args.quick:
        print(f"quick mode: {repeats} repeat, segment sizes {sizes} (full: 3 repeats, 16000 and 64000)")
    rows: list[dict] = []
    with S3Server(seed=1) as server:
        server.create_bucket("bench")
        floor = server.floor()
        print(f"server floor: median {floor['median_ms']:.2f} ms per GET (p90 {floor['p90_ms']:.2f} ms)")
        uris = {}
        for name, cassette in cassettes.items():
            text = corpus_text(cassette.header)
            for size in sizes:
                uri = f"s3://bench/replay-{name}-{size}"
                write_context(text, uri, segment_bytes=size, endpoint_url=server.endpoint_url, progress=False)
                uris[name, size] = uri
        server.configure(ttfb_ms=args.ttfb)
        progress = tqdm(total=len(uris) * len(POLICIES) * repeats, desc="bench replay", unit="run")
        for repeat in range(repeats):
            for (name, size), uri in uris.items():
                for policy, options in POLICIES.items():
                    result = replay(cassettes[name], uri, latency=args.latency, endpoint_url=server.endpoint_url, **options)
                    stats = result.trace.summary()
                    rows.append({
                        "recording": name, "policy": policy, "segment_bytes": size, "ttfb_ms": args.ttfb,
                        "repeat": repeat, **result.timing(), "gets": stats["gets"], "bytes_fetched": stats["bytes_fetched"],
                        "divergences": len(result.divergences), "identical": result.identical, "error": result.error,
                    })  # fmt: skip
                    progress.update()
        progress.close()
        server.configure(ttfb_ms=0)
    overhead = engine_overhead(repeats=3)
    summary = summarise(rows, floor, args, sizes, repeats, overhead)
    write_results(out, rows, summary)
    print(f"results in {out}/ (results.parquet, summary.json)")
    return summary


def _recordings(directory: Path) -> dict:
    cassettes = {}
    for path in sorted(directory.glob("*.jsonl")):
        cassette = read_cassette(path)
        if cassette.header.extra.get("corpus"):
            cassettes[path.stem] = cassette
        else:
            print(f"skipping {path.name}: it names no generated corpus to replay against")
    if not cassettes:
        raise SystemExit(f"no replayable recordings in {directory} (make them with `rlmlab record --scripted all -o {directory}`)")
    return cassettes


def summarise(rows: list[dict], floor: dict, args, sizes: list[int], repeats: int, overhead: dict) -> dict:
    per_recording = {}
    for name in sorted({r["recording"] for r in rows}):
        for size in sizes:
            cell = [r for r in rows if r["recording"] == name and r["segment_bytes"] == size]
            medians = {}
            for policy in POLICIES:
                runs = [r for r in cell if r["policy"] == policy]
                medians[policy] = {k: median(r[k] for r in runs) for k in
                                   ("end_to_end_s", "model_s", "repl_s", "storage_stall_s", "engine_s")}
            naive = medians["naive"]["storage_stall_s"]
            best = min((p for p in POLICIES if p != "naive"), key=lambda p: medians[p]["storage_stall_s"])
            stall_best = medians[best]["storage_stall_s"]
            per_recording[f"{name}@{size}"] = {
                "medians": medians,
                "best_policy": best,
                "stall_naive_s": naive,
                "stall_best_s": stall_best,
                "stall_best_over_naive": stall_best / naive if naive > 0 else None,
                "all_identical": all(r["identical"] for r in cell),
            }
    return {
        "quick": bool(args.quick),
        "ttfb_ms": args.ttfb,
        "latency": args.latency,
        "segment_sizes": sizes,
        "repeats": repeats,
        "server_floor": floor,
        "recordings": per_recording,
        "engine_overhead": overhead,
    }


def engine_overhead(*, iterations: int = 30, sub_calls: int = 500, repeats: int = 3) -> dict:
    """Engine time of a zero-latency replay of a synthetic run (in memory), median of `repeats`."""
    per_iteration = -(-sub_calls // (iterations - 1))
    replies, remaining = [], sub_calls
    for i in range(iterations - 1):
        n = min(per_iteration, remaining)
        remaining -= n
        replies.append(f"```repl\nanswers_{i} = llm_query_batched([f'count {i}-{{j}}: ' + context[j * 10:j * 10 + 40] "
                       f"for j in range({n})])\nprint(len(answers_{i}), answers_{i}[0])\n```")
    replies.append("FINAL(done)")
    uri = f"mem://engine-overhead-{time.time_ns()}"
    write_context("".join(f"line {k:05d} of the synthetic context\n" for k in range(2000)), uri,
                  segment_bytes=16_000, progress=False)
    rlm = RLM(ScriptedClient("root", replies), ScriptedClient("sub", lambda request: "ok"), max_iterations=iterations + 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stress.jsonl"
        with open_context(uri) as context:
            record(rlm, context, "stress the engine", path)
        cassette = read_cassette(path)
    times = []
    for _ in range(repeats):
        result = replay(cassette, uri, latency="zero")
        if not result.identical:
            raise RuntimeError(f"the synthetic replay diverged: {result.divergence_counts()}")
        times.append(result.elapsed_s)
    return {"iterations": len(cassette.root_calls), "sub_calls": len(cassette.sub_calls), "median_s": median(times), "runs_s": times}
