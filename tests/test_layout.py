"""Layout: segments on line boundaries, exact offsets, manifest last, Monocontext import."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlmlab.errors import ManifestError
from rlmlab.layout import MANIFEST_KEY, MONOCONTEXT_CACHE_KEY, load_manifest, write_context, write_monocontext
from rlmlab.stores import MemoryStore, open_store

MIXED = "".join(
    f"line {i}: héllo wörld ✓ 日本語 🚀 {'x' * (i % 37)}\n" + ("\r\n" if i % 11 == 0 else "") for i in range(600)
) + "no trailing newline ☃"


def mem(name: str) -> MemoryStore:
    store = MemoryStore(name)
    for key in list(store.list()):
        store.delete(key)
    return store


def read_back(store, manifest) -> str:
    """Every segment decoded from its recorded byte range, checked against its offsets."""
    pieces = []
    for s in manifest.segments:
        data = store.get(s.key, s.byte_offset, s.byte_offset + s.byte_length)
        text = data.decode("utf-8")
        assert len(text) == s.char_length and len(text.splitlines()) == s.line_count
        assert (text + "x").splitlines()[-1] == "x" or s is manifest.segments[-1]  # ends on a line boundary
        pieces.append(text)
    return "".join(pieces)


@pytest.mark.parametrize("layout", ["segments", "single"])
def test_round_trip_non_ascii_offsets(layout):
    store = mem(f"layout-{layout}")
    manifest = write_context(MIXED, store, layout=layout, segment_bytes=2000, progress=False)
    assert len(manifest.segments) > 10
    assert read_back(store, manifest) == MIXED
    assert manifest.total_chars == len(MIXED)
    assert manifest.total_bytes == len(MIXED.encode())
    assert manifest.total_lines == len(MIXED.splitlines())
    for s in manifest.segments:
        assert MIXED[s.char_offset : s.char_offset + s.char_length].encode() == store.get(
            s.key, s.byte_offset, s.byte_offset + s.byte_length
        )
        assert MIXED.splitlines(keepends=True)[s.line_offset] == MIXED[s.char_offset :].splitlines(keepends=True)[0]
    assert load_manifest(store) == manifest
    if layout == "single":
        assert len({s.key for s in manifest.segments}) == 1
        assert store.get(manifest.segments[0].key) == MIXED.encode()


LINE_TEXT = st.text(st.sampled_from(list("ab é日🚀\n\r\x0c\u2028")), max_size=300)


@settings(max_examples=60, deadline=None)
@given(text=LINE_TEXT, segment_bytes=st.integers(1, 64), layout=st.sampled_from(["segments", "single"]))
def test_any_text_round_trips(text, segment_bytes, layout):
    store = mem("layout-property")
    manifest = write_context(text, store, layout=layout, segment_bytes=segment_bytes, progress=False)
    assert read_back(store, manifest) == text
    assert manifest.total_lines == len(text.splitlines())
    lines = text.splitlines(keepends=True)
    for s in manifest.segments:
        assert text[s.char_offset : s.char_offset + s.char_length] == "".join(lines[s.line_offset : s.line_offset + s.line_count])


def test_from_path_keeps_crlf(tmp_path):
    path = tmp_path / "ctx.txt"
    path.write_bytes("a\r\nb ü\r\n".encode())
    manifest = write_context(path, f"file://{tmp_path}/out", progress=False)
    store = open_store(f"file://{tmp_path}/out")
    assert read_back(store, manifest) == "a\r\nb ü\r\n"
    (tmp_path / "bad.txt").write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(ValueError, match=r"bad.txt is not UTF-8: invalid byte at offset 3"):
        write_context(tmp_path / "bad.txt", "mem://unused", progress=False)
    with pytest.raises(ValueError, match="unknown layout 'striped'"):
        write_context("x", "mem://unused", layout="striped", progress=False)


class RecordingStore(MemoryStore):
    def __init__(self, name):
        super().__init__(name)
        self.puts: list[str] = []

    def put(self, key, data, *, if_none_match=False):
        super().put(key, data, if_none_match=if_none_match)
        self.puts.append(key)


def test_manifest_is_written_last_and_rewrites_are_idempotent():
    store = RecordingStore("layout-order")
    manifest = write_context(MIXED, store, segment_bytes=1000, workers=8, progress=False)
    assert store.puts[-1] == MANIFEST_KEY
    assert sorted(store.puts[:-1]) == sorted(s.key for s in manifest.segments)

    store.puts.clear()
    again = write_context(MIXED, store, segment_bytes=1000, progress=False)
    assert store.puts == [MANIFEST_KEY]  # nothing new to upload
    assert again.segments == manifest.segments

    # Another segment size at the same prefix adds objects and never replaces one in use.
    before = {s.key: store.get(s.key) for s in manifest.segments}
    resized = write_context(MIXED, store, segment_bytes=5000, progress=False)
    assert all(store.get(key) == data for key, data in before.items())
    assert read_back(store, resized) == MIXED
    assert load_manifest(store) == resized


def test_empty_and_single_long_line():
    store = mem("layout-edge")
    empty = write_context("", store, progress=False)
    assert empty.segments == () and empty.total_chars == 0 and load_manifest(store) == empty
    long_line = "é" * 5000
    manifest = write_context(long_line, store, segment_bytes=100, progress=False)
    assert len(manifest.segments) == 1 and read_back(store, manifest) == long_line


def test_monocontext_round_trip_and_cache():
    store = RecordingStore("layout-mono")
    text = "".join(f"{i:05d} ünïcode line\n" for i in range(2500))
    listing = write_monocontext(text, store, lines_per_segment=1000, progress=False)
    assert [e["segment"] for e in listing] == ["segment_000001.log", "segment_000002.log", "segment_000003.log"]
    assert [(e["start_line"], e["line_count"]) for e in listing] == [(0, 1000), (1000, 1000), (2000, 500)]
    assert json.loads(store.get(MANIFEST_KEY)) == listing
    assert store.puts[-1] == MANIFEST_KEY

    manifest = load_manifest(store)
    assert manifest.extra["source_layout"] == "monocontext"
    assert read_back(store, manifest) == text
    assert [s.line_offset for s in manifest.segments] == [0, 1000, 2000]
    assert manifest.total_lines == 2500 and manifest.total_chars == len(text)
    assert store.exists(MONOCONTEXT_CACHE_KEY)

    class CountingGets(RecordingStore):
        gets = 0

        def get(self, key, start=None, stop=None):
            CountingGets.gets += 1
            return super().get(key, start, stop)

    counting = CountingGets("layout-mono")
    assert load_manifest(counting) == manifest
    assert CountingGets.gets == 2  # manifest.json + the cached index, no segment fetched

    store.put("segment_000002.log", b"changed\n")  # the listing no longer matches the objects
    rebuilt = load_manifest(store)
    assert rebuilt.segments[1].byte_length == len(b"changed\n")
    assert rebuilt.total_lines == 1501


def test_monocontext_on_s3(s3_server, s3_uri):
    text = "".join(f"row {i} — ok\n" for i in range(230))
    write_monocontext(text, s3_uri, lines_per_segment=100, endpoint_url=s3_server.endpoint_url, progress=False)
    store = open_store(s3_uri, endpoint_url=s3_server.endpoint_url, client="obstore")
    assert read_back(store, load_manifest(store)) == text


def test_manifest_errors_name_the_location():
    store = mem("layout-errors")
    with pytest.raises(ManifestError, match=r"no manifest at mem://layout-errors/manifest.json"):
        load_manifest(store)
    store.put(MANIFEST_KEY, b"{not json")
    with pytest.raises(ManifestError, match="malformed manifest at mem://layout-errors/manifest.json: not JSON"):
        load_manifest(store)
    store.put(MANIFEST_KEY, b'{"format": "rlmlab.manifest/99"}')
    with pytest.raises(ManifestError, match="unsupported manifest format 'rlmlab.manifest/99'"):
        load_manifest(store)
    store.put(MANIFEST_KEY, b'{"format": "rlmlab.manifest/1", "layout": "segments"}')
    with pytest.raises(ManifestError, match="KeyError"):
        load_manifest(store)
    store.put(MANIFEST_KEY, b'[{"segment": "segment_000001.log"}]')
    with pytest.raises(ManifestError, match="entry 0"):
        load_manifest(store)
    store.put(MANIFEST_KEY, b'[{"segment": "gone.log", "start_line": 0, "line_count": 1}]')
    with pytest.raises(ManifestError, match="names 'gone.log', which does not exist"):
        load_manifest(store)
    store.put(MANIFEST_KEY, b'[{"segment": "a.log", "start_line": 0, "line_count": 1}, '
              b'{"segment": "b.log", "start_line": 1, "line_count": 1}]')
    store.put("a.log", b"half a li")
    store.put("b.log", b"ne\n")
    with pytest.raises(ManifestError, match="a.log does not end on a line boundary"):
        load_manifest(store)
