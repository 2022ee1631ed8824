"""Stores: bytes in, bytes out, nothing else.

A store knows keys, not text: no retries, caching or decoding happens here (those are
policies above it). Errors are translated to the typed errors of `rlmlab.errors`, so the
layer above can tell a retryable fault (`TransientStoreError`) from a final one.

`open_store(uri)` picks the implementation from the URI scheme: `mem://NAME`,
`file:///DIR`, `s3://BUCKET/PREFIX` (boto3 by default, `client="obstore"` as an option),
`modal://VOLUME/PREFIX` (a Modal Volume, `stores_modal.py`, with the optional `modal` extra).

Transient errors carry a `kind`: "server_error" (5xx), "slow_down" (503 SlowDown),
"reset" (connection dropped mid-response), "timeout", "connection" (could not connect) and
"short_read" (a body shorter than its headers promised).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
import re
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

from .errors import ObjectNotFound, PreconditionFailed, StoreError, TransientStoreError


class ObjectInfo(NamedTuple):
    size: int  # bytes
    modified: float  # when it was last written, seconds since the epoch


class Store(ABC):
    """An object store rooted at a prefix. Keys are relative to that prefix."""

    uri: str
    remote = False  # reached over a network, where slow responses make hedged GETs worth their cost

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
    def list_info(self, prefix: str = "") -> dict[str, "ObjectInfo"]:
        """Keys under `prefix` (relative to the store's root) with their size and modification time."""

    def list(self, prefix: str = "") -> dict[str, int]:
        """Keys under `prefix` (relative to the store's root) with their sizes in bytes."""
        return {key: info.size for key, info in self.list_info(prefix).items()}

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; removing a missing one is not an error."""

    # Optimistic concurrency for mutable objects (manifest versions): read an object with
    # its ETag, then replace it only if nobody else did in between.

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        """The whole object and its ETag (an opaque version string)."""
        raise NotImplementedError(f"{type(self).__name__} has no conditional replace")

    def put_if_match(self, key: str, data: bytes, etag: str) -> str:
        """Replace the object only if its ETag is still `etag`, else raise `PreconditionFailed`.

        Returns the new ETag.
        """
        raise NotImplementedError(f"{type(self).__name__} has no conditional replace")


class MemoryStore(Store):
    """A process-local store; `mem://NAME` names one shared by every opener in the process."""

    _named: dict[str, dict[str, bytes]] = {}
    _named_modified: dict[str, dict[str, float]] = {}
    _named_lock = threading.Lock()

    def __init__(self, name: str = ""):
        self.uri = f"mem://{name}"
        with self._named_lock:
            self._objects = self._named.setdefault(name, {})
            self._modified = self._named_modified.setdefault(name, {})
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
            self._modified[key] = time.time()

    def exists(self, key):
        return key in self._objects

    def list_info(self, prefix=""):
        modified = self._modified
        return {k: ObjectInfo(len(v), modified.get(k, 0.0)) for k, v in list(self._objects.items()) if k.startswith(prefix)}

    def delete(self, key):
        with self._lock:
            self._objects.pop(key, None)
            self._modified.pop(key, None)

    def get_with_etag(self, key):
        data = self.get(key)
        return data, _etag(data)

    def put_if_match(self, key, data, etag):
        with self._lock:
            current = self._objects.get(key)
            if current is None or _etag(current) != etag:
                raise PreconditionFailed("object changed since it was read (ETag mismatch)", key=key)
            self._objects[key] = bytes(data)
            self._modified[key] = time.time()
            return _etag(data)


def _etag(data: bytes) -> str:
    """An ETag for a local object: the quoted MD5 of its bytes, as S3 gives for simple PUTs."""
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


def _check_range(start: int | None, stop: int | None) -> None:
    if (start is not None and start < 0) or (stop is not None and stop < 0):
        raise ValueError(f"byte range must be non-negative, got start={start}, stop={stop}")


# --------------------------------------------------------------------------- file://


class FileStore(Store):
    """A directory as a store. Writes are atomic: a reader sees the old object or the new one.

    Temporary files live in `ROOT/.rlmlab/`, on the same filesystem, so the final
    `os.replace` / `os.link` is atomic; that directory is not part of the key space.
    """

    _internal = ".rlmlab"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.uri = f"file://{self.root}"
        self._tmp_dir = self.root / self._internal
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == self._internal:
            raise ValueError(f"invalid key {key!r} for {self.uri}: use relative '/'-separated names")
        return self.root.joinpath(*parts)

    def get(self, key, start=None, stop=None):
        _check_range(start, stop)
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                if start:
                    f.seek(start)
                if stop is None:
                    return f.read()
                return f.read(max(0, stop - (start or 0)))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound("no such object", key=key, byte_range=(start, stop)) from None

    def _write_temp(self, data: bytes) -> str:
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp_dir, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    def put(self, key, data, *, if_none_match=False):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._write_temp(bytes(data))
        try:
            if if_none_match:
                try:
                    os.link(tmp, path)  # fails atomically if the target exists
                except FileExistsError:
                    raise PreconditionFailed("object exists", key=key) from None
            else:
                os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def exists(self, key):
        return self._path(key).is_file()

    def list_info(self, prefix=""):
        found = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root and self._internal in dirnames:
                dirnames.remove(self._internal)
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    try:
                        stat = os.stat(os.path.join(dirpath, name))
                    except FileNotFoundError:  # deleted while we walked
                        continue
                    found[key] = ObjectInfo(stat.st_size, stat.st_mtime)
        return found

    def delete(self, key):
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def get_with_etag(self, key):
        data = self.get(key)
        return data, _etag(data)

    def put_if_match(self, key, data, etag):
        # The lock makes compare-and-swap atomic among this process's writers; other
        # processes writing the same file need a real object store.
        with self._lock:
            try:
                _, current = self.get_with_etag(key)
            except ObjectNotFound:
                raise PreconditionFailed("object no longer exists", key=key) from None
            if current != etag:
                raise PreconditionFailed("object changed since it was read (ETag mismatch)", key=key)
            self.put(key, data)
        return _etag(bytes(data))


# --------------------------------------------------------------------------- s3:// (shared)


def _is_loopback(endpoint_url: str | None) -> bool:
    if not endpoint_url:
        return False
    host = urlparse(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _resolve_endpoint(endpoint_url: str | None) -> str | None:
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _loopback_credentials(endpoint_url: str | None) -> dict | None:
    """Credentials for a loopback endpoint: the configured ones, else dummies (the embedded
    server accepts any). None for remote endpoints: the client's own chain decides there."""
    if not _is_loopback(endpoint_url):
        return None
    import botocore.session

    session = botocore.session.get_session()
    resolver = session.get_component("credential_provider")
    for provider in ("iam-role", "container-role"):  # no metadata-service probes for a local server
        resolver.remove(provider)
    creds = session.get_credentials()
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        return {"key": frozen.access_key, "secret": frozen.secret_key, "token": frozen.token}
    from .sim import DUMMY_CREDENTIALS

    return {"key": DUMMY_CREDENTIALS["aws_access_key_id"], "secret": DUMMY_CREDENTIALS["aws_secret_access_key"], "token": None}


def _region(endpoint_url: str | None) -> str | None:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return region or ("us-east-1" if endpoint_url else None)


def _expected_length(start: int | None, stop: int | None, total: int) -> int:
    begin = start or 0
    end = total if stop is None else min(stop, total)
    return max(0, end - begin)


class _PrefixedKeys:
    """Maps store keys to object keys under a bucket prefix, and back."""

    def __init__(self, prefix: str):
        self.prefix = prefix.strip("/")

    def full(self, key: str) -> str:
        if not key or key.startswith("/"):
            raise ValueError(f"invalid key {key!r}: use a relative '/'-separated name")
        return f"{self.prefix}/{key}" if self.prefix else key

    def relative(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key


# --------------------------------------------------------------------------- s3:// with boto3


@functools.lru_cache(maxsize=16)
def _boto3_client(endpoint_url, region_name, max_pool_connections, connect_timeout, read_timeout, credentials):
    """One boto3 client per configuration, shared by every store in the process.

    Creating a client costs about 50 ms of CPU (botocore loads the S3 service model),
    as much as a GET; clients are thread-safe, so every `open_context` reuses one.
    Credentials from the default chain are resolved when the client is first made.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        max_pool_connections=max_pool_connections,
        retries={"total_max_attempts": 1},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": "path"} if endpoint_url else None,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    keys = {}
    if credentials:
        keys = dict(zip(("aws_access_key_id", "aws_secret_access_key", "aws_session_token"), credentials))
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region_name, config=config, **keys)


class S3Store(Store):
    """An S3 (or R2, or embedded moto) prefix through boto3.

    botocore's own retries are off: retries, with tracing, happen in the layer above, and a
    hidden retry would make GET latencies lie. The connection pool is sized for the workers
    (botocore's default of 10 would queue parallel GETs behind it, GUIDE §3).
    """

    remote = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        max_connections: int = 64,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        region_name: str | None = None,
    ):
        if not bucket:
            raise ValueError("S3Store needs a bucket name")
        self.bucket = bucket
        self._keys = _PrefixedKeys(prefix)
        self.endpoint_url = _resolve_endpoint(endpoint_url)
        self.uri = f"s3://{bucket}/{self._keys.prefix}".rstrip("/")
        creds = _loopback_credentials(self.endpoint_url)
        self._client = _boto3_client(
            self.endpoint_url,
            region_name or _region(self.endpoint_url),
            max(10, max_connections),
            connect_timeout,
            read_timeout,
            (creds["key"], creds["secret"], creds["token"]) if creds else None,
        )

    def get(self, key, start=None, stop=None):
        import botocore.exceptions

        _check_range(start, stop)
        full = self._keys.full(key)
        where = {"key": key, "byte_range": (start, stop)}
        if stop is not None and (start or 0) >= stop:
            self._head(key)  # an empty range of a missing object is still an error
            return b""
        kwargs = {}
        if start or stop is not None:
            kwargs["Range"] = f"bytes={start or 0}-" + ("" if stop is None else str(stop - 1))
        with self._translated(**where):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=full, **kwargs)
            except botocore.exceptions.ClientError as e:
                if e.response.get("Error", {}).get("Code") == "InvalidRange":
                    return b""  # the range starts past the end: empty, as slicing gives
                raise
            body = response["Body"].read()
        if response["ResponseMetadata"]["HTTPStatusCode"] == 200 and kwargs:
            body = body[start or 0 : stop]  # a server that ignored Range sent everything
        elif "ContentRange" in response:
            total = int(response["ContentRange"].rpartition("/")[2])
            if len(body) != _expected_length(start, stop, total):
                raise TransientStoreError(f"short read: got {len(body)} bytes", kind="short_read", **where)
        elif len(body) != response.get("ContentLength", len(body)):
            raise TransientStoreError(f"short read: got {len(body)} bytes", kind="short_read", **where)
        return body

    def _head(self, key: str) -> dict:
        with self._translated(key=key):
            return self._client.head_object(Bucket=self.bucket, Key=self._keys.full(key))

    def put(self, key, data, *, if_none_match=False):
        self._put(key, data, **({"IfNoneMatch": "*"} if if_none_match else {}))

    def _put(self, key: str, data: bytes, **conditions) -> str:
        with self._translated(key=key):
            response = self._client.put_object(Bucket=self.bucket, Key=self._keys.full(key), Body=bytes(data), **conditions)
        return response.get("ETag", "")

    def exists(self, key):
        try:
            self._head(key)
        except ObjectNotFound:
            return False
        return True

    def list_info(self, prefix=""):
        found = {}
        full_prefix = self._keys.full(prefix) if prefix else (self._keys.prefix + "/" if self._keys.prefix else "")
        with self._translated(key=prefix or None):
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full_prefix):
                for obj in page.get("Contents", []):
                    found[self._keys.relative(obj["Key"])] = ObjectInfo(obj["Size"], obj["LastModified"].timestamp())
        return found

    def delete(self, key):
        with self._translated(key=key):
            self._client.delete_object(Bucket=self.bucket, Key=self._keys.full(key))

    def get_with_etag(self, key):
        with self._translated(key=key):
            response = self._client.get_object(Bucket=self.bucket, Key=self._keys.full(key))
            body = response["Body"].read()
        return body, response["ETag"]

    def put_if_match(self, key, data, etag):
        return self._put(key, data, IfMatch=etag)

    def _translated(self, **where):
        return _BotoErrors(self.bucket, where)


class _BotoErrors:
    """Context manager translating botocore/urllib3 errors to rlmlab's typed errors."""

    def __init__(self, bucket: str, where: dict):
        self.bucket, self.where = bucket, where

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, StoreError) or not isinstance(exc, Exception):
            return False
        raise _translate_boto_error(exc, self.bucket, self.where) from exc


def _translate_boto_error(exc: Exception, bucket: str, where: dict) -> Exception:
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = f"{code or status}: {error.get('Message', '')}".rstrip(": ")
        if code == "NoSuchBucket":
            return StoreError(f"no such bucket {bucket!r}", **where)
        if status == 404 or code in ("NoSuchKey", "NotFound", "404"):
            return ObjectNotFound("no such object", **where)
        if status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict"):
            return PreconditionFailed(f"conditional write lost ({message})", **where)
        if code in ("SlowDown", "503") or status == 503:
            return TransientStoreError(message, kind="slow_down", **where)
        if status >= 500 or code in ("InternalError", "ServiceUnavailable"):
            return TransientStoreError(message, kind="server_error", **where)
        if code in ("RequestTimeout", "RequestTimeoutException"):
            return TransientStoreError(message, kind="timeout", **where)
        return StoreError(message, **where)
    kind = _network_error_kind(exc)
    if kind:
        return TransientStoreError(f"{type(exc).__name__}: {exc}", kind=kind, **where)
    return StoreError(f"{type(exc).__name__}: {exc}", **where)


def _network_error_kind(exc: Exception) -> str | None:
    from botocore import exceptions as bx

    if isinstance(exc, bx.IncompleteReadError):
        return "short_read"
    if isinstance(exc, (bx.ReadTimeoutError, bx.ConnectTimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, (bx.ResponseStreamingError, bx.ConnectionClosedError, ConnectionResetError)):
        return "reset"
    if isinstance(exc, (bx.EndpointConnectionError, ConnectionError)):
        return "connection"
    if isinstance(exc, bx.HTTPClientError):
        return "reset"
    return None


# --------------------------------------------------------------------------- s3:// with obstore


class ObstoreStore(Store):
    """The same S3 prefix through obstore (Rust object_store): far less client CPU per GET.

    obstore's retries are off for the same reason as botocore's.
    """

    remote = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        max_connections: int = 64,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        region_name: str | None = None,
    ):
        from datetime import timedelta

        try:
            from obstore.store import S3Store as _ObstoreS3
        except ImportError:
            raise ImportError("client='obstore' needs the obstore package: pip install 'rlmlab[obstore]'") from None

        if not bucket:
            raise ValueError("ObstoreStore needs a bucket name")
        self.bucket = bucket
        self._keys = _PrefixedKeys(prefix)
        self.endpoint_url = _resolve_endpoint(endpoint_url)
        self.uri = f"s3://{bucket}/{self._keys.prefix}".rstrip("/")
        config: dict = {}
        region = region_name or _region(self.endpoint_url)
        if region:
            config["region"] = region
        if self.endpoint_url:
            config["endpoint"] = self.endpoint_url
            config["virtual_hosted_style_request"] = False
        creds = _loopback_credentials(self.endpoint_url)
        if creds:
            config["access_key_id"], config["secret_access_key"] = creds["key"], creds["secret"]
            if creds["token"]:
                config["session_token"] = creds["token"]
        client_options = {
            "pool_max_idle_per_host": str(max_connections),
            "connect_timeout": f"{connect_timeout}s",
            "timeout": f"{read_timeout}s",
            "allow_http": bool(self.endpoint_url and self.endpoint_url.startswith("http://")),
        }
        self._store = _ObstoreS3(
            bucket,
            config=config,
            client_options=client_options,
            retry_config={"max_retries": 0, "retry_timeout": timedelta(0)},
        )

    def get(self, key, start=None, stop=None):
        import obstore

        _check_range(start, stop)
        full = self._keys.full(key)
        where = {"key": key, "byte_range": (start, stop)}
        if stop is not None and (start or 0) >= stop:
            self._head(key)
            return b""
        options = {}
        if start or stop is not None:
            options["range"] = {"offset": start} if stop is None else (start or 0, stop)
        with _ObstoreErrors(self.bucket, where) as guard:
            result = obstore.get(self._store, full, options=options or None)
            body = bytes(result.bytes())
        if guard.empty_range:
            return b""
        expected = _expected_length(start, stop, result.meta["size"])
        if len(body) != expected:
            raise TransientStoreError(f"short read: got {len(body)} of {expected} bytes", kind="short_read", **where)
        return body

    def _head(self, key: str) -> dict:
        import obstore

        with _ObstoreErrors(self.bucket, {"key": key}):
            return obstore.head(self._store, self._keys.full(key))

    def put(self, key, data, *, if_none_match=False):
        self._put(key, data, mode="create" if if_none_match else "overwrite")

    def _put(self, key: str, data: bytes, mode) -> str:
        import obstore

        with _ObstoreErrors(self.bucket, {"key": key}):
            result = obstore.put(self._store, self._keys.full(key), bytes(data), mode=mode)
        return result.get("e_tag") or ""

    def exists(self, key):
        try:
            self._head(key)
        except ObjectNotFound:
            return False
        return True

    def list_info(self, prefix=""):
        import obstore

        # object_store lists by path segments; list the enclosing "directory", then filter.
        directory = prefix.rpartition("/")[0]
        found = {}
        with _ObstoreErrors(self.bucket, {"key": prefix or None}):
            full_dir = self._keys.full(directory) if directory else (self._keys.prefix or None)
            for batch in obstore.list(self._store, prefix=full_dir):
                for meta in batch:
                    key = self._keys.relative(meta["path"])
                    if key.startswith(prefix):
                        found[key] = ObjectInfo(meta["size"], meta["last_modified"].timestamp())
        return found

    def delete(self, key):
        import obstore

        with _ObstoreErrors(self.bucket, {"key": key}):
            obstore.delete(self._store, self._keys.full(key))

    def get_with_etag(self, key):
        import obstore

        with _ObstoreErrors(self.bucket, {"key": key}):
            result = obstore.get(self._store, self._keys.full(key))
            body = bytes(result.bytes())
        return body, result.meta["e_tag"] or ""

    def put_if_match(self, key, data, etag):
        return self._put(key, data, mode={"e_tag": etag})


_STATUS_RE = re.compile(r"status(?: code)?:? (\d{3})")


class _ObstoreErrors:
    """Context manager translating obstore's exceptions (which carry the HTTP status in text)."""

    def __init__(self, bucket: str, where: dict):
        self.bucket, self.where = bucket, where
        self.empty_range = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, StoreError) or not isinstance(exc, Exception):
            return False
        translated = self._translate(exc)
        if translated is None:
            self.empty_range = True
            return True
        raise translated from exc

    def _translate(self, exc: Exception) -> Exception | None:
        from obstore import exceptions as ox

        where, text = self.where, str(exc)
        if isinstance(exc, (FileNotFoundError, ox.NotFoundError)):
            return ObjectNotFound("no such object", **where)
        if isinstance(exc, (FileExistsError, ox.AlreadyExistsError, ox.PreconditionError)):
            return PreconditionFailed("conditional write lost", **where)
        summary = text.split("\n\nDebug source", 1)[0]
        match = _STATUS_RE.search(text)
        status = int(match.group(1)) if match else 0
        if status == 416:
            return None  # the range starts past the end: empty, as slicing gives
        if "NoSuchBucket" in text:
            return StoreError(f"no such bucket {self.bucket!r}", **where)
        if status in (409, 412):
            return PreconditionFailed(f"conditional write lost ({summary})", **where)
        if status == 503 or "SlowDown" in text:
            return TransientStoreError(summary, kind="slow_down", **where)
        if status >= 500:
            return TransientStoreError(summary, kind="server_error", **where)
        if "kind: Timeout" in text or "timed out" in text:
            return TransientStoreError(summary, kind="timeout", **where)
        if "ConnectionReset" in text or "kind: Body" in text or "Interrupted" in text:
            return TransientStoreError(summary, kind="reset", **where)
        if "error sending request" in text or "Connect" in text:
            return TransientStoreError(summary, kind="connection", **where)
        return StoreError(summary, **where)


# --------------------------------------------------------------------------- URIs


@dataclass(frozen=True)
class StoreURI:
    """A parsed store URI: `scheme` plus `location` (mem name, directory, or bucket) and `prefix`."""

    scheme: str
    location: str
    prefix: str = ""


CLIENTS = ("boto3", "obstore")


def parse_store_uri(uri: str) -> StoreURI:
    """Parse `mem://NAME`, `file:///DIR`, `s3://BUCKET/PREFIX` or `modal://VOLUME/PREFIX`;
    ValueError names a bad URI."""
    if not isinstance(uri, str):
        raise TypeError(f"store URI must be a str, got {type(uri).__name__}")
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "mem":
        return StoreURI("mem", (parsed.netloc + parsed.path).strip("/"))
    if scheme == "file":
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise ValueError(f"bad file URI {uri!r}: use file:///ABSOLUTE/DIR")
        return StoreURI("file", parsed.path)
    if scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"bad S3 URI {uri!r}: use s3://BUCKET/PREFIX")
        return StoreURI("s3", parsed.netloc, parsed.path.strip("/"))
    if scheme == "modal":
        if not parsed.netloc:
            raise ValueError(f"bad Modal URI {uri!r}: use modal://VOLUME/PREFIX")
        return StoreURI("modal", parsed.netloc, parsed.path.strip("/"))
    raise ValueError(f"unsupported store URI {uri!r}: use mem://NAME, file:///DIR, s3://BUCKET/PREFIX or modal://VOLUME/PREFIX")


def open_store(
    uri: str,
    *,
    endpoint_url: str | None = None,
    client: str = "boto3",
    max_connections: int = 64,
    read_timeout: float = 60,
) -> Store:
    """The store for a URI. For s3://, `client` picks boto3 or obstore; the endpoint comes
    from `endpoint_url` or AWS_ENDPOINT_URL (Cloudflare R2 and the embedded server alike).
    `read_timeout` (seconds) bounds a stalled S3 response; it then fails as kind "timeout".
    The S3 options are ignored for modal://, which uses Modal's own configuration."""
    where = parse_store_uri(uri)
    if where.scheme == "mem":
        return MemoryStore(where.location)
    if where.scheme == "file":
        return FileStore(where.location)
    if where.scheme == "modal":
        from .stores_modal import ModalVolumeStore

        return ModalVolumeStore(where.location, where.prefix)
    options = {"endpoint_url": endpoint_url, "max_connections": max_connections, "read_timeout": read_timeout}
    if client == "boto3":
        return S3Store(where.location, where.prefix, **options)
    if client == "obstore":
        return ObstoreStore(where.location, where.prefix, **options)
    raise ValueError(f"unknown S3 client {client!r} for {uri!r}: choose one of {CLIENTS}")
