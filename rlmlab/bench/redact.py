"""Secret redaction: recall, false positives and throughput of rlmlab's redactor against detect-secrets.

Same inputs for both: one line per planted fake secret (every kind, many seeds) embedded in
transcript text; ordinary lines that only look random (git SHAs, UUIDs, lockfile hashes,
code that names tokens); the real shared transcripts (sanitized by their publisher, so any
hit is a false positive); and a synthetic transcript corpus for throughput. detect-secrets
runs `scan_file` with its default plugins and filters (its `scan_line` flags plain English).
A planted secret counts as found by detect-secrets when it reports a line the secret is on.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from ..transcripts.fake_secrets import ordinary_lines, planted_secrets
from ..transcripts.redact import kinds_found, redact
from ..transcripts.synth import parse_size, session_paths, synthesize
from .common import median, suite_dir, write_results

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def add_arguments(parser) -> None:
    parser.add_argument("--seeds", type=int, default=None, help="seeds of planted secrets (default: 200, quick: 30)")
    parser.add_argument("--size", default=None, help="throughput corpus size (default: 20MB, quick: 2MB)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default: 5, quick: 3)")


def _detect_secrets_lines(path: Path) -> set[int]:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    collection = SecretsCollection()
    with default_settings():
        collection.scan_file(str(path))
    return {secret.line_number for _, secret in collection}


def run(args) -> dict:
    seeds = args.seeds or (30 if args.quick else 200)
    size = parse_size(args.size or ("2MB" if args.quick else "20MB"))
    repeats = args.repeats or (3 if args.quick else 5)
    out = suite_dir(args.out, "redact")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="rlmlab-redact-") as tmp:
        tmp = Path(tmp)
        # Recall: one file per planted secret (detect-secrets finds fewer when several share a file,
        # so this is the arrangement most generous to it).
        planted = [p for seed in range(seeds) for p in planted_secrets(random.Random(seed))]
        for i, p in enumerate(planted):
            planted_file = tmp / f"planted-{i}.txt"
            planted_file.write_text(p.line + "\n")
            rows += [{"test": "recall", "kind": p.kind, "tool": "rlmlab", "hit": p.secret not in redact(p.line)},
                     {"test": "recall", "kind": p.kind, "tool": "detect-secrets", "hit": bool(_detect_secrets_lines(planted_file))}]
        # Precision: ordinary lines, and the real transcripts.
        ordinary = [line for seed in range(seeds) for line in ordinary_lines(random.Random(seed))]
        ordinary_file = tmp / "ordinary.txt"
        ordinary_file.write_text("\n".join(ordinary) + "\n")
        flagged = _detect_secrets_lines(ordinary_file)
        for n, line in enumerate(ordinary, start=1):
            rows += [{"test": "false_positive", "kind": "ordinary", "tool": "rlmlab", "hit": redact(line) != line},
                     {"test": "false_positive", "kind": "ordinary", "tool": "detect-secrets", "hit": n in flagged}]
        real = sorted((SHARED / "claude-code").glob("*/*.jsonl")) if SHARED.is_dir() else []
        real_fp = {"rlmlab": sum(len(kinds_found(p.read_text())) for p in real),
                   "detect-secrets": sum(len(_detect_secrets_lines(p)) for p in real)}
        # Throughput: the same synthetic transcript corpus, as one text.
        synthesize(tmp / "synth", size=size, developers=5, needles=0, seed=1)
        corpus = "".join(p.read_text() for p, _ in session_paths(tmp / "synth"))
        corpus_file = tmp / "corpus.jsonl"
        corpus_file.write_text(corpus)
        timings = {"rlmlab": [], "detect-secrets": []}
        for _ in range(repeats):
            start = time.perf_counter()
            redact(corpus)
            timings["rlmlab"].append(time.perf_counter() - start)
        for _ in range(1 if args.quick else 2):  # detect-secrets is slow; fewer repeats keep the suite short
            start = time.perf_counter()
            _detect_secrets_lines(corpus_file)
            timings["detect-secrets"].append(time.perf_counter() - start)
    for tool, values in timings.items():
        rows += [{"test": "throughput", "kind": "corpus", "tool": tool, "hit": None, "seconds": s, "bytes": len(corpus)} for s in values]
    summary = {"suite": "redact", "quick": bool(args.quick), "planted": len(planted), "ordinary_lines": len(ordinary),
               "real_files": len(real), "corpus_bytes": len(corpus)}
    for tool in ("rlmlab", "detect-secrets"):
        recall = [r["hit"] for r in rows if r["test"] == "recall" and r["tool"] == tool]
        false_pos = [r["hit"] for r in rows if r["test"] == "false_positive" and r["tool"] == tool]
        seconds = median(timings[tool])
        summary[tool] = {
            "recall": sum(recall) / len(recall),
            "missed_kinds": sorted({r["kind"] for r in rows if r["test"] == "recall" and r["tool"] == tool and not r["hit"]}),
            "false_positive_lines": sum(false_pos),
            "false_positive_rate": sum(false_pos) / len(false_pos),
            "findings_in_real_transcripts": real_fp[tool],
            "median_s": seconds,
            "mb_per_s": len(corpus) / 1e6 / seconds,
        }
    summary["speedup_vs_detect_secrets"] = summary["detect-secrets"]["median_s"] / summary["rlmlab"]["median_s"]
    write_results(out, rows, summary)
    return summary
