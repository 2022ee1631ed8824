"""The storage layout of a context: immutable UTF-8 segments plus a manifest.

A manifest lists, per segment, where its bytes are (key, byte offset and length inside
that key's object), which characters and lines it holds, and its sha256. With
`layout="segments"` every segment is its own object (byte_offset 0); with
`layout="single"` all segments are ranges of one object, read with ranged GETs.
Segments end on line boundaries, so a segment is always valid UTF-8 on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from tqdm.auto import tqdm

from .errors import ManifestError, ObjectNotFound, PreconditionFailed, RetriesExhausted, StoreError, TransientStoreError
from .retry import RetryPolicy
from .stores import Store, open_store

MANIFEST_KEY = "manifest.json"
MANIFEST_FORMAT = "rlmlab.manifest/1"


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    byte_offset: int
    byte_length: int
    char_offset: int
    char_length: int
    line_offset: int
    line_count: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    layout: str  # "segments" or "single"
    segments: tuple[Segment, ...]
    total_bytes: int
    total_chars: int
    total_lines: int
    created_at: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        body = {
            "format": MANIFEST_FORMAT,
            "layout": self.layout,
            "total_bytes": self.total_bytes,
            "total_chars": self.total_chars,
            "total_lines": self.total_lines,
            "created_at": self.created_at,
            "extra": self.extra,
            "segments": [asdict(s) for s in self.segments],
        }
        return json.dumps(body, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Manifest":
        body = json.loads(text)
        return cls(
            layout=body["layout"],
            segments=tuple(Segment(**s) for s in body["segments"]),
            total_bytes=body["total_bytes"],
            total_chars=body["total_chars"],
            total_lines=body["total_lines"],
            created_at=body.get("created_at", ""),
            extra=body.get("extra", {}),
        )


def plan_segments(text: str, segment_bytes: int) -> list[tuple[bytes, int, int, int]]:
    """Split text into UTF-8 chunks of about `segment_bytes` that end on line boundaries.

    Returns (data, char_offset, line_offset, line_count) per chunk. A single line longer
    than `segment_bytes` becomes a segment of its own rather than being cut mid-line.
    """
    if segment_bytes <= 0:
        raise ValueError(f"segment_bytes must be positive, got {segment_bytes}")
    chunks: list[tuple[bytes, int, int, int]] = []
    lines = text.splitlines(keepends=True)
    buf: list[str] = []
    buf_bytes = 0
    char_offset = line_offset = 0

    def flush() -> None:
        nonlocal buf, buf_bytes, char_offset, line_offset
        if not buf:
            return
        piece = "".join(buf)
        chunks.append((piece.encode("utf-8"), char_offset, line_offset, len(buf)))
        char_offset += len(piece)
        line_offset += len(buf)
        buf, buf_bytes = [], 0

    for line in lines:
        size = len(line.encode("utf-8"))
        if buf and buf_bytes + size > segment_bytes:
            flush()
        buf.append(line)
        buf_bytes += size
    flush()
    return chunks


# --------------------------------------------------------------------------- writing and loading

LAYOUTS = ("segments", "single")
MONOCONTEXT_CACHE_KEY = "rlmlab-manifest.json"
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")  # where str.splitlines breaks
_WRITE_RETRIES = RetryPolicy(attempts=6)


def write_context(
    text_or_path: str | os.PathLike,
    uri: str | Store,
    *,
    layout: str = "segments",
    segment_bytes: int = 1_048_576,
    endpoint_url: str | None = None,
    workers: int = 16,
    client: str = "boto3",
    progress: bool = True,
) -> Manifest:
    """Write a context (text, or the path of a UTF-8 file) to a store and return its manifest.

    Segment keys are content-addressed, so rewriting the same prefix (say, with another
    segment size) never replaces an object a reader may be using, and rewriting the same
    text uploads nothing new. The manifest goes last: a reader that finds it finds every
    object it names complete.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: choose one of {LAYOUTS}")
    text = _read_text(text_or_path)
    store = _store_for(uri, endpoint_url, client, workers)
    chunks = plan_segments(text, segment_bytes)
    char_ends = [c[1] for c in chunks[1:]] + [len(text)]
    segments: list[Segment] = []
    uploads: dict[str, bytes] = {}
    byte_offset = 0
    if layout == "single":
        whole = text.encode("utf-8")
        single_key = f"context-{hashlib.sha256(whole).hexdigest()[:16]}.txt"
        uploads[single_key] = whole
    for index, ((data, char_offset, line_offset, line_count), char_end) in enumerate(zip(chunks, char_ends)):
        sha = hashlib.sha256(data).hexdigest()
        if layout == "segments":
            key = f"segments/{index:06d}-{sha[:16]}.txt"
            uploads[key] = data
        else:
            key = single_key
        segments.append(
            Segment(
                key=key,
                byte_offset=byte_offset if layout == "single" else 0,
                byte_length=len(data),
                char_offset=char_offset,
                char_length=char_end - char_offset,
                line_offset=line_offset,
                line_count=line_count,
                sha256=sha,
            )
        )
        byte_offset += len(data)
    manifest = Manifest(
        layout=layout,
        segments=tuple(segments),
        total_bytes=byte_offset,
        total_chars=len(text),
        total_lines=sum(s.line_count for s in segments),
        created_at=_now(),
        extra={"segment_bytes": segment_bytes},
    )
    _upload(store, uploads, workers=workers, progress=progress, immutable=True)
    _retrying(lambda: store.put(MANIFEST_KEY, manifest.to_json().encode()), MANIFEST_KEY)
    return manifest


def write_monocontext(
    text_or_path: str | os.PathLike,
    uri: str | Store,
    *,
    lines_per_segment: int = 1000,
    endpoint_url: str | None = None,
    workers: int = 16,
    client: str = "boto3",
    progress: bool = True,
) -> list[dict]:
    """Write the seed's Monocontext layout: `segment_000001.log`, ... of N lines each, plus a
    `manifest.json` listing `{"segment", "start_line", "line_count"}`. Benchmarks use it to
    reproduce the naive baseline. Returns that listing."""
    if lines_per_segment <= 0:
        raise ValueError(f"lines_per_segment must be positive, got {lines_per_segment}")
    lines = _read_text(text_or_path).splitlines(keepends=True)
    store = _store_for(uri, endpoint_url, client, workers)
    listing, uploads = [], {}
    for number, start in enumerate(range(0, len(lines), lines_per_segment), start=1):
        block = lines[start : start + lines_per_segment]
        name = f"segment_{number:06d}.log"
        uploads[name] = "".join(block).encode("utf-8")
        listing.append({"segment": name, "start_line": start, "line_count": len(block)})
    _upload(store, uploads, workers=workers, progress=progress, immutable=False)
    _retrying(lambda: store.put(MANIFEST_KEY, json.dumps(listing).encode()), MANIFEST_KEY)
    return listing


def load_manifest(
    store: str | Store, *, workers: int = 16, endpoint_url: str | None = None, client: str = "boto3"
) -> Manifest:
    """The manifest of a stored context, rlmlab's own or the seed's Monocontext listing.

    A Monocontext bucket is indexed once (each object fetched, in parallel, for its
    character and line counts and sha256) and the result cached beside it as
    `rlmlab-manifest.json`, reused while the listing and object sizes still match.
    """
    store = _store_for(store, endpoint_url, client, workers)
    where = f"{store.uri}/{MANIFEST_KEY}"
    try:
        raw = _retrying(lambda: store.get(MANIFEST_KEY), MANIFEST_KEY)
    except ObjectNotFound:
        raise ManifestError(f"no manifest at {where}: write the context with rlmlab.write_context first") from None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"malformed manifest at {where}: not JSON ({e})") from None
    if isinstance(body, dict) and "format" in body:
        if body["format"] != MANIFEST_FORMAT:
            raise ManifestError(f"unsupported manifest format {body['format']!r} at {where} (this rlmlab reads {MANIFEST_FORMAT!r})")
        try:
            manifest = Manifest.from_json(raw)
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"malformed manifest at {where}: {type(e).__name__}: {e}") from None
        _check_consistent(manifest, where)
        return manifest
    if isinstance(body, list):
        return _index_monocontext(store, raw, body, where, workers)
    raise ManifestError(
        f"{where} is neither an rlmlab manifest (format {MANIFEST_FORMAT!r}) "
        "nor a Monocontext list of {segment, start_line, line_count}"
    )


def _check_consistent(manifest: Manifest, where: str) -> None:
    """Offsets must tile the text: a manifest that does not is not worth reading from."""
    if manifest.layout not in LAYOUTS:
        raise ManifestError(f"malformed manifest at {where}: unknown layout {manifest.layout!r}")
    chars = lines = 0
    for i, s in enumerate(manifest.segments):
        if s.char_offset != chars or s.line_offset != lines or min(s.byte_length, s.char_length, s.line_count) < 0:
            raise ManifestError(f"malformed manifest at {where}: segment {i} ({s.key}) does not follow segment {i - 1}")
        chars += s.char_length
        lines += s.line_count
    if chars != manifest.total_chars or lines != manifest.total_lines:
        raise ManifestError(f"malformed manifest at {where}: totals do not match its segments")


def _index_monocontext(store: Store, raw: bytes, listing: list, where: str, workers: int) -> Manifest:
    entries = []
    for i, entry in enumerate(listing):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("segment"), str)
            and isinstance(entry.get("start_line"), int)
            and isinstance(entry.get("line_count"), int)
        ):
            raise ManifestError(f"malformed Monocontext manifest at {where}: entry {i} is {entry!r}, not {{segment, start_line, line_count}}")
        entries.append(entry)
    entries.sort(key=lambda e: e["start_line"])
    listing_sha = hashlib.sha256(raw).hexdigest()
    cached = _cached_index(store, listing_sha)
    if cached is not None:
        return cached

    def fetch(entry: dict) -> bytes:
        key = entry["segment"]
        try:
            return _retrying(lambda: store.get(key), key)
        except ObjectNotFound:
            raise ManifestError(f"Monocontext manifest at {where} names {key!r}, which does not exist") from None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        blobs = list(pool.map(fetch, entries))
    segments, texts = [], []
    chars = lines = 0
    for entry, data in zip(entries, blobs):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ManifestError(f"{store.uri}/{entry['segment']} is not UTF-8 (byte {e.start})") from None
        if not text:
            continue
        texts.append((entry["segment"], text))
        line_count = len(text.splitlines())
        segments.append(
            Segment(entry["segment"], 0, len(data), chars, len(text), lines, line_count, hashlib.sha256(data).hexdigest())
        )
        chars += len(text)
        lines += line_count
    for (key, text), (_, following) in zip(texts, texts[1:]):
        # A segment must end where a line does, or per-segment line counts would not add up.
        if text[-1] not in _LINE_BREAKS or (text[-1] == "\r" and following[0] == "\n"):
            raise ManifestError(f"Monocontext object {store.uri}/{key} does not end on a line boundary")
    manifest = Manifest(
        layout="segments",
        segments=tuple(segments),
        total_bytes=sum(s.byte_length for s in segments),
        total_chars=chars,
        total_lines=lines,
        created_at=_now(),
        extra={
            "source_layout": "monocontext",
            "source_manifest_sha256": listing_sha,
            "source_sizes": {s.key: s.byte_length for s in segments},
        },
    )
    try:
        store.put(MONOCONTEXT_CACHE_KEY, manifest.to_json().encode())
    except StoreError as e:  # a read-only bucket: index again next time
        warnings.warn(f"could not cache the Monocontext index at {store.uri}/{MONOCONTEXT_CACHE_KEY}: {e}", stacklevel=3)
    return manifest


def _cached_index(store: Store, listing_sha: str) -> Manifest | None:
    """The cached index, if it was built from this very listing and every object kept its size."""
    with ThreadPoolExecutor(max_workers=2) as pool:  # one round trip, not two
        listing = pool.submit(store.list)
        try:
            cached = Manifest.from_json(_retrying(lambda: store.get(MONOCONTEXT_CACHE_KEY), MONOCONTEXT_CACHE_KEY))
        except (ObjectNotFound, KeyError, TypeError, ValueError):
            return None
        current = listing.result()
    if cached.extra.get("source_manifest_sha256") != listing_sha:
        return None
    sizes = cached.extra.get("source_sizes", {})
    if any(current.get(key) != size for key, size in sizes.items()):
        return None
    return cached


def _upload(store: Store, uploads: dict[str, bytes], *, workers: int, progress: bool, immutable: bool) -> None:
    """Put objects in parallel with a byte progress bar.

    Immutable objects already present with the right size are skipped, and are written
    with if-none-match, so two writers racing for one key never replace each other's object.
    """
    conflicting: set[str] = set()
    if immutable and uploads:
        existing = store.list(os.path.commonprefix(list(uploads)))
        uploads = {k: v for k, v in uploads.items() if existing.get(k) != len(v)}
        conflicting = {k for k in uploads if k in existing}  # wrong size: a broken earlier write
    total = sum(len(v) for v in uploads.values())

    def put(item: tuple[str, bytes]) -> int:
        key, data = item
        create_only = immutable and key not in conflicting
        try:
            _retrying(lambda: store.put(key, data, if_none_match=create_only), key)
        except PreconditionFailed:
            pass  # another writer put the same content-addressed object first
        return len(data)

    with tqdm(total=total, unit="B", unit_scale=True, desc=f"writing {store.uri}", disable=not progress or not uploads) as bar:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for done in pool.map(put, uploads.items()):
                bar.update(done)


def _retrying(operation, key: str, policy: RetryPolicy = _WRITE_RETRIES):
    """Run a store operation, retrying transient faults with the shared backoff.

    Writing and indexing need their own small loop: the Context's retry policies sit above
    reads of a context that already exists.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return operation()
        except TransientStoreError as e:
            if attempt == policy.attempts:
                raise RetriesExhausted(f"gave up after {attempt} attempts ({e.kind})", key=key) from e
            time.sleep(policy.delay(attempt))
    raise AssertionError("unreachable")


def _read_text(text_or_path: str | os.PathLike) -> str:
    if isinstance(text_or_path, str):
        return text_or_path
    if not isinstance(text_or_path, os.PathLike):
        raise TypeError(f"expected text (str) or a path, got {type(text_or_path).__name__}")
    path = os.fspath(text_or_path)
    try:
        with open(path, encoding="utf-8", newline="") as f:  # newline="": keep \r\n as written
            return f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8: invalid byte at offset {e.start}") from None


def _store_for(store_or_uri: str | Store, endpoint_url: str | None, client: str, workers: int) -> Store:
    if isinstance(store_or_uri, Store):
        return store_or_uri
    return open_store(store_or_uri, endpoint_url=endpoint_url, client=client, max_connections=max(64, workers))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
