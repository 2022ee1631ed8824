"""Stores: bytes in, bytes out, nothing else.

A store knows keys, not text: no retries, caching or decoding happens here (those are
policies above it). Errors are translated to the typed errors of `rlmlab.errors`, so the
layer above can tell a retryable fault (`TransientStoreError`) from a final one.

`open_store(uri)` picks the implementation from the URI scheme: `mem://NAME`,
`file:///DIR`, `s3://BUCKET/PREFIX` (boto3 by default, `client="obstore"` as an option).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from .errors import ObjectNotFound, PreconditionFailed


class Store(ABC):
    """An object store rooted at a prefix. Keys are relative to that prefix."""

    uri: str

    @abstractmethod
    def get(self, key: str, start: int | None = None, stop: int | None = None) -> bytes:
        """The object's bytes, or bytes [start, stop) of it (stop exclusive, like a slice)."""

    @abstractmethod
    def put(self, key: str, data: bytes, *, if_none_match: bool = False) -> None:
        """Write an object. With `if_none_match`, raise `PreconditionFailed` if it exists."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether the key exists."""

    @abstractmethod
    def list(self, prefix: str = "") -> dict[str, int]:
        """Keys under `prefix` (relative to the store's root) with their sizes in bytes."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; removing a missing one is not an error."""


class MemoryStore(Store):
    """A process-local store; `mem://NAME` names one shared by every opener in the process."""

    _named: dict[str, dict[str, bytes]] = {}
    _named_lock = threading.Lock()

    def __init__(self, name: str = ""):
        self.uri = f"mem://{name}"
        with self._named_lock:
            self._objects = self._named.setdefault(name, {})
        self._lock = threading.Lock()

    def get(self, key, start=None, stop=None):
        try:
            data = self._objects[key]
        except KeyError:
            raise ObjectNotFound("no such object", key=key) from None
        if start is None and stop is None:
            return data
        return data[start or 0 : stop]

    def put(self, key, data, *, if_none_match=False):
        with self._lock:
            if if_none_match and key in self._objects:
                raise PreconditionFailed("object exists", key=key)
            self._objects[key] = bytes(data)

    def exists(self, key):
        return key in self._objects

    def list(self, prefix=""):
        return {k: len(v) for k, v in list(self._objects.items()) if k.startswith(prefix)}

    def delete(self, key):
        with self._lock:
            self._objects.pop(key, None)
