"""Claude Code hooks: SessionEnd queues the session for upload, SessionStart injects the team briefing.

Claude Code gives a SessionEnd hook about 1.5 s and cannot wait for it, so `session_end`
touches no network: it writes a spool entry and starts a detached flusher (spool.py).
`session_start` also starts a flusher when sessions are still queued (the store may be
back), then reads `compiled/briefing.md` from the store with a deadline, falling back to
the last copy it saw, and returns it as `additionalContext`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from pathlib import Path

from ..errors import ObjectNotFound
from .config import StoreSettings, rlmlab_home, store_settings
from .spool import enqueue, pending, spawn_flusher

BRIEFING_KEY = "compiled/briefing.md"
BRIEFING_DEADLINE_S = 2.0


def read_payload(text: str) -> dict:
    """The hook's stdin JSON; a clear error when it is not what Claude Code sends."""
    try:
        payload = json.loads(text)
    except ValueError as e:
        raise ValueError(f"hook input is not JSON ({e}); Claude Code sends an object with session_id and transcript_path") from None
    if not isinstance(payload, dict):
        raise ValueError(f"hook input must be a JSON object, got {type(payload).__name__}")
    return payload


def session_end(payload: dict, *, spawn: bool = True) -> Path:
    """Queue the ended session and start the uploader in the background; returns the spool entry."""
    session_id = _required(payload, "session_id")
    transcript = _required(payload, "transcript_path")
    entry = enqueue(session_id, transcript, store_settings(), cwd=str(payload.get("cwd") or ""), reason=str(payload.get("reason") or ""))
    if spawn:
        spawn_flusher()
    return entry


def session_start(payload: dict, *, spawn: bool = True, deadline_s: float = BRIEFING_DEADLINE_S) -> str | None:
    """The hook's stdout: the briefing as SessionStart `additionalContext`, or None when there is none."""
    if spawn and pending():
        spawn_flusher()
    settings = store_settings()
    briefing = fetch_briefing(settings, deadline_s=deadline_s)
    if not briefing:
        return None
    return json.dumps({"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": briefing}})


def fetch_briefing(settings: StoreSettings, *, deadline_s: float = BRIEFING_DEADLINE_S) -> str | None:
    """`compiled/briefing.md` from the store within the deadline, else the cached copy from an earlier session."""
    cache = rlmlab_home() / "briefings" / f"{hashlib.sha256(settings.uri.encode()).hexdigest()[:16]}.md"
    box: dict = {}

    def fetch() -> None:
        from ..stores import open_store

        # obstore, when installed, starts in a fraction of boto3's import and client setup (~0.2 s)
        client = "obstore" if importlib.util.find_spec("obstore") else "boto3"
        try:
            store = open_store(settings.uri, endpoint_url=settings.endpoint_url, client=client, read_timeout=deadline_s)
            box["data"] = store.get(BRIEFING_KEY)
        except ObjectNotFound:
            box["missing"] = True
        except Exception as e:  # unreachable, denied, misconfigured: the cached copy is the answer
            box["error"] = e

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(deadline_s)
    if "data" in box:
        text = box["data"].decode("utf-8", errors="replace")
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(text, encoding="utf-8")
        return text
    if box.get("missing"):
        return None
    return cache.read_text(encoding="utf-8") if cache.is_file() else None


def _required(payload: dict, name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"hook input has no {name!r} (got keys {sorted(payload)})")
    return value
