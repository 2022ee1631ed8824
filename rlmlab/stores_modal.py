"""`modal://VOLUME/PREFIX`: a Modal Volume as a store, through the optional `modal` client.

The store can only promise what Modal's Python client offers (read from modal 1.6's
`modal/volume.py`; `pip install 'rlmlab[modal]'`):

* **No ranged read.** `Volume.read_file` streams the whole file in 8 MiB blocks. `get(key,
  start, stop)` reads that stream, keeps `[start, stop)` and closes it once `stop` is reached:
  the blocks before `start` are downloaded and dropped, the ones after `stop` mostly are not
  (the client prefetches a few blocks ahead).
* **Create-only puts.** `batch_upload(force=False)` asks the server to refuse existing paths
  (`disallow_overwrite_existing_files`); the client raises `FileExistsError`, translated to
  `PreconditionFailed`. The check and the write happen in one server request, but Modal does
  not document that check as atomic among concurrent writers (its docs promise concurrent
  writers to *distinct* files). `put(if_none_match=True)` is exactly as strong as that check,
  and so is everything built on it below; S3/R2 give a documented guarantee, Modal does not.
* **No ETags, no conditional replace.** `put_if_match` (the manifest pointer's compare-and-swap)
  is built on create-only puts: a writer takes a lock object `.rlmlab/locks/<key>` by creating
  it, compares the current bytes' MD5 with the ETag it read, overwrites, and removes the lock.
  Writers of one key are thus serialized as far as create-only puts are atomic. A lock older
  than `LOCK_TTL_S` by the writer's clock (its holder crashed) is broken by the next writer;
  until then, writers of that key wait `lock_wait_s`, then get PreconditionFailed. A holder stalled longer
  than that between its compare and its write, or two writers breaking one stale lock at the
  same moment, could still put an older manifest pointer back. That loses no session (the
  numbered manifest versions are create-only, and uploaders probe past the pointer); readers
  see the older version until the next upload publishes again.

Keys under `.rlmlab/` are internal and hidden from `list()`, as in `FileStore`.
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
import uuid

from .errors import ObjectNotFound, PreconditionFailed, StoreError, TransientStoreError
from .stores import ObjectInfo, Store, _check_range, _etag

INSTALL_HINT = "modal:// stores need the modal package: pip install 'rlmlab[modal]'"
LOCK_TTL_S = 60.0  # far longer than one compare-and-swap (one read and one write)
_INTERNAL = ".rlmlab"


def _import_modal():
    try:
        import modal
        import modal.exception
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return modal


class ModalVolumeStore(Store):
    """A prefix of a Modal Volume. Credentials come from Modal's own config (`modal token new`
    or MODAL_TOKEN_ID / MODAL_TOKEN_SECRET); the environment from MODAL_ENVIRONMENT or
    `environment_name`. The Volume must exist unless `create_if_missing`: a typo in a
    reader's URI should fail, not open a new empty Volume."""

    remote = True

    lock_wait_s = 10.0  # how long `put_if_match` waits for another writer's lock

    def __init__(self, volume_name: str, prefix: str = "", *, environment_name: str | None = None,
                 create_if_missing: bool = False):
        modal = _import_modal()
        if not volume_name:
            raise ValueError("a modal:// URI needs a Volume name: modal://VOLUME/PREFIX")
        self.volume_name = volume_name
        self.prefix = prefix.strip("/")
        self.uri = f"modal://{volume_name}/{self.prefix}".rstrip("/")
        try:
            self._volume = modal.Volume.from_name(volume_name, environment_name=environment_name,
                                                  create_if_missing=create_if_missing)
        except modal.exception.InvalidError as e:
            raise ValueError(f"bad Modal Volume name in {self.uri!r}: {e}") from None
        self._hydrated = False
        self._hydrate_lock = threading.Lock()

    # -- paths ---------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        parts = key.split("/") if isinstance(key, str) else [""]
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == _INTERNAL:
            raise ValueError(f"invalid key {key!r} for {self.uri}: use relative '/'-separated names")
        return self._full(key)

    def _full(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _lock_path(self, key: str) -> str:
        return self._full(f"{_INTERNAL}/locks/{key}")

    def _volume_handle(self):
        """The Volume, hydrated once: a missing Volume is a clear error, not a missing key."""
        if not self._hydrated:
            with self._hydrate_lock, _ModalErrors(self.uri, {}, missing=f"no such Modal Volume {self.volume_name!r}"
                                                  f" (create it with `modal volume create {self.volume_name}`)"):
                if not self._hydrated:
                    self._volume.hydrate()
                    self._hydrated = True
        return self._volume

    def _errors(self, **where) -> "_ModalErrors":
        return _ModalErrors(self.uri, where)

    # -- Store API -----------------------------------------------------------------------

    def get(self, key, start=None, stop=None):
        """Bytes [start, stop) of the object; Modal has no ranged read, see the module docstring."""
        _check_range(start, stop)
        path = self._path(key)
        begin = start or 0
        if stop is not None and begin >= stop:
            if not self.exists(key):  # an empty range of a missing object is still an error
                raise ObjectNotFound("no such object", key=key, byte_range=(start, stop))
            return b""
        volume = self._volume_handle()
        kept = bytearray()
        offset = 0
        with self._errors(key=key, byte_range=(start, stop)):
            stream = volume.read_file(path)
            try:
                for chunk in stream:
                    end = offset + len(chunk)
                    if end > begin:
                        kept += chunk[max(0, begin - offset) : len(chunk) if stop is None else max(0, stop - offset)]
                    offset = end
                    if stop is not None and offset >= stop:
                        break
            finally:
                stream.close()
        return bytes(kept)

    def put(self, key, data, *, if_none_match=False):
        self._write(self._path(key), bytes(data), force=not if_none_match, key=key)

    def _write(self, path: str, data: bytes, *, force: bool, key: str) -> None:
        volume = self._volume_handle()
        with self._errors(key=key):
            with volume.batch_upload(force=force) as batch:
                batch.put_file(io.BytesIO(data), "/" + path)

    def exists(self, key):
        return self._entry(self._path(key), key) is not None

    def _entry(self, path: str, key: str):
        """The listing entry of the file at `path`, or None."""
        from modal.volume import FileEntryType

        volume = self._volume_handle()
        try:
            with self._errors(key=key):
                entries = volume.listdir("/" + path)
        except ObjectNotFound:
            return None
        for entry in entries:
            if entry.path.lstrip("/") == path and entry.type == FileEntryType.FILE:
                return entry
        return None

    def list_info(self, prefix=""):
        from modal.volume import FileEntryType

        directory = prefix.rpartition("/")[0]  # Modal lists directories: list the enclosing one, then filter
        root = self._full(directory) if directory else self.prefix
        volume = self._volume_handle()
        try:
            with self._errors(key=prefix or None):
                entries = volume.listdir("/" + root, recursive=True)
        except ObjectNotFound:
            return {}
        base = len(self.prefix) + 1 if self.prefix else 0
        found = {}
        for entry in entries:
            path = entry.path.lstrip("/")
            if entry.type != FileEntryType.FILE or (self.prefix and not path.startswith(self.prefix + "/")):
                continue
            key = path[base:]
            if key.startswith(prefix) and key.split("/", 1)[0] != _INTERNAL:
                found[key] = ObjectInfo(entry.size, float(entry.mtime))
        return found

    def delete(self, key):
        self._remove(self._path(key), key)

    def _remove(self, path: str, key: str) -> None:
        volume = self._volume_handle()
        try:
            with self._errors(key=key):
                volume.remove_file("/" + path)
        except ObjectNotFound:
            pass

    # -- compare-and-swap through a lock object (see the module docstring) ----------------

    def get_with_etag(self, key):
        data = self.get(key)
        return data, _etag(data)

    def put_if_match(self, key, data, etag):
        path = self._path(key)
        data = bytes(data)
        self._acquire(key)
        try:
            try:
                current = self.get(key)
            except ObjectNotFound:
                raise PreconditionFailed("object no longer exists", key=key) from None
            if _etag(current) != etag:
                raise PreconditionFailed("object changed since it was read (ETag mismatch)", key=key)
            self._write(path, data, force=True, key=key)
        finally:
            self._remove(self._lock_path(key), key)
        return _etag(data)

    def _acquire(self, key: str) -> None:
        """Create this key's lock object, waiting up to `lock_wait_s` for a live holder to finish.

        Waiting here, not in the caller, because a holder needs only one read and one write:
        callers that retry at once (upload's publish) would otherwise spin out their attempts.
        """
        lock = self._lock_path(key)
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self.lock_wait_s
        pause = 0.01
        while True:
            body = json.dumps({"owner": owner, "taken_at": time.time()}).encode()  # stamped when taken
            try:
                self._write(lock, body, force=False, key=key)
                return
            except PreconditionFailed:
                pass
            if self._lock_is_stale(lock, key):
                self._remove(lock, key)  # its holder died
                continue
            if time.monotonic() >= deadline:
                raise PreconditionFailed(f"another writer has been replacing this object for over {self.lock_wait_s} s", key=key)
            time.sleep(random.uniform(0, pause))
            pause = min(pause * 2, 0.5)

    def _lock_is_stale(self, lock: str, key: str) -> bool:
        volume = self._volume_handle()
        try:
            with self._errors(key=key):
                taken_at = json.loads(b"".join(volume.read_file(lock)))["taken_at"]
        except ObjectNotFound:
            return False  # released meanwhile
        except (ValueError, KeyError, TypeError):
            return True  # not a lock this module wrote: unusable, so break it
        return time.time() - float(taken_at) > LOCK_TTL_S


class _ModalErrors:
    """Context manager translating the modal client's exceptions to rlmlab's typed errors."""

    def __init__(self, uri: str, where: dict, missing: str | None = None):
        self.uri, self.where, self.missing = uri, where, missing

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, StoreError) or not isinstance(exc, Exception):
            return False
        raise self._translate(exc) from exc

    def _translate(self, exc: Exception) -> Exception:
        from modal import exception as mx

        where, text = self.where, f"{type(exc).__name__}: {exc}"
        if isinstance(exc, (FileNotFoundError, mx.NotFoundError)):
            if self.missing:
                return StoreError(f"{self.missing}: {exc}", **where)
            return ObjectNotFound("no such object", **where)
        if isinstance(exc, (FileExistsError, mx.AlreadyExistsError)):
            return PreconditionFailed("object exists", **where)
        if isinstance(exc, (mx.AuthError, mx.PermissionDeniedError)):
            return StoreError(f"Modal refused access to {self.uri} ({text}); run `modal token new` or set "
                              "MODAL_TOKEN_ID and MODAL_TOKEN_SECRET", **where)
        if isinstance(exc, mx.ResourceExhaustedError):
            return TransientStoreError(text, kind="slow_down", **where)
        if isinstance(exc, (mx.ServiceError, mx.InternalError, mx.InternalFailure)):
            return TransientStoreError(text, kind="server_error", **where)
        if isinstance(exc, (mx.TimeoutError, TimeoutError)):
            return TransientStoreError(text, kind="timeout", **where)
        if isinstance(exc, (mx.ConnectionError, ConnectionError, OSError)):
            return TransientStoreError(text, kind="connection", **where)
        return StoreError(text, **where)
