"""Stores: round trips, ranged reads, conditional writes and typed errors on every backend."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest

from rlmlab.errors import ObjectNotFound, PreconditionFailed, StoreError, TransientStoreError
from rlmlab.stores import FileStore, MemoryStore, ObstoreStore, S3Store, open_store, parse_store_uri

KINDS = ["mem", "file", "s3-boto3", "s3-obstore", "modal-fake"]


@pytest.fixture(params=KINDS)
def store(request, tmp_path):
    kind = request.param
    if kind == "mem":
        return open_store(f"mem://stores-{uuid.uuid4().hex}")
    if kind == "file":
        return open_store(f"file://{tmp_path}/store")
    if kind == "modal-fake":  # a fake Volume (tests/fake_modal.py): Modal is unreachable here
        request.getfixturevalue("fake_modal")
        return open_store("modal://team/ctx")
    server = request.getfixturevalue("s3_server")
    uri = request.getfixturevalue("s3_uri")
    client = kind.split("-")[1]
    return open_store(uri, endpoint_url=server.endpoint_url, client=client)


def test_listing_tells_when_each_object_was_written(store, request):
    if request.node.callspec.params["store"] == "modal-fake":
        pytest.skip("the fake Volume reports no modification times")
    before = time.time()
    store.put("dated/one.txt", b"12345")
    after = time.time()
    info = store.list_info("dated/")["dated/one.txt"]
    assert info.size == 5
    assert before - 2 <= info.modified <= after + 2  # S3's LastModified has whole seconds


def test_round_trip_ranges_and_listing(store):
    data = bytes(range(256)) * 4
    store.put("a/one.bin", data)
    store.put("a/two.bin", b"xy")
    store.put("b.bin", b"")
    assert store.get("a/one.bin") == data
    assert store.get("a/one.bin", 10, 20) == data[10:20]
    assert store.get("a/one.bin", 1000) == data[1000:]
    assert store.get("a/one.bin", None, 5) == data[:5]
    assert store.get("a/one.bin", 1020, 5000) == data[1020:]  # past the end: clipped, like a slice
    assert store.get("a/one.bin", 5000, 6000) == b""
    assert store.get("a/one.bin", 7, 7) == b""
    assert store.get("b.bin") == b""
    assert store.list() == {"a/one.bin": 1024, "a/two.bin": 2, "b.bin": 0}
    assert store.list("a/") == {"a/one.bin": 1024, "a/two.bin": 2}
    assert store.list("a/t") == {"a/two.bin": 2}
    assert store.exists("a/two.bin") and not store.exists("a/three.bin")
    store.put("a/two.bin", b"replaced")
    assert store.get("a/two.bin") == b"replaced"
    store.delete("a/two.bin")
    store.delete("a/two.bin")  # deleting a missing object is fine
    assert not store.exists("a/two.bin")


def test_missing_object_is_typed_and_named(store):
    with pytest.raises(ObjectNotFound, match="nope.txt"):
        store.get("nope.txt")
    with pytest.raises(ObjectNotFound):
        store.get("nope.txt", 3, 3)


def test_conditional_puts(store):
    store.put("m.json", b"v1", if_none_match=True)
    with pytest.raises(PreconditionFailed, match="m.json"):
        store.put("m.json", b"v2", if_none_match=True)
    assert store.get("m.json") == b"v1"

    data, etag = store.get_with_etag("m.json")
    assert data == b"v1"
    new_etag = store.put_if_match("m.json", b"v2", etag)
    assert new_etag != etag
    with pytest.raises(PreconditionFailed):
        store.put_if_match("m.json", b"v3", etag)  # stale: someone wrote v2 meanwhile
    assert store.get("m.json") == b"v2"


def test_if_none_match_race_has_exactly_one_winner(tmp_path):
    store = FileStore(tmp_path)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.put("race.txt", f"writer {i}".encode(), if_none_match=True)
            results.append(f"won {i}")
        except PreconditionFailed:
            results.append("lost")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.startswith("won")]
    assert len(winners) == 1 and results.count("lost") == 7
    assert store.get("race.txt").decode() == f"writer {winners[0].split()[1]}"
    assert store.list() == {"race.txt": len(store.get("race.txt"))}  # no temp files leak into keys


def test_file_store_rejects_escaping_keys(tmp_path):
    store = FileStore(tmp_path)
    for key in ("../x", "/etc/passwd", "a//b", ".rlmlab/tmp", ""):
        with pytest.raises(ValueError, match="invalid key"):
            store.put(key, b"x")


def test_uri_parsing_and_errors():
    assert parse_store_uri("s3://bucket/a/b/").prefix == "a/b"
    assert parse_store_uri("file:///tmp/x").location == "/tmp/x"
    assert parse_store_uri("mem://name").location == "name"
    for bad in ("gs://bucket/x", "/tmp/plain/path", "file://relative/dir", "s3:///nobucket"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            open_store(bad)
    with pytest.raises(ValueError, match="unknown S3 client 'curl'"):
        open_store("s3://b/p", endpoint_url="http://127.0.0.1:9", client="curl")
    assert isinstance(open_store("mem://x"), MemoryStore)


def test_missing_bucket_is_a_clear_error(s3_server):
    store = S3Store("no-such-bucket-here", "p", endpoint_url=s3_server.endpoint_url)
    with pytest.raises(StoreError, match="no such bucket 'no-such-bucket-here'"):
        store.get("k")


def test_endpoint_from_environment(s3_server, s3_uri, monkeypatch):
    uri = s3_uri
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    store = open_store(uri)
    store.put("k", b"via env")
    assert store.endpoint_url == s3_server.endpoint_url
    assert open_store(uri, client="obstore").get("k") == b"via env"


@pytest.mark.parametrize("store_class", [S3Store, ObstoreStore])
def test_faults_surface_as_transient_errors(s3_server_factory, new_bucket_uri, store_class):
    server = s3_server_factory(seed=1)
    uri = new_bucket_uri(server)
    bucket, prefix = uri[len("s3://") :].split("/", 1)
    store = store_class(bucket, prefix, endpoint_url=server.endpoint_url, read_timeout=0.5)
    store.put("obj.bin", b"z" * 200_000)

    server.configure(error_rate=1.0)
    kinds = set()
    for _ in range(6):  # 500 and 503 are drawn at random; six tries see both almost surely
        with pytest.raises(TransientStoreError) as err:
            store.get("obj.bin", 0, 1000)
        kinds.add(err.value.kind)
        assert "obj.bin" in str(err.value)
    assert kinds <= {"server_error", "slow_down"} and kinds

    server.configure(error_rate=0, reset_rate=1.0)
    with pytest.raises(TransientStoreError) as err:
        store.get("obj.bin")
    assert err.value.kind in ("reset", "short_read")

    server.configure(reset_rate=0, slow_rate=1.0, slow_ms=1500)
    with pytest.raises(TransientStoreError) as err:
        store.get("obj.bin", 0, 10)
    assert err.value.kind == "timeout"

    server.configure(slow_rate=0)
    assert store.get("obj.bin", 5, 10) == b"zzzzz"
    counts = server.counts
    assert counts["errors"] == 6 and counts["resets"] == 1 and counts["slow"] == 1  # no hidden client retries
