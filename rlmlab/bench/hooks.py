"""Hook timings: SessionEnd with the store unreachable, and time to context at SessionStart.

* session end, store down: `rlmlab transcripts hook session-end` as Claude Code runs it (a
  process reading the hook JSON), with the store's endpoint refusing connections. Each run's
  detached flusher is let finish before the next run, as sessions end one at a time. Then
  the store comes up, one flush runs, and the suite checks every spooled session arrived
  exactly once.
* time to context: one embedded S3 (first-byte latency `--ttfb`) holds the team's sessions,
  uploaded with `transcripts upload` and precompiled (scripted models: what is measured is
  reading the briefing, not writing it). The briefing is read the way a new session gets it:
  the SessionStart hook as a process, and `fetch_briefing` in process. Against it, the
  shipped `sessions` recording (per-session digests over the same 120 sessions; model
  replies scripted, timings recorded against fake servers at 0.4 s root / 0.15 s sub per
  call) is replayed from the same S3 with its recorded latencies. Real models are slower
  than those fake servers, so the on-demand time is understated.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..layout import write_context
from ..replay.cassette import read_cassette
from ..replay.replay import replay
from ..replay.scripted import corpus_text
from ..sim import S3Server
from ..stores import open_store
from ..transcripts.config import StoreSettings
from ..transcripts.hooks import fetch_briefing
from ..transcripts.spool import LOG_NAME
from ..transcripts.render import RULE, parse_text
from ..transcripts.upload import upload_sessions
from .common import median, suite_dir, write_results

RECORDING = Path(__file__).resolve().parents[2] / "data" / "recordings" / "sessions.jsonl"


def add_arguments(parser) -> None:
    parser.add_argument("--ttfb", type=float, default=50.0, help="S3 first-byte latency in ms (default 50)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (default: briefing 10 / on-demand 3; quick: 3 / 1)")
    parser.add_argument("--recording", type=Path, default=RECORDING, help="the on-demand RLM recording to replay")
    parser.add_argument("--end-runs", type=int, default=None, help="SessionEnd hook runs with the store down (default 20, quick 5)")


def _sessions_of(corpus: str):
    starts = [m.start() for m in re.finditer(rf"(?m)^{RULE}\nSESSION METADATA\n", corpus)]
    return [parse_text(corpus[a:b]) for a, b in zip(starts, starts[1:] + [len(corpus)])]


def _precompile_scripted(store) -> None:
    from ..llm.fakes import ScriptedClient
    from ..rlm.engine import RLM
    from ..transcripts.precompile import precompile

    cell = """```repl
import re
heads = re.findall(r"(?m)^## session (\\S+) \\| ([^|]+) \\| (\\S+)", context)
digests = re.split(r"(?m)^## session .*$", context)[1:]
lines = [f"- {dev.strip()} ({start[:10]}): {d.strip().splitlines()[0][2:]} [session {sid[:8]}]" for (sid, dev, start), d in zip(heads, digests)]
briefing = "## Recent work by developer\\n" + "\\n".join(lines[-40:]) + "\\n\\n## Decisions\\n- keep retries at 3\\n\\n## Open threads\\n- flaky upload test"
```"""
    root = ScriptedClient("scripted-root", lambda r: cell if r.step == 0 else "FINAL_VAR(briefing)")

    def sub(request):
        m = re.search(r"Session (\S+) by ([^\n]+?) on branch", request.last_user)
        return f"- {m.group(2)} worked on the upload path in {m.group(1)}; tests pass"

    precompile(store, RLM(root, ScriptedClient("scripted-sub", sub)))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_flusher(spool: Path, failed_runs: int, timeout_s: float = 60) -> None:
    """Until the detached flusher of run number `failed_runs` has given up (each logs one 'stay queued' line).

    Flushers are detached, so their log is the only sign that one ended; waiting keeps each
    measured hook run from sharing the CPU with the previous run's flusher.
    """
    deadline = time.monotonic() + timeout_s
    log = spool / LOG_NAME
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count("stay queued") >= failed_runs:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the detached flusher of SessionEnd run {failed_runs} did not finish within {timeout_s:.0f} s")


def _session_end_store_down(runs: int, tmp: Path) -> tuple[list[dict], dict]:
    """Time the SessionEnd hook with the store refusing connections; then bring it up and check delivery."""
    from ..transcripts.spool import flush
    from ..transcripts.upload import session_index

    port = _free_port()
    home = tmp / "end-home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"store": "s3://team/ended", "endpoint_url": f"http://127.0.0.1:{port}"}))
    env = {**os.environ, "RLMLAB_HOME": str(home), "RLMLAB_CONFIG": str(home / "config.json"), "RLMLAB_PRECOMPILE": "0"}
    env.pop("RLMLAB_STORE", None)
    env.pop("RLMLAB_SPOOL_DIR", None)
    rows, ids = [], []
    for run in range(runs):
        session_id = f"ended-{run:03d}"
        ids.append(session_id)
        transcript = tmp / f"{session_id}.jsonl"
        transcript.write_text(json.dumps({"type": "user", "sessionId": session_id, "timestamp": "2026-01-01T00:00:00Z",
                                          "message": {"role": "user", "content": f"hello from {session_id}"}}) + "\n")
        payload = json.dumps({"session_id": session_id, "transcript_path": str(transcript), "cwd": str(tmp),
                              "hook_event_name": "SessionEnd", "reason": "prompt_input_exit"})
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "rlmlab", "transcripts", "hook", "session-end"], input=payload,
                              capture_output=True, text=True, env=env, timeout=60)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"the SessionEnd hook failed: {done.stderr}")
        rows.append({"side": "session_end", "how": "SessionEnd hook process, store down", "repeat": run, "seconds": seconds})
        _wait_for_flusher(home / "spool", run + 1)
    saved = {k: os.environ.get(k) for k in ("RLMLAB_HOME", "RLMLAB_CONFIG", "RLMLAB_PRECOMPILE")}
    with S3Server(port=port) as s3:
        s3.create_bucket("team")
        os.environ.update({"RLMLAB_HOME": str(home), "RLMLAB_CONFIG": str(home / "config.json"), "RLMLAB_PRECOMPILE": "0"})
        try:
            report = flush(home / "spool", wait=True)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        arrived = [r.session_id for r in session_index(open_store("s3://team/ended", endpoint_url=s3.endpoint_url))]
    return rows, {"spooled": runs, "sent_after_recovery": len(report.sent),
                  "exactly_once": sorted(arrived) == sorted(ids) and len(arrived) == len(set(arrived))}


def run(args) -> dict:
    if not args.recording.is_file():
        raise SystemExit(f"rlmlab bench hooks: no recording at {args.recording} (make it with `rlmlab record --scripted all -o data/recordings`)")
    cassette = read_cassette(args.recording)
    brief_repeats = args.repeats or (3 if args.quick else 10)
    demand_repeats = args.repeats or (1 if args.quick else 3)
    out = suite_dir(args.out, "hooks")
    corpus = corpus_text(cassette.header)
    with tempfile.TemporaryDirectory(prefix="rlmlab-hooks-") as tmp:
        rows, delivery = _session_end_store_down(args.end_runs or (5 if args.quick else 20), Path(tmp))
    with S3Server(ttfb_ms=args.ttfb) as s3, tempfile.TemporaryDirectory(prefix="rlmlab-briefing-") as tmp:
        s3.create_bucket("team")
        team_uri, corpus_uri = "s3://team/transcripts", "s3://team/corpus"
        team = open_store(team_uri, endpoint_url=s3.endpoint_url)
        sessions = _sessions_of(corpus)
        upload_sessions(sessions, team)
        _precompile_scripted(team)
        write_context(corpus, corpus_uri, endpoint_url=s3.endpoint_url, segment_bytes=64_000, progress=False)

        settings = StoreSettings(team_uri, s3.endpoint_url)
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "config.json").write_text(json.dumps({"store": team_uri, "endpoint_url": s3.endpoint_url}))
        env = {**os.environ, "RLMLAB_HOME": str(home), "RLMLAB_CONFIG": str(home / "config.json"), "RLMLAB_PRECOMPILE": "0"}
        env.pop("RLMLAB_STORE", None)
        payload = json.dumps({"session_id": "bench", "hook_event_name": "SessionStart", "source": "startup", "cwd": tmp})
        briefing_chars = 0
        for repeat in range(brief_repeats):
            start = time.perf_counter()
            text = fetch_briefing(settings)
            rows.append({"side": "briefing", "how": "fetch_briefing in process", "repeat": repeat, "seconds": time.perf_counter() - start})
            briefing_chars = len(text or "")
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "rlmlab", "transcripts", "hook", "session-start"], input=payload,
                                  capture_output=True, text=True, env=env, timeout=120)
            seconds = time.perf_counter() - start
            if done.returncode != 0 or "additionalContext" not in done.stdout:
                raise RuntimeError(f"the SessionStart hook did not inject the briefing: {done.stderr or done.stdout}")
            rows.append({"side": "briefing", "how": "SessionStart hook process", "repeat": repeat, "seconds": seconds})
        divergences = []
        for repeat in range(demand_repeats):
            result = replay(cassette, corpus_uri, latency="recorded", endpoint_url=s3.endpoint_url)
            timing = result.timing()
            divergences.append(len(result.divergences))
            rows.append({"side": "on_demand", "how": "RLM replayed (recorded latency)", "repeat": repeat, "seconds": result.elapsed_s,
                         "model_s": timing["model_s"], "storage_stall_s": timing["storage_stall_s"]})
    hook_s = median(r["seconds"] for r in rows if r["how"] == "SessionStart hook process")
    fetch_s = median(r["seconds"] for r in rows if r["how"] == "fetch_briefing in process")
    demand_s = median(r["seconds"] for r in rows if r["side"] == "on_demand")
    end_s = [r["seconds"] for r in rows if r["side"] == "session_end"]
    summary = {
        "suite": "hooks",
        "session_end_store_down_median_s": median(end_s), "session_end_store_down_max_s": max(end_s),
        "spool_delivery": delivery, "quick": bool(args.quick), "ttfb_ms": args.ttfb, "sessions": len(sessions),
        "briefing_chars": briefing_chars, "corpus_chars": len(corpus),
        "hook_process_median_s": hook_s, "fetch_briefing_median_s": fetch_s, "on_demand_rlm_median_s": demand_s,
        "on_demand_over_hook": demand_s / hook_s, "replay_divergences": divergences,
        "recording": str(args.recording), "recording_scripted": bool(cassette.header.scripted),
    }
    write_results(out, rows, summary)
    return summary
