"""A local queue of sessions waiting to be uploaded, so an unreachable store loses nothing.

The SessionEnd hook only writes an entry (`<spool>/<session_id>.json`, atomically) and starts
a detached flusher. The flusher uploads every entry it finds and deletes those that arrived;
what fails stays for the next run (the next hook, or `rlmlab transcripts flush`). An upload
is idempotent per session and content, so an entry sent twice (a crash between upload and
delete) still appears once in the store: exactly once, as the team context sees it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..errors import StoreError
from .config import StoreSettings, spool_dir

_LOCK_NAME = ".flush.lock"
LOG_NAME = "flush.log"
SETTLE_S = 1.0  # Claude Code may still be appending the last lines when SessionEnd fires (GUIDE §5)


@dataclass
class FlushReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # session_id -> why it stays queued
    dropped: dict[str, str] = field(default_factory=dict)  # session_id -> why it can never be sent
    busy: bool = False  # another flusher holds the lock
    precompile: list[str] = field(default_factory=list)  # per store sent to: what precompiling did, or why it was skipped


def enqueue(session_id: str, transcript_path: str, store: StoreSettings, *, cwd: str = "", reason: str = "", spool: Path | None = None) -> Path:
    """Queue one session (replacing an older entry for it: the transcript only grows)."""
    if not session_id or "/" in session_id or session_id.startswith("."):
        raise ValueError(f"bad session_id {session_id!r}")
    spool = spool or spool_dir()
    spool.mkdir(parents=True, exist_ok=True)
    entry = {
        "session_id": session_id,
        "transcript_path": transcript_path,
        "cwd": cwd,
        "reason": reason,
        "store": store.uri,
        "endpoint_url": store.endpoint_url,
        "queued_at": datetime.now(timezone.utc).isoformat(),
    }
    target = spool / f"{session_id}.json"
    fd, tmp = tempfile.mkstemp(dir=spool, prefix=".entry-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(entry, handle)
    os.replace(tmp, target)
    return target


def pending(spool: Path | None = None) -> list[Path]:
    spool = spool or spool_dir()
    return sorted(spool.glob("*.json")) if spool.is_dir() else []


def spawn_flusher(spool: Path | None = None) -> subprocess.Popen:
    """Start `rlmlab transcripts flush --wait` fully detached: own session, no shared stdio, output to the spool's log.

    `--wait`: if a flusher is already running, this one queues behind it instead of quitting,
    so an entry written just as the running one finishes is still sent now. `--settle`: give
    Claude Code a moment to finish writing the transcript first.
    """
    spool = spool or spool_dir()
    spool.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RLMLAB_SPOOL_DIR": str(spool)}
    with open(spool / LOG_NAME, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "rlmlab", "transcripts", "flush", "--wait", "--settle", str(SETTLE_S)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            env=env,
            preexec_fn=_lower_priority,
        )


def _lower_priority() -> None:
    """In the child before exec: yield the CPU to the session the user is starting or closing."""
    try:
        os.nice(10)
    except OSError:
        pass


def flush(spool: Path | None = None, *, wait: bool = False) -> FlushReport:
    """Upload every queued session; keep the ones that fail. One flusher at a time per spool."""
    from .claude_code import load
    from .upload import upload_sessions
    from ..stores import open_store

    spool = spool or spool_dir()
    report = FlushReport()
    if not spool.is_dir():
        return report
    with open(spool / _LOCK_NAME, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            report.busy = True
            return report
        seen: set[tuple[Path, int]] = set()
        while True:  # entries (re-)queued while we upload are picked up before we let go of the lock
            batch = [p for p in pending(spool) if (p, _version(p)) not in seen]
            if not batch:
                return report
            seen.update((p, _version(p)) for p in batch)
            groups: dict[tuple, list[tuple[Path, bytes, dict]]] = defaultdict(list)
            for path in batch:
                try:
                    raw = path.read_bytes()
                    entry = json.loads(raw)
                    groups[(entry["store"], entry.get("endpoint_url"))].append((path, raw, entry))
                except (OSError, ValueError, KeyError, TypeError) as e:
                    report.dropped[path.stem] = f"unreadable spool entry: {e}"
                    _remove_if_unchanged(path, None)
            for (uri, endpoint_url), items in groups.items():
                sessions, sent = [], []
                for path, raw, entry in items:
                    transcript = Path(entry.get("transcript_path") or "")
                    if not transcript.is_file():
                        report.dropped[entry["session_id"]] = f"transcript {transcript} no longer exists"
                        _remove_if_unchanged(path, raw)
                        continue
                    try:
                        sessions.append(load(transcript))
                    except OSError as e:  # unreadable right now (permissions, a vanished mount): keep it queued
                        report.failed[entry["session_id"]] = f"{type(e).__name__}: {e}"
                        continue
                    sent.append((path, raw, entry))
                if not sessions:
                    continue
                try:
                    upload_sessions(sessions, open_store(uri, endpoint_url=endpoint_url, read_timeout=30))
                except (StoreError, OSError, ValueError) as e:
                    for _, _, entry in sent:
                        report.failed[entry["session_id"]] = f"{type(e).__name__}: {e}"
                    _log(f"{len(sent)} session(s) stay queued for {uri}: {type(e).__name__}: {e}")
                    continue
                for path, raw, entry in sent:
                    report.sent.append(entry["session_id"])
                    _remove_if_unchanged(path, raw)
                _log(f"sent {len(sent)} session(s) to {uri}")
                report.precompile.append(precompile_after_upload(open_store(uri, endpoint_url=endpoint_url)))
                _log(report.precompile[-1])


def precompile_after_upload(store) -> str:
    """Bring the store's briefing up to date, if a model is configured; say what happened either way."""
    from ..errors import MissingCredentials, RlmlabError
    from ..rlm.engine import RLM
    from .config import model_settings
    from .precompile import models_from_settings, precompile

    if os.environ.get("RLMLAB_PRECOMPILE", "1") == "0":
        return "precompile skipped: RLMLAB_PRECOMPILE=0"
    try:
        root, sub = models_from_settings(**model_settings())
    except MissingCredentials as e:
        return f"precompile skipped: no model configured ({str(e).splitlines()[0]})"
    try:
        done = precompile(store, RLM(root, sub))
    except (RlmlabError, OSError, ValueError) as e:
        return f"precompile failed: {type(e).__name__}: {e}"
    if done.up_to_date:
        return f"precompile: briefing already reflects version {done.version}"
    return f"precompiled version {done.version}: {len(done.digested)} new digest(s), {done.reused} reused, briefing {done.briefing_chars} chars"


def _version(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


def _remove_if_unchanged(path: Path, raw: bytes | None) -> None:
    """Delete a sent entry unless the hook re-queued the session meanwhile (then it goes next round)."""
    try:
        if raw is None or path.read_bytes() == raw:
            path.unlink()
    except FileNotFoundError:
        pass


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}", flush=True)
