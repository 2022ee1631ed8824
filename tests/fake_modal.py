"""A FAKE `modal.Volume` for tests: Modal is unreachable from here.

It implements exactly the methods `ModalVolumeStore` calls, with the behaviour modal 1.6's
`modal/volume.py` shows — `read_file` streams blocks and raises FileNotFoundError for a
missing path, `batch_upload(force=False)` raises FileExistsError on an existing path and then
writes none of the batch (one VolumePutFiles request), `listdir` returns `FileEntry`s with
paths relative to the Volume root, `remove_file` raises FileNotFoundError, a missing Volume
fails at hydration with NotFoundError. What it assumes and the docs do not say: the server's
create-only check is atomic (the fake's lock), and listing a missing path raises NotFoundError.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from pathlib import PurePosixPath

import pytest

try:  # the fake mirrors the installed client's exception and entry types
    import modal
    from modal import exception as mx
    from modal._utils.name_utils import check_object_name
    from modal.volume import FileEntry, FileEntryType
except ImportError:
    modal = None


class FakeVolume:
    """FAKE `modal.Volume` (see the module docstring): files live in a dict shared by name."""

    def __init__(self, backend: "FakeModal", name: str, create_if_missing: bool):
        self.backend, self.name, self.create_if_missing = backend, name, create_if_missing

    def _files(self) -> dict[str, bytes]:
        self.backend.maybe_fail()
        try:
            return self.backend.volumes[self.name]
        except KeyError:
            raise mx.NotFoundError(f"Volume '{self.name}' not found in environment 'main'") from None

    def hydrate(self):
        if self.create_if_missing:
            self.backend.volumes.setdefault(self.name, {})
        self._files()
        return self

    def read_file(self, path: str):
        files = self._files()
        path = path.lstrip("/")
        if path not in files:
            raise FileNotFoundError(f"No such file: {path}")
        data = files[path]
        for i in range(0, len(data), self.backend.block_size):
            self.backend.bytes_streamed += min(self.backend.block_size, len(data) - i)
            yield data[i : i + self.backend.block_size]

    @contextlib.contextmanager
    def batch_upload(self, force: bool = False):
        files = self._files()
        batch = _FakeBatch()
        yield batch
        with self.backend.lock:  # the server's check-and-write, assumed atomic
            uploads = {path: fp.getvalue() for fp, path in batch.files}
            if not force and any(p in files for p in uploads):
                raise FileExistsError(f"Files already exist: {sorted(p for p in uploads if p in files)}")
            files.update(uploads)

    def listdir(self, path: str, *, recursive: bool = False) -> list:
        files = self._files()
        path = path.strip("/")
        if path in files:
            return [FileEntry(path, FileEntryType.FILE, 0, len(files[path]))]
        under = {p: d for p, d in files.items() if not path or p.startswith(path + "/")}
        if path and not under:
            raise mx.NotFoundError(f"No such file or directory: {path}")
        entries = {}
        for p, d in under.items():
            rest = PurePosixPath(p).relative_to(path) if path else PurePosixPath(p)
            for depth in range(1, len(rest.parts) + 1 if recursive else 2):
                child = PurePosixPath(path, *rest.parts[:depth]).as_posix() if path else PurePosixPath(*rest.parts[:depth]).as_posix()
                is_file = depth == len(rest.parts)
                entries[child] = FileEntry(child, FileEntryType.FILE if is_file else FileEntryType.DIRECTORY, 0, len(d) if is_file else 0)
        return list(entries.values())

    def remove_file(self, path: str, recursive: bool = False) -> None:
        files = self._files()
        with self.backend.lock:
            if files.pop(path.lstrip("/"), None) is None:
                raise FileNotFoundError(f"No such file: {path}")


class _FakeBatch:
    def __init__(self):
        self.files: list[tuple[io.BytesIO, str]] = []

    def put_file(self, local_file, remote_path, mode=None):
        remote_path = PurePosixPath(remote_path).as_posix()
        if remote_path.endswith("/"):
            raise ValueError(f"remote_path ({remote_path}) must refer to a file - cannot end with /")
        self.files.append((local_file, remote_path.lstrip("/")))


class FakeModal:
    """The fake's 'server': volumes by name, a block size, and injectable faults."""

    def __init__(self):
        self.volumes: dict[str, dict[str, bytes]] = {}
        self.lock = threading.Lock()
        self.block_size = 8 * 1024 * 1024
        self.bytes_streamed = 0
        self.faults: list[Exception] = []
        self.latency_s = 0.0  # per call, so racing threads interleave as they would over a network

    def maybe_fail(self):
        if self.latency_s:
            time.sleep(self.latency_s)
        if self.faults:
            raise self.faults.pop(0)

    def from_name(self, name, *, environment_name=None, create_if_missing=False, **_):
        check_object_name(name, "Volume")
        return FakeVolume(self, name, create_if_missing)


@pytest.fixture
def fake_modal(monkeypatch):
    if modal is None:
        pytest.skip("the modal client is not installed: pip install 'rlmlab[modal]'")
    backend = FakeModal()
    backend.volumes["team"] = {}
    monkeypatch.setattr(modal.Volume, "from_name", backend.from_name)
    return backend
