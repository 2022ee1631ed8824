"""Precompile on close: incremental digests, an RLM-written briefing, and a clear skip without a model."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from rlmlab.cli import main
from rlmlab.llm.fakes import FakeOpenAIServer, ScriptedClient
from rlmlab.rlm.engine import RLM
from rlmlab.stores import MemoryStore, open_store
from rlmlab.transcripts import Identity, Message, Session
from rlmlab.transcripts.hooks import BRIEFING_KEY, session_start
from rlmlab.transcripts.precompile import DIGESTS_PREFIX, precompile
from rlmlab.transcripts.spool import enqueue, flush
from rlmlab.transcripts.config import store_settings
from rlmlab.transcripts.upload import upload_sessions

BRIEFING_CELL = """```repl
import re
heads = re.findall(r"(?m)^## session (\\S+) \\| ([^|]+) \\|", context)
briefing = "# Team briefing\\n" + "\\n".join(f"- {dev.strip()}: [session {sid[:8]}]" for sid, dev in heads)
print(len(heads), "sessions")
```"""
DIGEST_CELL = """```repl
digest = "- long session: " + str(len(context)) + " chars; " + context.split("session_id:")[1].split()[0]
```"""


def _root(request) -> str:
    """A scripted root model: one cell that builds the answer in the REPL, then FINAL_VAR."""
    first_user = next(m["content"] for m in request.messages if m["role"] == "user")
    if "digest of one coding-agent session" in first_user:
        return DIGEST_CELL if request.step == 0 else "FINAL_VAR(digest)"
    return BRIEFING_CELL if request.step == 0 else "FINAL_VAR(briefing)"


def _sub(request) -> str:
    m = re.search(r"Session (\S+) by ([^\n]+?) on branch", request.last_user)
    return f"- {m.group(2)} worked on {m.group(1)}; decided to keep the retry at 3"


def _session(dev: str, n: int, words: int = 5) -> Session:
    return Session(
        session_id=f"{dev}-{n:03d}",
        identity=Identity(developer=dev.title(), email=f"{dev}@example.com"),
        git_branch="main",
        project_dir=f"/home/{dev}/app",
        messages=[Message("USER", f"2026-01-0{1 + n % 9}T10:00:00.000Z", " ".join(["fix the importer"] * words)),
                  Message("ASSISTANT", f"2026-01-0{1 + n % 9}T10:05:00.000Z", "done")],
    )


@pytest.fixture
def rlm():
    return RLM(ScriptedClient("root-model", _root), ScriptedClient("sub-model", _sub), max_iterations=4)


def test_digests_are_incremental_and_the_briefing_cites_sessions(rlm):
    store = MemoryStore(f"team-{uuid.uuid4().hex}")
    upload_sessions([_session("ana", 1), _session("bo", 2)], store)
    first = precompile(store, rlm)
    assert sorted(first.digested) == ["ana-001", "bo-002"] and first.version == 1
    briefing = store.get(BRIEFING_KEY).decode()
    assert "[session ana-001]" in briefing and "[session bo-002]" in briefing and "Ana" in briefing
    assert "decided to keep the retry at 3" in store.get(f"{DIGESTS_PREFIX}{_digest_key(store, 'ana-001')}").decode()

    assert precompile(store, rlm).up_to_date
    sub_calls = len(rlm.sub.requests)
    upload_sessions([_session("ana", 3)], store)
    second = precompile(store, rlm)
    assert second.digested == ["ana-003"] and second.reused == 2 and second.version == 2
    assert len(rlm.sub.requests) == sub_calls + 1  # only the new session cost a sub-call
    assert "[session ana-003]" in store.get(BRIEFING_KEY).decode()


def test_a_long_session_is_digested_by_an_rlm_run(rlm):
    store = MemoryStore(f"team-long-{uuid.uuid4().hex}")
    upload_sessions([_session("ana", 1, words=4000)], store)
    report = precompile(store, rlm, plain_limit_chars=10_000)
    assert report.digested == ["ana-001"]
    assert not rlm.sub.requests  # no plain sub-call: the root ran a REPL over the session
    digest = store.get(f"{DIGESTS_PREFIX}{_digest_key(store, 'ana-001')}").decode()
    assert digest.startswith("- long session:") and "ana-001" in digest


def test_real_sdk_path_against_a_fake_openai_server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-secret")

    def reply(request):
        return _root(request) if request.is_root else _sub(request)

    with FakeOpenAIServer(reply) as server:
        from rlmlab.transcripts.precompile import models_from_settings

        root, sub = models_from_settings(root="gpt-test", sub="gpt-test-mini", base_url=server.url)
        store = MemoryStore(f"team-sdk-{uuid.uuid4().hex}")
        upload_sessions([_session("chen", 4)], store)
        report = precompile(store, RLM(root, sub, max_iterations=4))
    assert report.digested == ["chen-004"]
    assert "[session chen-004]" in store.get(BRIEFING_KEY).decode()


@pytest.fixture
def no_models(monkeypatch, tmp_path):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "RLMLAB_PRECOMPILE", "RLMLAB_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RLMLAB_HOME", str(tmp_path / "home"))


def test_without_a_model_key_precompile_is_skipped_with_a_message(no_models, tmp_path, capsys):
    uri = f"file://{tmp_path}/store"
    upload_sessions([_session("ana", 1)], uri)
    assert main(["transcripts", "precompile", "--to", uri]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "OPENAI_API_KEY" in err
    assert not open_store(uri).exists(BRIEFING_KEY)


def test_flusher_reports_the_skip_and_session_start_has_nothing_to_inject(no_models, tmp_path, monkeypatch):
    monkeypatch.setenv("RLMLAB_STORE", f"file://{tmp_path}/store")
    transcript = tmp_path / "s.jsonl"
    transcript.write_text(json.dumps({"type": "user", "sessionId": "s-9", "timestamp": "2026-01-01T00:00:00Z",
                                      "message": {"role": "user", "content": "hello"}}) + "\n")
    enqueue("s-9", str(transcript), store_settings())
    report = flush()
    assert report.sent == ["s-9"] and report.precompile[0].startswith("precompile skipped: no model configured")
    assert session_start({"source": "startup"}, spawn=False) is None


def _digest_key(store, session_id: str) -> str:
    (key,) = [k for k in store.list(DIGESTS_PREFIX) if k[len(DIGESTS_PREFIX):].startswith(session_id)]
    return key[len(DIGESTS_PREFIX):]
