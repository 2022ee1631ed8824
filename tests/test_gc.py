"""Garbage collection: unreachable segments and old manifest versions go, everything a reader
can still reach stays, and so does anything young, foreign, or named by a manifest published
while collecting."""

from __future__ import annotations

import uuid

import pytest

import rlmlab.gc
from rlmlab.cli import main
from rlmlab.context import open_context
from rlmlab.errors import ManifestError
from rlmlab.gc import collect, parse_duration
from rlmlab.layout import MANIFEST_KEY, write_context
from rlmlab.stores import MemoryStore, open_store
from rlmlab.transcripts import Identity, Message, Session
from rlmlab.transcripts.upload import session_index, upload_sessions

OLD = "old text line\n" * 500
NEW = "new text, ünïcödé line\n" * 400


def rewritten_store() -> MemoryStore:
    store = MemoryStore(f"gc-{uuid.uuid4().hex}")
    write_context(OLD, store, segment_bytes=1000, progress=False)
    write_context(NEW, store, segment_bytes=1000, progress=False)
    store.put("notes/readme.txt", b"the user's own object")
    store.put("compiled/briefing.md", b"# briefing")
    return store


def test_a_rewritten_context_loses_its_old_segments_and_reads_the_same():
    store = rewritten_store()
    before = set(store.list())
    dry = collect(store, grace_s=0, dry_run=True)
    assert set(store.list()) == before and dry.deleted  # a dry run deletes nothing
    result = collect(store, grace_s=0)
    assert result.deleted == dry.deleted and result.deleted_bytes == len(OLD.encode())
    assert set(store.list()) == before - set(result.deleted)
    assert {"notes/readme.txt", "compiled/briefing.md", MANIFEST_KEY} <= set(store.list())
    with open_context(store) as ctx:
        assert str(ctx) == NEW
    assert collect(store, grace_s=0).deleted == []  # nothing left to collect


def test_the_grace_period_spares_young_objects():
    store = rewritten_store()
    result = collect(store, grace_s=3600)
    assert result.deleted == [] and len(result.too_young) == len(collect(store, grace_s=0, dry_run=True).deleted)


def test_without_a_readable_manifest_nothing_is_deleted():
    store = rewritten_store()
    store.delete(MANIFEST_KEY)
    before = store.list()
    with pytest.raises(ManifestError, match="nothing is deleted"):
        collect(store, grace_s=0)
    store.put(MANIFEST_KEY, b"{not json")
    with pytest.raises(ManifestError, match="not a manifest"):
        collect(store, grace_s=0)
    assert store.list() == {**before, MANIFEST_KEY: len(b"{not json")}


def test_a_manifest_published_while_collecting_spares_what_it_names(monkeypatch):
    store = rewritten_store()
    old_manifest = None
    referenced = rlmlab.gc._referenced
    calls = []

    def republish_then_read(store_, versions):
        calls.append(versions)
        if len(calls) == 2:  # after the listing, before the deletes: a writer puts the old text back
            store_.put(MANIFEST_KEY, old_manifest)
        return referenced(store_, versions)

    write_context(OLD, store, segment_bytes=1000, progress=False)
    old_manifest = store.get(MANIFEST_KEY)
    write_context(NEW, store, segment_bytes=1000, progress=False)
    monkeypatch.setattr(rlmlab.gc, "_referenced", republish_then_read)
    result = collect(store, grace_s=0)
    assert result.spared and result.deleted == []
    with open_context(store) as ctx:
        assert str(ctx) == OLD


def _session(n: int, extra: str = "") -> Session:
    return Session(
        session_id=f"ana-{n:03d}",
        identity=Identity(developer="ana", email="ana@example.com"),
        project_dir="/home/ana/app",
        git_branch="main",
        claude_version="2.1.42",
        messages=[Message("USER", f"2026-01-01T10:{n:02d}:00.000Z", f"question {n} {extra}")],
    )


def test_transcript_stores_keep_the_newest_versions_and_the_segments_they_name(tmp_path):
    store = open_store(f"file://{tmp_path}/team")
    for n in range(5):
        upload_sessions([_session(n)], store)
    upload_sessions([_session(0, extra="and it went on")], store)  # replaced: its old segment is garbage
    versions = sorted(store.list("transcripts/manifests/"))
    assert len(versions) == 6
    result = collect(store, keep_versions=2, grace_s=0)
    assert sorted(store.list("transcripts/manifests/")) == versions[-2:]
    assert set(versions[:-2]) <= set(result.deleted)
    # version 5 still names session 0's first segment, so it stays until that version goes
    assert not [k for k in result.deleted if k.startswith("transcripts/sessions/")]
    result = collect(store, keep_versions=1, grace_s=0)
    assert [k for k in result.deleted if k.startswith("transcripts/sessions/ana-000/")]
    index = session_index(store)
    with open_context(store) as ctx:
        assert [r.session_id for r in index] == [f"ana-{n:03d}" for n in range(5)]
        assert "and it went on" in ctx[index[0].char_offset : index[0].char_offset + index[0].char_length]


def test_on_s3_object_ages_come_from_the_listing(s3_uri, s3_server):
    write_context(OLD, s3_uri, segment_bytes=1000, endpoint_url=s3_server.endpoint_url, progress=False)
    write_context(NEW, s3_uri, segment_bytes=1000, endpoint_url=s3_server.endpoint_url, progress=False)
    assert collect(s3_uri, endpoint_url=s3_server.endpoint_url, grace_s=3600).deleted == []
    assert collect(s3_uri, endpoint_url=s3_server.endpoint_url, grace_s=0).deleted
    with open_context(s3_uri, endpoint_url=s3_server.endpoint_url) as ctx:
        assert str(ctx) == NEW


def test_cli_dry_run_and_bad_arguments(tmp_path, capsys):
    uri = f"file://{tmp_path}/ctx"
    write_context(OLD, uri, segment_bytes=1000, progress=False)
    write_context(NEW, uri, segment_bytes=1000, progress=False)
    assert main(["gc", uri, "--grace", "0s", "--dry-run"]) == 0
    assert "would delete" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["gc", uri, "--grace", "soon"])
    assert "not a duration" in capsys.readouterr().err
    assert main(["gc", f"file://{tmp_path}/empty"]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_durations():
    assert [parse_duration(t) for t in ("90", "90s", "30m", "24h", "7d", "1.5h")] == [90, 90, 1800, 86400, 604800, 5400]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("tomorrow")
