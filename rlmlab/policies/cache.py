"""Cache policies: where fetched segments are kept for the next read.

Keys come from the manifest, and segments are immutable (a rewrite makes new segments
with new sha256s), so no cache ever needs invalidating. Sizes are counted in the
segment's UTF-8 bytes. Every policy counts its own hits, misses and bytes stored.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from ..layout import Segment
from . import Registry

registry = Registry("cache")

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024


class CachePolicy:
    name = ""

    def __init__(self):
        self.hits = 0
        self.misses = 0
        self.bytes_stored = 0  # bytes put into the cache over its life
        self.evictions = 0

    def get(self, segment: Segment) -> str | None:
        """The segment's text if cached (counts a hit), else None (counts a miss)."""
        raise NotImplementedError

    def put(self, segment: Segment, data: bytes, text: str) -> None:
        """Offer a verified segment (its bytes and decoded text) to the cache."""
        raise NotImplementedError

    def __contains__(self, segment: Segment) -> bool:
        """Whether `segment` is cached, without counting a hit or a miss."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def close(self, wait: bool = True) -> None:
        pass


@registry.register
class NoCache(CachePolicy):
    """Keep nothing: every read of a segment fetches it again (the seed's behaviour)."""

    name = "none"

    def __init__(self, *, cache_bytes: int = 0):
        super().__init__()

    def get(self, segment):
        self.misses += 1
        return None

    def put(self, segment, data, text):
        pass

    def __contains__(self, segment):
        return False


@registry.register
class MemoryLRU(CachePolicy):
    """Decoded text in memory, least recently used evicted beyond `cache_bytes`.

    Text is kept decoded so a warm read is a dict lookup and a slice. A segment larger
    than the whole budget is not cached at all.
    """

    name = "memory"

    def __init__(self, *, cache_bytes: int = DEFAULT_CACHE_BYTES):
        super().__init__()
        if cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0, got {cache_bytes}")
        self.cache_bytes = cache_bytes
        self.size = 0
        # keyed by sha256 (identical segments share an entry), else by where the bytes are
        self._entries: OrderedDict[str | tuple[str, int], tuple[str, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, segment):
        # Lock-free on purpose: this is the warm path, and each OrderedDict operation is
        # atomic under the GIL; a concurrent eviction can only turn a hit into a miss.
        slot = segment.sha256 or (segment.key, segment.byte_offset)
        entry = self._entries.get(slot)
        if entry is None:
            self.misses += 1
            return None
        try:
            self._entries.move_to_end(slot)
        except KeyError:
            pass
        self.hits += 1
        return entry[0]

    def put(self, segment, data, text):
        size = segment.byte_length
        if size > self.cache_bytes:
            return
        slot = segment.sha256 or (segment.key, segment.byte_offset)
        with self._lock:
            if slot in self._entries:
                self._entries.move_to_end(slot)
                return
            self._entries[slot] = (text, size)
            self.size += size
            self.bytes_stored += size
            while self.size > self.cache_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self.size -= evicted
                self.evictions += 1

    def __contains__(self, segment):
        return (segment.sha256 or (segment.key, segment.byte_offset)) in self._entries

    def describe(self):
        return f"{self.name}({self.cache_bytes / 2**20:.0f} MiB)"


def default_cache_dir() -> Path:
    root = os.environ.get("RLMLAB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rlmlab"
    )
    return Path(root) / "segments"


@registry.register
class DiskLRU(CachePolicy):
    """Segment bytes on local disk under `cache_dir`, keyed by sha256, LRU beyond `cache_bytes`.

    Keyed by content, so every context (and every process) sharing the directory shares
    the cache, and it survives a reopen. Writes are atomic (a temp file renamed into
    place), so a crash never leaves a partial entry; a hit is re-hashed before use, so a
    corrupted file is dropped, never returned. Recency is the file's mtime (touched on
    every hit), which is how the order survives a reopen. Segments without a sha256 in
    their manifest (imported legacy layouts) are not cached on disk.

    A small in-memory LRU of decoded text (`memory_bytes`, default 64 MiB) sits in front,
    so a warm read does not re-read, re-hash and re-decode a file every time.
    """

    name = "disk"

    def __init__(
        self,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        cache_dir: str | os.PathLike | None = None,
        memory_bytes: int = 64 * 1024 * 1024,
    ):
        super().__init__()
        if cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0, got {cache_bytes}")
        self.cache_bytes = cache_bytes
        self.front = MemoryLRU(cache_bytes=memory_bytes)
        self.directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, int] = OrderedDict()  # sha256 -> size, oldest first
        self.size = 0
        self._load_index()

    def _path(self, sha: str) -> Path:
        return self.directory / sha[:2] / sha

    def _load_index(self) -> None:
        found = []
        for path in self.directory.glob("??/*"):
            if len(path.name) == 64 and path.is_file():
                stat = path.stat()
                found.append((stat.st_mtime_ns, path.name, stat.st_size))
        for _, sha, size in sorted(found):
            self._entries[sha] = size
            self.size += size
        self._evict()

    def get(self, segment):
        text = self.front.get(segment)
        if text is not None:
            self.hits += 1
            return text
        sha = segment.sha256
        with self._lock:
            known = sha in self._entries
        if not known:
            self.misses += 1
            return None
        path = self._path(sha)
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # evicted by another process sharing the directory
            data = None
        if data is None or len(data) != segment.byte_length or hashlib.sha256(data).hexdigest() != sha:
            self._forget(sha, unlink=data is not None)
            self.misses += 1
            return None
        with self._lock:
            if sha in self._entries:
                self._entries.move_to_end(sha)
        try:
            os.utime(path)
        except FileNotFoundError:
            pass
        self.hits += 1
        text = data.decode("utf-8")
        self.front.put(segment, data, text)
        return text

    def put(self, segment, data, text):
        self.front.put(segment, data, text)
        sha = segment.sha256
        if not sha or len(data) > self.cache_bytes:
            return
        with self._lock:
            if sha in self._entries:
                return
        path = self._path(sha)
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        with self._lock:
            if sha not in self._entries:
                self._entries[sha] = len(data)
                self.size += len(data)
                self.bytes_stored += len(data)
        self._evict()

    def _forget(self, sha: str, *, unlink: bool) -> None:
        with self._lock:
            size = self._entries.pop(sha, None)
            if size is not None:
                self.size -= size
        if unlink:
            self._path(sha).unlink(missing_ok=True)

    def _evict(self) -> None:
        while True:
            with self._lock:
                if self.size <= self.cache_bytes or not self._entries:
                    return
                sha, size = self._entries.popitem(last=False)
                self.size -= size
                self.evictions += 1
            self._path(sha).unlink(missing_ok=True)

    def __contains__(self, segment):
        return segment in self.front or segment.sha256 in self._entries

    def describe(self):
        return f"{self.name}({self.cache_bytes / 2**20:.0f} MiB at {self.directory}, {self.front.describe()} in front)"
