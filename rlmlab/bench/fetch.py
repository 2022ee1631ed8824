"""Fetch policies on the embedded S3: whole reads, cold slices and a paced scan, swept over TTFB.

Three questions, one run, one server (its floor measured first and reported beside every
number):

* whole read: how much faster than the seed (Monocontext, 1000-line objects, one GET after
  another) is the best policy on that same layout, and the best layout with its best policy?
* cold slice: does a slice spanning up to 10 segments cost about one GET of the same size?
* paced scan: reading 64 KB chunks with 50 ms of "model thinking" between them, how long
  does the reader stall on storage under each prefetch policy?
* slow tail: with a share of responses held back by seconds (a busy node), how much do
  hedged GETs save on a whole read and on targeted reads, and how many extra requests
  do they cost?

`--quick` keeps every workload's shape (same segment sizes, same chunk size, same pause)
with fewer segments, and says so in its output and summary.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from tqdm import tqdm

from ..context import open_context
from ..layout import write_context, write_monocontext
from ..sim import S3Server
from ..storage_pricing import STORAGE_PRICES, storage_costs
from ..stores import open_store
from .common import suite_dir, write_results
from .report import write_fetch_report

LINE_BYTES = 100
SEED_LINES_PER_OBJECT = 1000
THINK_S = 0.050
SCAN_CHUNK = 64 * 1024
COLD_SLICE = 1_000_000
SLOW_RATE = 0.05  # share of object reads the server holds back in the slow-tail runs
SLOW_MS = 2000.0
TARGETED_READS = 40  # 10 KB reads at random places, one after another (an RLM reading around regex hits)


@dataclass(frozen=True)
class Scale:
    seed_objects: int  # objects of 1000 lines (~100 KB) in the seed-style context
    scan_bytes: int  # size of the paced-scan context
    segment_sizes: tuple[int, ...]
    repeats: int


FULL = Scale(seed_objects=1001, scan_bytes=10_000_000, segment_sizes=(100_000, 1_000_000, 4_000_000, 16_000_000), repeats=5)
QUICK = Scale(seed_objects=41, scan_bytes=2_000_000, segment_sizes=(100_000, 1_000_000, 4_000_000, 16_000_000), repeats=5)


def add_arguments(parser) -> None:
    parser.add_argument("--ttfb", default="20,50,100", help="comma-separated first-byte latencies in ms")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per cell (default 5)")
    parser.add_argument("--workers", type=int, default=64, help="parallel GETs for the parallel policies")
    parser.add_argument("--client", default="boto3", choices=["boto3", "obstore"])


def synthetic_lines(n_lines: int, seed: int = 7) -> str:
    """Log-like lines of exactly LINE_BYTES bytes (with the newline); ASCII so sizes are exact."""
    rng = random.Random(seed)
    words = "session tool read edit grep bash commit test build fetch cache slice model query answer".split()
    lines = []
    for i in range(n_lines):
        body = f"{i:09d} dev{rng.randrange(5)} " + " ".join(rng.choice(words) for _ in range(14))
        lines.append(body[: LINE_BYTES - 1].ljust(LINE_BYTES - 1, ".") + "\n")
    return "".join(lines)


def run(args) -> dict:
    scale = QUICK if args.quick else FULL
    repeats = args.repeats or scale.repeats
    ttfbs = [float(t) for t in str(args.ttfb).split(",")]
    out = suite_dir(args.out, "fetch")
    if args.quick:
        print(
            f"quick mode: seed-style context of {scale.seed_objects} objects (full: {FULL.seed_objects}), "
            f"scan context {scale.scan_bytes / 1e6:.0f} MB (full: {FULL.scan_bytes / 1e6:.0f} MB); "
            "same segment sizes, chunk size and pauses"
        )

    with S3Server(seed=1) as server:
        server.create_bucket("bench")
        floor = server.floor()
        print(f"server floor: median {floor['median_ms']:.2f} ms per GET (p90 {floor['p90_ms']:.2f} ms)")
        bench = _Bench(server.endpoint_url, args.workers, args.client)
        bench.prepare(scale)
        rows: list[dict] = []
        cells = _cells(bench, scale)
        progress = tqdm(total=len(ttfbs) * len(cells) * repeats, desc="bench fetch", unit="run")
        for ttfb in ttfbs:
            server.configure(ttfb_ms=ttfb)
            for repeat in range(repeats):
                for cell in cells:
                    before = server.counts["object_reads"]
                    row = cell()
                    requests = server.counts["object_reads"] - before  # as billed: every client, HEADs included
                    costs = storage_costs(gets=requests, bytes_out=row["bytes_fetched"])
                    rows.append({"ttfb_ms": ttfb, "repeat": repeat, **row, "requests": requests, **costs})
                    progress.update()
        tail_ttfb = 50.0 if 50.0 in ttfbs else ttfbs[0]
        server.configure(ttfb_ms=tail_ttfb, slow_rate=SLOW_RATE, slow_ms=SLOW_MS)
        tail = _slow_tail_cells(bench)
        tail_repeats = min(repeats, 3) if args.quick else repeats  # a held-back read costs seconds
        progress.reset(total=len(tail) * tail_repeats)
        progress.set_description(f"bench fetch, slow tail ({SLOW_RATE:.0%} of reads +{SLOW_MS / 1000:.0f} s)")
        for repeat in range(tail_repeats):
            for cell in tail:
                before = server.counts["object_reads"]
                row = cell()
                requests = server.counts["object_reads"] - before
                rows.append({"ttfb_ms": tail_ttfb, "repeat": repeat, **row, "requests": requests, **storage_costs(gets=requests, bytes_out=row["bytes_fetched"])})
                progress.update()
        progress.close()
        server.configure(ttfb_ms=0, slow_rate=0)

    summary = summarise(rows, floor, ttfbs, scale, repeats, quick=args.quick)
    write_results(out, rows, summary)
    write_fetch_report(out, rows, summary)
    print(f"results in {out}/ (results.parquet, summary.json, report.md)")
    return summary


class _Bench:
    """The contexts under test, written once, and one measured run per call."""

    def __init__(self, endpoint_url: str, workers: int, client: str):
        self.endpoint = endpoint_url
        self.workers = workers
        self.client = client

    def uri(self, name: str) -> str:
        return f"s3://bench/{name}"

    def prepare(self, scale: Scale) -> None:
        seed_text = synthetic_lines(scale.seed_objects * SEED_LINES_PER_OBJECT)
        self.seed_chars = len(seed_text)
        write_monocontext(seed_text, self.uri("seed"), lines_per_segment=SEED_LINES_PER_OBJECT, endpoint_url=self.endpoint)
        # Index the seed layout once (as `rlmlab` does on first open); runs below read it cold.
        open_context(self.uri("seed"), endpoint_url=self.endpoint, cache="none", prefetch="none").close()
        for size in scale.segment_sizes:
            write_context(seed_text, self.uri(f"seg-{size}"), segment_bytes=size, endpoint_url=self.endpoint, progress=False)
        single = write_context(seed_text, self.uri("single"), layout="single", segment_bytes=8_000_000, endpoint_url=self.endpoint, progress=False)
        self.seed_single_key = f"bench/single/{single.segments[0].key}"
        scan_text = synthetic_lines(scale.scan_bytes // LINE_BYTES, seed=11)
        self.scan_chars = len(scan_text)
        write_context(scan_text, self.uri("scan"), segment_bytes=1_000_000, endpoint_url=self.endpoint, progress=False)
        single = write_context(scan_text, self.uri("scan-single"), layout="single", segment_bytes=1_000_000, endpoint_url=self.endpoint, progress=False)
        self.scan_single_key = f"bench/scan-single/{single.segments[0].key}"
        slice_text = synthetic_lines(max(2 * COLD_SLICE, 20 * 100_000) // LINE_BYTES * 2, seed=13)
        self.slice_chars = len(slice_text)
        write_context(slice_text, self.uri("slice-100k"), segment_bytes=100_000, endpoint_url=self.endpoint, progress=False)
        write_context(slice_text, self.uri("slice-single"), layout="single", segment_bytes=100_000, endpoint_url=self.endpoint, progress=False)
        self.store = open_store(self.uri(""), endpoint_url=self.endpoint, client=self.client)
        self.store.put("one-get-1mb.bin", slice_text[:COLD_SLICE].encode())
        self.rng = random.Random(3)

    # -- workloads -----------------------------------------------------------------

    def whole_read(self, name: str, layout: str, segment_bytes: int, **policy) -> dict:
        t0 = time.perf_counter()
        with open_context(self.uri(name), endpoint_url=self.endpoint, client=self.client, **policy) as ctx:
            opened = time.perf_counter()
            text = ctx[:]
            wall = time.perf_counter() - t0
            stats = ctx.trace.summary()
        assert len(text) == self.seed_chars
        return _row("whole_read", _policy_name(policy), layout, segment_bytes, wall, stats, open_s=opened - t0)

    def whole_read_s3fs(self) -> dict:
        """s3fs as a user would reach for it: open the single-object layout and read it all."""
        import s3fs

        fs = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": self.endpoint})
        t0 = time.perf_counter()
        with fs.open(self.seed_single_key, "rb") as f:  # default cache: readahead
            data = f.read()
        wall = time.perf_counter() - t0
        assert len(data) == self.seed_chars
        return _row("whole_read", "s3fs (default readahead)", "single", len(data), wall, {"bytes_fetched": len(data)})

    def cold_slice(self, name: str, layout: str, **policy) -> dict:
        start = self.rng.randrange(0, self.slice_chars - COLD_SLICE)
        start -= start % 100_000  # spans exactly 10 segments of 100 KB
        t0 = time.perf_counter()
        with open_context(self.uri(name), endpoint_url=self.endpoint, client=self.client, cache="none", prefetch="none", **policy) as ctx:
            t_open = time.perf_counter()
            piece = ctx[start : start + COLD_SLICE]
            wall = time.perf_counter() - t_open
            stats = ctx.trace.summary()
        assert len(piece) == COLD_SLICE
        return _row("cold_slice", _policy_name({**policy, "cache": "none", "prefetch": "none"}), layout, 100_000, wall, stats, open_s=t_open - t0)

    def targeted_reads(self, name: str, layout: str, segment_bytes: int, **policy) -> dict:
        """TARGETED_READS reads of 10 KB at random places, each waited for before the next."""
        rng = random.Random(17)  # the same places for every policy and repeat
        stall = 0.0
        with open_context(self.uri(name), endpoint_url=self.endpoint, client=self.client, **policy) as ctx:
            for _ in range(TARGETED_READS):
                start = rng.randrange(0, self.seed_chars - 10_000)
                t = time.perf_counter()
                piece = ctx[start : start + 10_000]
                stall += time.perf_counter() - t
                assert len(piece) == 10_000
            stats = ctx.trace.summary()
        return _row("targeted_reads", _policy_name(policy), layout, segment_bytes, stall, stats, stall_s=stall)

    def one_get(self) -> dict:
        t0 = time.perf_counter()
        data = self.store.get("one-get-1mb.bin")
        wall = time.perf_counter() - t0
        assert len(data) == COLD_SLICE
        return _row("cold_slice", "one GET of the same size", "object", COLD_SLICE, wall, {"gets": 1, "bytes_fetched": len(data)})

    def paced_scan(self, name: str, layout: str, **policy) -> dict:
        stall = 0.0
        t0 = time.perf_counter()
        with open_context(self.uri(name), endpoint_url=self.endpoint, client=self.client, **policy) as ctx:
            for offset in range(0, self.scan_chars, SCAN_CHUNK):
                t = time.perf_counter()
                chunk = ctx[offset : offset + SCAN_CHUNK]
                stall += time.perf_counter() - t
                assert chunk
                time.sleep(THINK_S)
            wall = time.perf_counter() - t0
            stats = ctx.trace.summary()
        return _row("paced_scan", _policy_name(policy), layout, 1_000_000, wall, stats, stall_s=stall)

    def paced_scan_s3fs(self) -> dict:
        import s3fs

        fs = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": self.endpoint})
        stall = 0.0
        t0 = time.perf_counter()
        with fs.open(self.scan_single_key, "rb") as f:
            while True:
                t = time.perf_counter()
                chunk = f.read(SCAN_CHUNK)
                stall += time.perf_counter() - t
                if not chunk:
                    break
                time.sleep(THINK_S)
        wall = time.perf_counter() - t0
        return _row("paced_scan", "s3fs (default readahead)", "single", self.scan_chars, wall, {"bytes_fetched": f.size}, stall_s=stall)


def _cells(bench: _Bench, scale: Scale) -> list:
    """One callable per measured configuration; each returns one tidy row."""
    naive = dict(fetch="sequential", cache="none", prefetch="none")
    w = bench.workers
    seed_bytes = SEED_LINES_PER_OBJECT * LINE_BYTES
    cells = [
        lambda: bench.whole_read("seed", "monocontext", seed_bytes, **naive),
        lambda: bench.whole_read("seed", "monocontext", seed_bytes, fetch="parallel", workers=w, cache="memory", prefetch="none"),
        lambda: bench.whole_read("seed", "monocontext", seed_bytes, fetch="parallel", workers=w, cache="memory", prefetch="eager"),
        lambda: bench.whole_read("seed", "monocontext", seed_bytes, fetch="parallel", workers=w, cache="memory", prefetch="adaptive"),
        bench.whole_read_s3fs,
        lambda: bench.whole_read("single", "single", 8_000_000, fetch="coalesced", workers=w, cache="memory", prefetch="none"),
    ]
    for size in scale.segment_sizes:
        cells.append(lambda size=size: bench.whole_read(f"seg-{size}", "segments", size, fetch="parallel", workers=w, cache="memory", prefetch="none"))
    cells += [
        bench.one_get,
        lambda: bench.cold_slice("slice-100k", "segments", fetch="sequential"),
        lambda: bench.cold_slice("slice-100k", "segments", fetch="parallel", workers=w),
        lambda: bench.cold_slice("slice-single", "single", fetch="coalesced", workers=w),
        lambda: bench.paced_scan("scan", "segments", **naive),
        lambda: bench.paced_scan("scan", "segments", fetch="parallel", workers=w, cache="memory", prefetch="readahead"),
        lambda: bench.paced_scan("scan", "segments", fetch="parallel", workers=w, cache="memory", prefetch="adaptive"),
        lambda: bench.paced_scan("scan", "segments", fetch="parallel", workers=w, cache="memory", prefetch="background"),
        bench.paced_scan_s3fs,
    ]
    return cells


def _slow_tail_cells(bench: _Bench) -> list:
    """The same reads with hedged GETs (the default for S3) and without, under held-back responses."""
    seed_bytes = SEED_LINES_PER_OBJECT * LINE_BYTES
    parallel = dict(fetch="parallel", workers=bench.workers, cache="memory", prefetch="none")
    cells = []
    for hedge in (True, False):
        cells += [
            lambda hedge=hedge: {**bench.whole_read("seed", "monocontext", seed_bytes, **parallel, hedge=hedge), "workload": "slow_tail_whole_read"},
            lambda hedge=hedge: {**bench.targeted_reads("seed", "monocontext", seed_bytes, **parallel, hedge=hedge), "workload": "slow_tail_targeted_reads"},
        ]
    return cells


def _policy_name(policy: dict) -> str:
    name = f"{policy.get('fetch', 'parallel')}/{policy.get('cache', 'memory')}/{policy.get('prefetch', 'none')}"
    return name if policy.get("hedge", True) else f"{name} (no hedge)"


def _row(workload: str, policy: str, layout: str, segment_bytes: int, wall: float, stats: dict, **extra) -> dict:
    return {
        "workload": workload,
        "policy": policy,
        "layout": layout,
        "segment_bytes": segment_bytes,
        "wall_s": wall,
        "gets": stats.get("gets", 0),
        "bytes_fetched": stats.get("bytes_fetched", 0),
        "stall_s": extra.pop("stall_s", stats.get("stall_s", wall)),
        **extra,
    }


def summarise(rows: list[dict], floor: dict, ttfbs: list[float], scale: Scale, repeats: int, *, quick: bool) -> dict:
    """Medians per configuration, and the acceptance ratios computed from them."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    med = frame.groupby(["ttfb_ms", "workload", "policy", "layout", "segment_bytes"], as_index=False).median(numeric_only=True)
    per_ttfb = {}
    for ttfb in ttfbs:
        m = med[med.ttfb_ms == ttfb]
        whole = m[m.workload == "whole_read"]
        naive_row = whole[whole.policy == "sequential/none/none"].iloc[0]
        naive = naive_row.wall_s
        ours = whole[~whole.policy.str.startswith("s3fs")]
        same_layout = ours[(ours.layout == "monocontext") & (ours.policy != "sequential/none/none")]
        best_same = same_layout.loc[same_layout.wall_s.idxmin()]
        best_any = ours.loc[ours.wall_s.idxmin()]
        s3fs_whole = whole[whole.policy.str.startswith("s3fs")].wall_s.iloc[0]
        cold = m[m.workload == "cold_slice"]
        one_get = cold[cold.policy == "one GET of the same size"].wall_s.iloc[0]
        slices = cold[cold.policy != "one GET of the same size"]
        best_slice = slices.loc[slices.wall_s.idxmin()]
        scan = m[m.workload == "paced_scan"]
        best_scan = scan.loc[scan.stall_s.idxmin()]
        naive_scan = scan[scan.policy == "sequential/none/none"].stall_s.iloc[0]
        per_ttfb[str(int(ttfb))] = {
            "whole_read": {
                "naive_s": naive,
                "best_same_layout": {"policy": best_same.policy, "s": best_same.wall_s, "speedup": naive / best_same.wall_s},
                "best_overall": {
                    "policy": best_any.policy,
                    "layout": f"{best_any.layout}@{int(best_any.segment_bytes)}",
                    "s": best_any.wall_s,
                    "speedup": naive / best_any.wall_s,
                },
                # s3fs hands back raw bytes of one object: no sha256 check, no decoding to str
                "s3fs_single_object_s": s3fs_whole,
                "s3fs_speedup": naive / s3fs_whole,
                "usd_per_1000_reads": {
                    name: {store: 1000 * row[f"cost_usd_{store}"] for store in STORAGE_PRICES}
                    for name, row in {"naive": naive_row, "best_same_layout": best_same, "best_overall": best_any}.items()
                },
            },
            "cold_slice": {
                "one_get_s": one_get,
                "best_policy": best_slice.policy,
                "best_layout": best_slice.layout,
                "best_s": best_slice.wall_s,
                "ratio_to_one_get": best_slice.wall_s / one_get,
            },
            "paced_scan": {
                "naive_stall_s": naive_scan,
                "best_policy": best_scan.policy,
                "best_stall_s": best_scan.stall_s,
                "best_stall_in_ttfbs": best_scan.stall_s / (ttfb / 1000) if ttfb else None,
            },
        }
    slow_tail = {}
    for workload in ("whole_read", "targeted_reads"):
        runs = med[med.workload == f"slow_tail_{workload}"]
        if runs.empty:
            continue
        hedged, plain = runs[~runs.policy.str.endswith("(no hedge)")].iloc[0], runs[runs.policy.str.endswith("(no hedge)")].iloc[0]
        slow_tail[workload] = {
            "ttfb_ms": float(hedged.ttfb_ms),
            "policy": hedged.policy,
            "hedged_s": hedged.stall_s,
            "unhedged_s": plain.stall_s,
            "speedup": plain.stall_s / hedged.stall_s,
            "extra_requests_pct": 100 * (hedged.requests / plain.requests - 1),
            "repeats": int((frame.workload == f"slow_tail_{workload}").sum() // 2),
        }
    at50 = per_ttfb.get("50")
    targets = None
    if at50:
        targets = {
            "whole_read_same_layout_speedup>=10": bool(at50["whole_read"]["best_same_layout"]["speedup"] >= 10),
            "whole_read_best_layout_speedup>=30": bool(at50["whole_read"]["best_overall"]["speedup"] >= 30),
            "cold_slice_ratio<=1.5": bool(at50["cold_slice"]["ratio_to_one_get"] <= 1.5),
            "paced_scan_stall<=2xTTFB": bool(at50["paced_scan"]["best_stall_s"] <= 2 * 0.050),
        }
    return {
        "suite": "fetch",
        "quick": quick,
        "scale": {
            "seed_objects": scale.seed_objects,
            "seed_mb": scale.seed_objects * SEED_LINES_PER_OBJECT * LINE_BYTES / 1e6,
            "scan_mb": scale.scan_bytes / 1e6,
            "segment_sizes": list(scale.segment_sizes),
            "repeats": repeats,
        },
        "scale_note": (
            "The targets are stated for the full-scale workloads (a 100 MB seed-style context of 1001 objects); "
            "quick mode's fewer objects make the fixed cost of opening (two round trips) weigh more."
            if quick
            else "full scale"
        ),
        "server_floor_ms": floor,
        "by_ttfb_ms": per_ttfb,
        "slow_tail": {"slow_rate": SLOW_RATE, "slow_ms": SLOW_MS, **slow_tail} if slow_tail else None,
        "targets_at_50ms": targets,
    }

