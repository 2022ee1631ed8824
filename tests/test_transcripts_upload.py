"""Uploading sessions as one growing team context: index, idempotence, replacement, races, redaction."""

from __future__ import annotations

import random
import threading
import uuid

import pytest

from rlmlab.context import open_context
from rlmlab.errors import ManifestError
from rlmlab.layout import write_context
from rlmlab.stores import MemoryStore, open_store
from rlmlab.transcripts import Identity, Message, Session, parse_text
from rlmlab.transcripts.fake_secrets import planted_secrets
from rlmlab.transcripts.upload import latest_version, session_index, upload_sessions, version_key


def _session(dev: str, n: int, text: str = "") -> Session:
    return Session(
        session_id=f"{dev}-{n:03d}",
        identity=Identity(developer=dev, email=f"{dev}@example.com"),
        project_dir=f"/home/{dev}/app",
        git_branch="main",
        claude_version="2.1.42",
        messages=[
            Message("USER", f"2026-01-01T10:{n % 60:02d}:00.000Z", text or f"{dev} asks question {n}"),
            Message("ASSISTANT", f"2026-01-01T10:{n % 60:02d}:05.000Z", f"answer {n} for {dev}"),
        ],
    )


def test_index_maps_sessions_to_their_text(tmp_path):
    uri = f"file://{tmp_path}/team"
    sessions = [_session("ana", i) for i in range(3)] + [_session("bo", i) for i in range(2)]
    result = upload_sessions(sessions, uri)
    assert result.version == 1 and len(result.added) == 5
    context = open_context(uri)
    index = session_index(uri)
    assert [r.session_id for r in index] == [s.session_id for s in sessions]
    assert index[-1].char_offset + index[-1].char_length == len(context)
    for r in index:
        piece = context[r.char_offset : r.char_offset + r.char_length]
        parsed = parse_text(piece[:-1])  # each session is followed by one blank line
        assert parsed.session_id == r.session_id and parsed.identity.developer == r.developer
        assert parsed.uploaded_at == r.uploaded_at != ""
        assert context.count("\n", 0, r.char_offset) == r.line_offset


def test_reupload_is_idempotent_and_changed_sessions_are_replaced_in_place(tmp_path):
    store = open_store(f"file://{tmp_path}/team")
    first = [_session("ana", i) for i in range(3)]
    upload_sessions(first, store)
    objects = store.list()
    again = upload_sessions([_session("ana", i) for i in range(3)], store)
    assert again.version == 1 and len(again.unchanged) == 3 and not again.added
    assert store.list() == objects  # nothing written at all

    grown = _session("ana", 1)
    grown.messages.append(Message("USER", "2026-01-01T11:00:00.000Z", "one more thing"))
    result = upload_sessions([grown, _session("ana", 9)], store)
    assert result.version == 2 and result.replaced == ["ana-001"] and result.added == ["ana-009"]
    index = session_index(store)
    assert [r.session_id for r in index] == ["ana-000", "ana-001", "ana-002", "ana-009"]
    context = open_context(store)
    middle = context[index[1].char_offset : index[1].char_offset + index[1].char_length]
    assert "one more thing" in middle and "one more thing" not in context[: index[1].char_offset]


def test_secrets_never_reach_the_store():
    store = MemoryStore(f"team-{uuid.uuid4().hex}")
    planted = planted_secrets(random.Random(11))
    session = _session("ana", 1, text="\n".join(p.line for p in planted))
    upload_sessions([session], store)
    stored = b"".join(store.get(k) for k in store.list("transcripts/sessions/"))
    assert b"[REDACTED:" in stored
    for p in planted:
        assert p.secret.encode() not in stored, p.kind


def test_refuses_a_prefix_holding_another_context(tmp_path):
    uri = f"file://{tmp_path}/other"
    write_context("just some text\n", uri, progress=False)
    with pytest.raises(ManifestError, match="did not write"):
        upload_sessions([_session("ana", 1)], uri)


def test_a_session_without_id_is_refused():
    with pytest.raises(ValueError, match="session_id"):
        upload_sessions([Session()], MemoryStore(f"x-{uuid.uuid4().hex}"))


def test_racing_threads_lose_nothing_in_memory():
    store = MemoryStore(f"race-{uuid.uuid4().hex}")

    def uploader(dev: str) -> None:
        for i in range(15):
            upload_sessions([_session(dev, i)], store)

    threads = [threading.Thread(target=uploader, args=(f"dev{u}",)) for u in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    index = session_index(store)
    assert sorted(r.session_id for r in index) == sorted(f"dev{u}-{i:03d}" for u in range(6) for i in range(15))
    version, _ = latest_version(store)
    assert store.exists(version_key(version)) and not store.exists(version_key(version + 1))


@pytest.mark.slow
def test_eight_uploaders_fifty_sessions_each_against_s3(s3_server, s3_uri):
    """The acceptance case: 8 concurrent uploaders x 50 sessions on the embedded S3 (batches of 10 per call)."""
    errors: list[BaseException] = []
    conflicts = []

    def uploader(u: int) -> None:
        store = open_store(s3_uri, endpoint_url=s3_server.endpoint_url)
        try:
            for batch in range(5):
                result = upload_sessions([_session(f"dev{u}", i) for i in range(batch * 10, batch * 10 + 10)], store)
                conflicts.append(result.conflicts)
        except BaseException as e:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(e)

    threads = [threading.Thread(target=uploader, args=(u,)) for u in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    store = open_store(s3_uri, endpoint_url=s3_server.endpoint_url)
    index = session_index(store)
    assert sorted(r.session_id for r in index) == sorted(f"dev{u}-{i:03d}" for u in range(8) for i in range(50))
    context = open_context(s3_uri, endpoint_url=s3_server.endpoint_url)
    assert len(context) == index[-1].char_offset + index[-1].char_length
    assert sum(conflicts) > 0  # the uploaders really raced
    sample = index[123]
    assert f"session_id:      {sample.session_id}\n" in context[sample.char_offset : sample.char_offset + 400]
