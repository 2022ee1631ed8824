"""Append sessions to a store as one growing team context, safely under concurrent uploaders.

The store holds the foundation's manifest layout, so `open_context(URI)` reads the whole
team history as one string:

* `transcripts/sessions/<session_id>/<sha>-<n>.txt`: a session's redacted text, in segments;
* `transcripts/manifests/v00000042.json`: manifest version 42 — every segment in order, and
  in `extra["transcripts"]["sessions"]` the per-session index (character and line ranges);
* `manifest.json`: a copy of the newest version, for readers.

A version is committed by creating its object with a create-only put (`If-None-Match: *` on
S3/R2, an atomic link locally). Two uploaders that race for version N+1: one wins, the other
gets PreconditionFailed, re-reads version N+1 and tries N+2 with its sessions merged in, so
no session is ever lost. A session already present with the same content is skipped
(re-upload is idempotent); one whose content changed (the conversation went on) is replaced
in place.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from ..errors import ManifestError, ObjectNotFound, PreconditionFailed, RetriesExhausted, TransientStoreError
from ..layout import MANIFEST_KEY, Manifest, Segment, plan_segments
from ..retry import RetryPolicy
from ..stores import Store, open_store
from .redact import redact
from .session import Session

VERSIONS_PREFIX = "transcripts/manifests/"
SESSIONS_PREFIX = "transcripts/sessions/"
DEFAULT_SEGMENT_BYTES = 1_048_576
_TRANSIENT = RetryPolicy(attempts=6)


@dataclass(frozen=True)
class SessionRange:
    """Where one session sits in the team context: `context[char_offset:char_offset + char_length]`."""

    session_id: str
    developer: str
    email: str
    project_dir: str
    git_branch: str
    start_time: str
    end_time: str
    message_count: int
    uploaded_at: str
    content_sha256: str
    char_offset: int
    char_length: int
    line_offset: int
    line_count: int
    first_segment: int
    segment_count: int


@dataclass
class UploadResult:
    version: int  # the manifest version that holds the sessions (0: the store is still empty)
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: int = 0  # lost races for a version, each retried on the newer one


@dataclass(frozen=True)
class _Prepared:
    session: Session
    content_sha256: str
    segments: tuple[Segment, ...]  # offsets relative to the session's own text
    uploaded_at: str


def upload_sessions(
    sessions: Iterable[Session],
    store: Store | str,
    *,
    segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    max_conflicts: int = 200,
    now: datetime | None = None,
) -> UploadResult:
    """Redact, render and append `sessions` to the team context at `store`; one new manifest version.

    Each session that is added or replaced gets `uploaded_at` stamped (the time of this call).
    """
    store = open_store(store) if isinstance(store, str) else store
    stamp = (now or datetime.now(timezone.utc)).isoformat()
    rendered = {s.session_id: _content(s) for s in sessions}
    prepared: dict[str, _Prepared] = {}  # segments put so far (only for sessions the store lacks)
    result = UploadResult(version=0)
    rng = random.Random()
    seen = 0
    while True:
        version, manifest = latest_version(store, at_least=seen)
        result.version = version
        ranges = _ranges(manifest)
        known = {r.session_id: r.content_sha256 for r in ranges}
        result.added, result.replaced, result.unchanged = [], [], []
        for session_id, (session, content_sha) in rendered.items():
            if known.get(session_id) == content_sha:
                result.unchanged.append(session_id)
                continue
            (result.replaced if session_id in known else result.added).append(session_id)
            if session_id not in prepared:
                prepared[session_id] = _prepare(store, session, content_sha, segment_bytes, stamp)
        changes = {sid: prepared[sid] for sid in result.added + result.replaced}
        if not changes:
            return result
        data = _next_manifest(manifest, ranges, changes, version + 1).to_json().encode()
        try:
            _retrying(lambda: store.put(version_key(version + 1), data, if_none_match=True))
        except PreconditionFailed:
            seen = version + 1  # someone committed it: merge into theirs next
            result.conflicts += 1
            if result.conflicts > max_conflicts:
                raise RetriesExhausted(f"lost the race for a manifest version {result.conflicts} times", key=version_key(version + 1)) from None
            time.sleep(rng.uniform(0, min(0.5, 0.01 * 2 ** min(result.conflicts, 6))))
            continue
        result.version = version + 1
        publish(store, version + 1, data)
        return result


def version_key(version: int) -> str:
    return f"{VERSIONS_PREFIX}v{version:08d}.json"


def latest_version(store: Store, at_least: int = 0) -> tuple[int, Manifest | None]:
    """The newest committed manifest version and its manifest, or (0, None) for an empty store.

    Starts from `manifest.json` (usually the newest already) and probes for later versions
    it does not show yet: one GET and one HEAD in the common case, no listing.
    """
    try:
        pointer = _retrying(lambda: store.get(MANIFEST_KEY))
    except ObjectNotFound:
        pointer = None
    known = _version_of(pointer) if pointer is not None else 0
    if pointer is not None and known == 0:
        raise ManifestError(f"{store.uri} already holds a context that `transcripts upload` did not write; use another prefix")
    newest = max(known, at_least)
    while _retrying(lambda: store.exists(version_key(newest + 1))):
        newest += 1
    if newest == 0:
        return 0, None
    data = pointer if newest == known else _retrying(lambda: store.get(version_key(newest)))
    return newest, Manifest.from_json(data)


def session_index(store: Store | str) -> list[SessionRange]:
    """The per-session index of the newest version: which characters of the context hold which session."""
    store = open_store(store) if isinstance(store, str) else store
    return _ranges(latest_version(store)[1])


def publish(store: Store, version: int, data: bytes) -> None:
    """Make `manifest.json` (what readers open) the given version, unless a newer one is already there.

    Compare-and-swap on the ETag, so a slow uploader never puts an older version back.
    """
    for _ in range(100):
        try:
            current, etag = _retrying(lambda: store.get_with_etag(MANIFEST_KEY))
        except ObjectNotFound:
            try:
                _retrying(lambda: store.put(MANIFEST_KEY, data, if_none_match=True))
                return
            except PreconditionFailed:
                continue
        if _version_of(current) >= version:
            return
        try:
            _retrying(lambda: store.put_if_match(MANIFEST_KEY, data, etag))
            return
        except PreconditionFailed:
            continue
    raise RetriesExhausted("manifest.json kept changing while publishing", key=MANIFEST_KEY)


# -- internals ----------------------------------------------------------------------------


def _content(session: Session) -> tuple[Session, str]:
    """The session and the sha256 of its redacted text without the upload stamp: what 'same session' means."""
    if not session.session_id:
        raise ValueError("a session without a session_id cannot be uploaded")
    session.uploaded_at = ""
    return session, hashlib.sha256(redact(session.to_text()).encode("utf-8")).hexdigest()


def _prepare(store: Store, session: Session, content_sha: str, segment_bytes: int, stamp: str) -> _Prepared:
    """Render and redact the stamped session and put its segments (content-addressed, create-only)."""
    session.uploaded_at = stamp
    text = redact(session.to_text()) + "\n"  # a blank line between sessions in the team context
    segments = []
    for index, (data, char_offset, line_offset, line_count) in enumerate(plan_segments(text, segment_bytes)):
        sha = hashlib.sha256(data).hexdigest()
        key = f"{SESSIONS_PREFIX}{session.session_id}/{sha[:16]}-{index:03d}.txt"
        try:
            _retrying(lambda: store.put(key, data, if_none_match=True))
        except PreconditionFailed:
            pass  # the same bytes are already there
        char_length = len(data.decode("utf-8"))
        segments.append(Segment(key, 0, len(data), char_offset, char_length, line_offset, line_count, sha))
    return _Prepared(session, content_sha, tuple(segments), stamp)


def _ranges(manifest: Manifest | None) -> list[SessionRange]:
    if manifest is None:
        return []
    try:
        return [SessionRange(**entry) for entry in manifest.extra["transcripts"]["sessions"]]
    except (KeyError, TypeError) as e:
        raise ManifestError(f"manifest has no valid transcripts index ({type(e).__name__}: {e})") from None


def _next_manifest(manifest: Manifest | None, ranges: list[SessionRange], changes: dict[str, _Prepared], version: int) -> Manifest:
    """Old sessions in their order (changed ones replaced in place), then the new ones, re-tiled."""
    old_segments = manifest.segments if manifest is not None else ()
    pieces: list[tuple[dict, list[Segment]]] = []
    for r in ranges:
        item = changes.pop(r.session_id, None)
        if item is None:
            pieces.append((_entry_fields(r), list(old_segments[r.first_segment : r.first_segment + r.segment_count])))
        else:
            pieces.append((_entry_for(item), list(item.segments)))
    for item in changes.values():
        pieces.append((_entry_for(item), list(item.segments)))
    segments, entries = [], []
    chars = lines = 0
    for fields, own in pieces:
        start_chars, start_lines, first = chars, lines, len(segments)
        for s in own:
            segments.append(Segment(s.key, 0, s.byte_length, chars, s.char_length, lines, s.line_count, s.sha256))
            chars += s.char_length
            lines += s.line_count
        entries.append({**fields, "char_offset": start_chars, "char_length": chars - start_chars, "line_offset": start_lines,
                        "line_count": lines - start_lines, "first_segment": first, "segment_count": len(own)})
    return Manifest(
        layout="segments",
        segments=tuple(segments),
        total_bytes=sum(s.byte_length for s in segments),
        total_chars=chars,
        total_lines=lines,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extra={"transcripts": {"version": version, "sessions": entries}},
    )


_POSITION = ("char_offset", "char_length", "line_offset", "line_count", "first_segment", "segment_count")


def _entry_fields(r: SessionRange) -> dict:
    return {k: v for k, v in r.__dict__.items() if k not in _POSITION}


def _entry_for(item: _Prepared) -> dict:
    s = item.session
    return {
        "session_id": s.session_id,
        "developer": s.identity.developer,
        "email": s.identity.email,
        "project_dir": s.project_dir,
        "git_branch": s.git_branch,
        "start_time": s.start_time,
        "end_time": s.end_time,
        "message_count": s.message_count,
        "uploaded_at": item.uploaded_at,
        "content_sha256": item.content_sha256,
    }


def _version_of(data: bytes) -> int:
    try:
        return int(json.loads(data)["extra"]["transcripts"]["version"])
    except (ValueError, KeyError, TypeError):
        return 0


def _retrying(operation):
    for attempt in range(1, _TRANSIENT.attempts + 1):
        try:
            return operation()
        except TransientStoreError as e:
            if attempt == _TRANSIENT.attempts:
                raise RetriesExhausted(f"gave up after {attempt} attempts ({e.kind})") from e
            time.sleep(_TRANSIENT.delay(attempt))
    raise AssertionError("unreachable")
