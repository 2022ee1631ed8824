"""modal://VOLUME/PREFIX: what is particular to Modal (blocks, locks, its errors) and an upload
round trip, against the FAKE Volume of `tests/fake_modal.py`. The store contract every store
meets is tested in test_stores.py, where the Modal store takes part too.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time

import pytest

from rlmlab.context import open_context
from rlmlab.errors import ObjectNotFound, PreconditionFailed, StoreError, TransientStoreError
from rlmlab.stores import open_store, parse_store_uri
from rlmlab.stores_modal import LOCK_TTL_S, ModalVolumeStore
from rlmlab.transcripts import Identity, Message, Session
from rlmlab.transcripts.upload import session_index, upload_sessions

try:
    import modal
    from modal import exception as mx
except ImportError:
    modal = None


@pytest.fixture
def fake(fake_modal):
    return fake_modal


@pytest.fixture
def store(fake):
    return open_store("modal://team/ctx")


def test_ranges_across_stream_blocks(store, fake):
    fake.block_size = 100  # several blocks per object, so ranges cross block boundaries
    data = bytes(range(256)) * 4
    store.put("a/one.bin", data)
    assert fake.volumes["team"]["ctx/a/one.bin"] == data
    for start, stop in [(10, 20), (95, 205), (1000, None), (None, 5), (1020, 5000), (5000, 6000), (7, 7), (300, 301)]:
        assert store.get("a/one.bin", start, stop) == data[start:stop], (start, stop)
    assert not store.exists("a") and not store.exists("a/one.bin/x")  # a directory is not an object


def test_a_range_stops_streaming_at_its_end(store, fake):
    fake.block_size = 10
    store.put("big.bin", bytes(1000))
    fake.bytes_streamed = 0
    assert store.get("big.bin", 0, 25) == bytes(25)
    assert fake.bytes_streamed == 30  # three blocks of ten, not the whole object


def test_keys_outside_the_prefix_and_lock_keys_are_refused(store):
    with pytest.raises(ValueError, match="invalid key"):
        store.get("../escape")
    with pytest.raises(ValueError, match="invalid key"):
        store.put(".rlmlab/locks/x", b"")


def test_compare_and_swap_leaves_no_lock_behind(store, fake):
    store.put("m.json", b"v1")
    _, etag = store.get_with_etag("m.json")
    store.put_if_match("m.json", b"v2", etag)
    with pytest.raises(PreconditionFailed, match="no longer exists"):
        store.put_if_match("gone.json", b"x", etag)
    assert store.list() == {"m.json": 2}  # locks were released and are never listed
    assert not any(".rlmlab" in p for p in fake.volumes["team"])


def test_compare_and_swap_race_has_exactly_one_winner(store, fake):
    fake.latency_s = 0.001
    store.put("m.json", b"v0")
    _, etag = store.get_with_etag("m.json")
    barrier = threading.Barrier(6)
    wins, losses = [], []

    def writer(i):
        barrier.wait()
        try:
            store.put_if_match("m.json", f"w{i}".encode(), etag)
            wins.append(i)
        except PreconditionFailed:
            losses.append(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 5
    assert store.get("m.json") == f"w{wins[0]}".encode()


def test_a_held_lock_makes_writers_wait_then_refuse_and_a_stale_one_is_broken(store, fake):
    store.put("m.json", b"v1")
    _, etag = store.get_with_etag("m.json")
    lock_path = "ctx/.rlmlab/locks/m.json"
    fake.volumes["team"][lock_path] = json.dumps({"owner": "other", "taken_at": time.time()}).encode()
    store.lock_wait_s = 0.05
    with pytest.raises(PreconditionFailed, match="another writer"):
        store.put_if_match("m.json", b"v2", etag)
    assert store.get("m.json") == b"v1"

    store.lock_wait_s = 30
    release = threading.Timer(0.1, lambda: fake.volumes["team"].pop(lock_path))
    release.start()
    store.put_if_match("m.json", b"v2", etag)  # waited for the holder to let go
    release.join()
    assert store.get("m.json") == b"v2"

    fake.volumes["team"][lock_path] = json.dumps({"owner": "crashed", "taken_at": time.time() - LOCK_TTL_S - 1}).encode()
    _, etag = store.get_with_etag("m.json")
    store.put_if_match("m.json", b"v3", etag)  # a crashed holder's lock is broken, not waited for
    assert store.get("m.json") == b"v3"
    assert lock_path not in fake.volumes["team"]


def test_modal_errors_become_typed_errors(store, fake):
    store.put("k", b"data")
    fake.faults.append(mx.ConnectionError("Could not connect to the Modal server."))
    with pytest.raises(TransientStoreError, match="Could not connect") as caught:
        store.get("k")
    assert caught.value.kind == "connection"
    fake.faults.append(mx.ServiceError("Service temporarily unavailable"))
    with pytest.raises(TransientStoreError) as caught:
        store.put("k", b"x")
    assert caught.value.kind == "server_error"
    fake.faults.append(mx.AuthError("Token missing"))
    with pytest.raises(StoreError, match="modal token new"):
        store.list()
    assert store.get("k") == b"data"  # faults changed nothing


def test_a_missing_volume_is_a_clear_error_not_a_missing_key(fake):
    store = open_store("modal://no-such-volume/p")
    with pytest.raises(StoreError, match="no such Modal Volume 'no-such-volume'.*modal volume create") as caught:
        store.get("manifest.json")
    assert not isinstance(caught.value, ObjectNotFound)
    created = ModalVolumeStore("fresh", "p", create_if_missing=True)
    created.put("x", b"1")
    assert fake.volumes["fresh"] == {"p/x": b"1"}


def test_uri_parsing(fake):
    where = parse_store_uri("modal://team/a/b/")
    assert (where.scheme, where.location, where.prefix) == ("modal", "team", "a/b")
    with pytest.raises(ValueError, match="modal://VOLUME/PREFIX"):
        open_store("modal:///nameless")
    with pytest.raises(ValueError, match="bad Modal Volume name"):
        open_store("modal://bad name!/p")
    assert open_store("modal://team").uri == "modal://team"


def _session(dev: str, n: int) -> Session:
    return Session(
        session_id=f"{dev}-{n:03d}",
        identity=Identity(developer=dev, email=f"{dev}@example.com"),
        project_dir=f"/home/{dev}/app",
        git_branch="main",
        claude_version="2.1.42",
        messages=[
            Message("USER", f"2026-01-01T10:{n:02d}:00.000Z", f"{dev} asks question {n}"),
            Message("ASSISTANT", f"2026-01-01T10:{n:02d}:05.000Z", f"answer {n} for {dev}"),
        ],
    )


def test_upload_sessions_round_trip_through_modal(fake):
    uri = "modal://team/transcripts"
    first = upload_sessions([_session("ana", i) for i in range(3)], uri)
    second = upload_sessions([_session("bo", 0), _session("ana", 1)], uri)  # ana-001 again: unchanged
    assert (first.version, second.version) == (1, 2)
    assert second.added == ["bo-000"] and second.unchanged == ["ana-001"]
    index = session_index(uri)
    assert [r.session_id for r in index] == ["ana-000", "ana-001", "ana-002", "bo-000"]
    context = open_context(uri)
    assert index[-1].char_offset + index[-1].char_length == len(context)
    assert "bo asks question 0" in context[index[-1].char_offset :]


def test_racing_uploaders_lose_nothing_on_modal(fake):
    fake.latency_s = 0.0005
    uri = "modal://team/race"
    barrier = threading.Barrier(4)
    errors = []

    def uploader(dev):
        barrier.wait()
        try:
            for i in range(3):
                upload_sessions([_session(dev, i)], open_store(uri))
        except Exception as e:  # surfaced by the assertion below, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=uploader, args=(f"dev{d}",)) for d in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.session_id for r in session_index(uri)) == sorted(f"dev{d}-{i:03d}" for d in range(4) for i in range(3))
    assert json.loads(open_store(uri).get("manifest.json"))["extra"]["transcripts"]["version"] == 12


def test_without_the_modal_package_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "modal", None)  # what `import modal` sees when it is not installed
    with pytest.raises(ImportError, match=re.escape("pip install 'rlmlab[modal]'")):
        open_store("modal://team/p")
