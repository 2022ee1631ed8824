"""The storage layout of a context: immutable UTF-8 segments plus a manifest.

A manifest lists, per segment, where its bytes are (key, byte offset and length inside
that key's object), which characters and lines it holds, and its sha256. With
`layout="segments"` every segment is its own object (byte_offset 0); with
`layout="single"` all segments are ranges of one object, read with ranged GETs.
Segments end on line boundaries, so a segment is always valid UTF-8 on its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

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
