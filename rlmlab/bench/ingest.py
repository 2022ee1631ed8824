"""Transcript ingest: parse-and-render throughput of rlmlab.transcripts against claude-code-log.

Both read the same Claude Code JSONL files and write text (ours: the SESSION METADATA format;
claude-code-log: its Markdown export, the closest of its formats). Inputs: the real shared
sessions (`../shared/data/claude-code/`) plus a synthetic multi-developer corpus for volume.
Each tool runs once to warm up, then `repeats` times; the summary reports medians and the ratio.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from ..transcripts import Identity, load
from ..transcripts.synth import session_paths, synthesize
from .common import median, suite_dir, write_results

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "claude-code"
ANONYMOUS = Identity(developer="bench", email="bench@example.com", hostname="bench", platform="Linux", os_user="bench")


def add_arguments(parser) -> None:
    parser.add_argument("--size", default=None, help="synthetic corpus size (default: 20MB, quick: 2MB)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per tool (default: 5, quick: 3)")


def _ours(files: list[Path], _scratch: Path) -> int:
    return sum(len(load(path, identity=ANONYMOUS).to_text()) for path in files)


def _claude_code_log(files: list[Path], scratch: Path) -> int:
    from claude_code_log.converter import convert_jsonl_to

    total = 0
    for i, path in enumerate(files):
        out = convert_jsonl_to(
            "md", path, scratch / f"{i}.md", generate_individual_sessions=False, use_cache=False,
            silent=True, update_cache=False, force_regenerate=True,
        )
        total += out.stat().st_size
    return total


TOOLS = {"rlmlab": _ours, "claude-code-log": _claude_code_log}


def run(args) -> dict:
    from ..transcripts.synth import parse_size

    logging.getLogger("claude_code_log").setLevel(logging.ERROR)
    size = parse_size(args.size or ("2MB" if args.quick else "20MB"))
    repeats = args.repeats or (3 if args.quick else 5)
    out = suite_dir(args.out, "ingest")
    rows = []
    with tempfile.TemporaryDirectory(prefix="rlmlab-ingest-") as tmp:
        tmp = Path(tmp)
        synthesize(tmp / "synth", size=size, developers=5, needles=0, seed=1)
        inputs = {"synthetic": [p for p, _ in session_paths(tmp / "synth")]}
        if SHARED.is_dir():
            inputs["shared-real"] = sorted(SHARED.glob("*/*.jsonl"))
        for input_name, files in inputs.items():
            nbytes = sum(p.stat().st_size for p in files)
            for tool, fn in TOOLS.items():
                scratch = tmp / f"out-{tool}"
                scratch.mkdir(exist_ok=True)
                fn(files, scratch)  # warm-up: imports, caches, page cache
                for repeat in range(repeats):
                    start = time.perf_counter()
                    written = fn(files, scratch)
                    seconds = time.perf_counter() - start
                    rows.append({"input": input_name, "tool": tool, "repeat": repeat, "files": len(files), "bytes_in": nbytes,
                                 "chars_out": written, "seconds": seconds, "mb_per_s": nbytes / 1e6 / seconds})
    summary = {"suite": "ingest", "quick": bool(args.quick), "synthetic_bytes": size, "repeats": repeats, "inputs": {}}
    for input_name in inputs:
        per_tool = {t: median(r["seconds"] for r in rows if r["input"] == input_name and r["tool"] == t) for t in TOOLS}
        nbytes = next(r["bytes_in"] for r in rows if r["input"] == input_name)
        summary["inputs"][input_name] = {
            "files": next(r["files"] for r in rows if r["input"] == input_name),
            "bytes": nbytes,
            **{f"{t}_median_s": s for t, s in per_tool.items()},
            **{f"{t}_mb_per_s": nbytes / 1e6 / s for t, s in per_tool.items()},
            "speedup_vs_claude_code_log": per_tool["claude-code-log"] / per_tool["rlmlab"],
        }
    write_results(out, rows, summary)
    return summary
