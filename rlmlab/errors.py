"""Typed errors. Each names what went wrong and where, so a user can act on it."""

from __future__ import annotations


class RlmlabError(Exception):
    """Base class of every error rlmlab raises on purpose."""


class StoreError(RlmlabError):
    """A store operation failed."""

    def __init__(self, message: str, *, key: str | None = None, byte_range: tuple[int | None, int | None] | None = None):
        self.key = key
        self.byte_range = byte_range
        where = ""
        if key is not None:
            where = f" [key={key!r}"
            if byte_range is not None and byte_range != (None, None):
                where += f", bytes={byte_range[0]}-{byte_range[1]}"
            where += "]"
        super().__init__(message + where)


class TransientStoreError(StoreError):
    """Worth retrying: 5xx, SlowDown, connection reset, timeout. `kind` says which."""

    def __init__(self, message: str, *, kind: str, **where):
        self.kind = kind
        super().__init__(message, **where)


class ObjectNotFound(StoreError):
    """The key does not exist."""


class PreconditionFailed(StoreError):
    """A conditional write lost its race (412 / 409, or the local file already exists)."""


class ObjectChanged(StoreError):
    """An immutable object's bytes do not match the manifest (length or sha256)."""


class RetriesExhausted(StoreError):
    """A transient error outlived every retry."""


class ManifestError(RlmlabError):
    """A manifest is missing, malformed, or names something that is not there."""
