"""`rlmlab record` and `rlmlab replay`: record a run (or import one, or make the scripted ones), replay it."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_commands(subparsers) -> None:
    rec = subparsers.add_parser("record", help="record an RLM run as a cassette (or import / script one)")
    rec.add_argument("query", nargs="?", help="the question to ask (for a live run)")
    rec.add_argument("-o", "--out", required=True, help="cassette file to write (a directory with --scripted)")
    rec.add_argument("--context", help="context URI (s3://, file://, mem://) or a local text file, for a live run")
    rec.add_argument("--root", help="root model (default depends on the provider, as for `rlmlab ask`)")
    rec.add_argument("--sub", help="sub-call model (default depends on the provider)")
    rec.add_argument("--base-url", default=None, help="OpenAI-compatible server for both models (vLLM, Ollama, ...)")
    rec.add_argument("--endpoint-url", default=None, help="S3 endpoint for s3:// contexts")
    rec.add_argument("--max-iterations", type=int, default=30)
    rec.add_argument("--scripted", metavar="NAME", help="record a scripted strategy against fake servers "
                     "(map_reduce, regex_reads, bisection, sessions, or 'all')")
    rec.add_argument("--import-rlms", metavar="LOG", help="import an RLMLogger JSONL trajectory of the `rlms` library")
    rec.add_argument("--context-uri", default=None, help="with --import-rlms: the URI the imported run read")
    rec.set_defaults(func=_record)

    rep = subparsers.add_parser("replay", help="replay a cassette against a context under chosen read policies")
    rep.add_argument("cassette", help="a cassette file (.jsonl)")
    rep.add_argument("--context", help="context URI; omitted for a scripted recording: its corpus, written to memory")
    rep.add_argument("--segment-bytes", type=int, default=64_000, help="segment size when writing a scripted corpus")
    rep.add_argument("--fetch", default=None, help="fetch policy (sequential, parallel, coalesced)")
    rep.add_argument("--cache", default=None, help="cache policy (none, memory, disk)")
    rep.add_argument("--prefetch", default=None, help="prefetch policy (none, readahead, adaptive, background, eager)")
    rep.add_argument("--latency", default="recorded", help="recorded | zero | scale:K | fitted[:SEED] (default: recorded)")
    rep.add_argument("--endpoint-url", default=None, help="S3 endpoint for s3:// contexts")
    rep.add_argument("--json", action="store_true", help="print the summary as JSON")
    rep.set_defaults(func=_replay)


def _record(args) -> int:
    chosen = [bool(args.scripted), bool(args.import_rlms), bool(args.context)]
    if sum(chosen) != 1:
        print("rlmlab record: give exactly one of --context URI (a live run), --scripted NAME, or --import-rlms LOG",
              file=sys.stderr)
        return 2
    if args.scripted:
        return _record_scripted(args)
    if args.import_rlms:
        from .importers import import_rlms_log

        cassette = import_rlms_log(args.import_rlms, context_uri=args.context_uri)
        path = cassette.write(args.out)
        print(f"imported {len(cassette.root_calls)} root calls, {len(cassette.sub_calls)} sub-calls, "
              f"{len(cassette.cells)} cells into {path}")
        return 0
    if not args.query:
        print("rlmlab record: a live run needs the question to ask", file=sys.stderr)
        return 2
    from ..errors import RlmlabError, RunStopped
    from ..llm import client_for
    from ..rlm.commands import choose_models, open_any_context
    from ..rlm.engine import RLM
    from .record import record

    try:
        root_model, sub_model, base_url = choose_models(args)
        context = open_any_context(args.context, args.endpoint_url)
        root = client_for(root_model, base_url=base_url)
        sub = root if sub_model == root_model else client_for(sub_model, base_url=base_url)
        result = record(RLM(root, sub, max_iterations=args.max_iterations), context, args.query, args.out,
                        context_uri=args.context)
    except RunStopped as stopped:
        print(f"rlmlab record: stopped: {stopped} (the cassette up to that point is in {args.out})", file=sys.stderr)
        return 3
    except (RlmlabError, FileNotFoundError, ValueError) as error:
        print(f"rlmlab record: {error}", file=sys.stderr)
        return 2
    print(result.answer)
    print(f"[recorded {result.iterations} iterations, ${result.cost_usd:.4f}, in {args.out}]", file=sys.stderr)
    return 0


def _record_scripted(args) -> int:
    from .scripted import STRATEGIES, record_scripted

    names = sorted(STRATEGIES) if args.scripted == "all" else [args.scripted]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        print(f"rlmlab record: unknown scripted strategy {unknown[0]!r}; choose one of {sorted(STRATEGIES)} or 'all'",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        result = record_scripted(name, out / f"{name}.jsonl")
        print(f"{name}: {result.iterations} iterations, answer {result.answer[:60]!r} -> {out / (name + '.jsonl')}")
    return 0


def _replay(args) -> int:
    from ..errors import RlmlabError
    from .cassette import read_cassette
    from .replay import replay

    try:
        cassette = read_cassette(args.cassette)
        context = args.context or _write_scripted_corpus(cassette, args.segment_bytes)
        if context is None:
            print("rlmlab replay: --context URI is required (this cassette names no generated corpus)", file=sys.stderr)
            return 2
        options = {"endpoint_url": args.endpoint_url} if args.endpoint_url else {}
        result = replay(cassette, context, fetch=args.fetch, cache=args.cache, prefetch=args.prefetch,
                        latency=args.latency, **options)
    except (RlmlabError, ValueError, TypeError) as error:
        print(f"rlmlab replay: {error}", file=sys.stderr)
        return 2
    summary = {
        "answer": result.answer,
        "same_answer": result.answer == result.recorded_answer,
        "identical": result.identical,
        "cells": f"{result.cells_matched} of {result.cells_run} reproduced",
        "divergences": result.divergence_counts(),
        "timing": {k: round(v, 4) for k, v in result.timing().items()},
        "storage": result.trace.summary(),
        "error": result.error,
    }
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    for key, value in summary.items():
        print(f"{key:>12}: {value}")
    for divergence in result.divergences[:10]:
        print(f"  - {divergence.kind}: {divergence.detail}")
    if len(result.divergences) > 10:
        print(f"  ... {len(result.divergences) - 10} more divergences")
    return 0


def _write_scripted_corpus(cassette, segment_bytes: int) -> str | None:
    """Write a scripted recording's corpus to a fresh mem:// context; None if it names none."""
    import uuid

    from ..layout import write_context
    from .scripted import corpus_text

    if not cassette.header.extra.get("corpus"):
        return None
    uri = f"mem://replay-{uuid.uuid4().hex[:8]}"
    write_context(corpus_text(cassette.header), uri, segment_bytes=segment_bytes, progress=False)
    return uri
