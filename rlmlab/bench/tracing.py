"""Tracing overhead: warm slices of a Context with tracing on vs off, by slice size.

Every Context access records one AccessEvent; this measures what that costs where it
is most visible, on warm (cached) slices that touch no storage. Both contexts read the
same in-memory context in the same process, interleaved repeat by repeat, and each row
is the median time per slice over a fixed list of random offsets.
"""

from __future__ import annotations

import random
import time
import uuid

from ..context import Context
from ..layout import write_context
from ..stores import MemoryStore
from .common import median, suite_dir, write_results

SIZES = (100, 1_000, 10_000, 65_536, 1_000_000)


def add_arguments(parser) -> None:
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per size (default 21, quick 9)")
    parser.add_argument("--context-mb", type=float, default=None, help="context size in MB (default 32, quick 8)")


def _context_text(n_bytes: int) -> str:
    """Mixed text (ASCII, accents, an emoji every few lines) of about `n_bytes`."""
    rng = random.Random(5)
    words = "alpha beta gamma délta epsilon zeta ēta theta iota kappa 🎉 lambda".split()
    lines, size = [], 0
    while size < n_bytes:
        line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
        lines.append(line)
        size += len(line.encode())
    return "".join(lines)


def _per_slice(ctx: Context, size: int, starts: list[int]) -> float:
    began = time.perf_counter()
    for start in starts:
        ctx[start : start + size]
    return (time.perf_counter() - began) / len(starts)


def run(args) -> dict:
    repeats = args.repeats or (9 if args.quick else 21)
    megabytes = args.context_mb or (8 if args.quick else 32)
    text = _context_text(int(megabytes * 1_000_000))
    store = MemoryStore(f"bench-tracing-{uuid.uuid4().hex}")
    manifest = write_context(text, store, segment_bytes=1 << 20, progress=False)
    contexts = {traced: Context.from_manifest(store, manifest, trace=traced, prefetch="none") for traced in (False, True)}
    for ctx in contexts.values():
        ctx[:]  # warm: every segment cached
    rng = random.Random(9)
    rows = []
    try:
        for size in SIZES:
            count = max(200, min(5000, 200_000_000 // size))
            starts = [rng.randrange(0, len(text) - size) for _ in range(count)]
            _per_slice(contexts[False], size, starts)  # warm-up: allocator, branch caches
            for repeat in range(repeats):
                order = (False, True) if repeat % 2 == 0 else (True, False)  # neither always goes first
                timing = {traced: _per_slice(contexts[traced], size, starts) for traced in order}
                off, on = timing[False], timing[True]
                contexts[True].trace.clear()
                rows.append({"slice_chars": size, "repeat": repeat, "off_us": off * 1e6, "on_us": on * 1e6,
                             "ratio": on / off, "overhead_us": (on - off) * 1e6})
    finally:
        for ctx in contexts.values():
            ctx.close()
    by_size = {}
    for size in SIZES:
        mine = [r for r in rows if r["slice_chars"] == size]
        by_size[str(size)] = {
            "off_us": median(r["off_us"] for r in mine),
            "on_us": median(r["on_us"] for r in mine),
            "ratio": median(r["ratio"] for r in mine),
            "overhead_us": median(r["overhead_us"] for r in mine),
        }
    summary = {
        "suite": "tracing",
        "quick": bool(args.quick),
        "note": "quick mode: a smaller context and fewer repeats, same slice sizes" if args.quick else "",
        "repeats": repeats,
        "context_bytes": manifest.total_bytes,
        "segments": len(manifest.segments),
        "target_ratio": 1.05,
        "by_slice_chars": by_size,
        # the smallest size from which every larger size is within the target
        "meets_target_from_slice_chars": next(
            (s for k, s in enumerate(SIZES) if all(by_size[str(t)]["ratio"] <= 1.05 for t in SIZES[k:])), None
        ),
    }
    write_results(suite_dir(args.out, "tracing"), rows, summary)
    return summary
