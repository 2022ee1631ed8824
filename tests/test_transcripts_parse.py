"""Claude Code JSONL → Session: real files, every entry type, malformed lines, subagents, rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmlab.transcripts import Identity, load, parse_text
from rlmlab.transcripts.claude_code import KNOWN_TYPES

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_FILES = sorted((SHARED / "claude-code").glob("*/*.jsonl"))
REFERENCE_TEXT = SHARED / "transcripts" / "session-86b31bd5.txt"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}")
ME = Identity(developer="Ada", email="ada@example.com", hostname="box", platform="Linux", os_user="ada")


def _envelope(kind: str, **fields) -> dict:
    base = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/ada/proj",
        "sessionId": "s-1",
        "version": "2.1.40",
        "gitBranch": "main",
        "type": kind,
        "uuid": f"u-{len(fields)}",
        "timestamp": "2026-01-01T10:00:00.000Z",
    }
    base.update(fields)
    return base


def _assistant(message_id: str, block: dict, ts: str = "2026-01-01T10:00:01.000Z") -> dict:
    return _envelope("assistant", timestamp=ts, message={"id": message_id, "role": "assistant", "content": [block]})


def _write(tmp_path: Path, entries: list, name: str = "s-1.jsonl") -> Path:
    path = tmp_path / name
    lines = [e if isinstance(e, (bytes, str)) else json.dumps(e) for e in entries]
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return path


@needs_shared
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_real_file_parses_and_reports_counts(path):
    session = load(path, identity=ME)
    stats = session.stats()
    raw_lines = sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
    assert stats["lines"] == raw_lines  # every line is either counted by type or counted as skipped
    assert stats["skipped_lines"] == 0 and stats["unknown_types"] == {}
    assert set(k.split("/")[0] for k in stats["entries"]) <= KNOWN_TYPES
    text = session.to_text()
    assert parse_text(text).to_text() == text


@needs_shared
def test_real_sessions_have_expected_shape():
    heavy = load(SHARED / "claude-code/sessions/tool_heavy.jsonl", identity=ME)
    assert heavy.tool_call_count == 6 and heavy.message_count > 0
    assert heavy.session_id and heavy.git_branch and heavy.claude_version.startswith("2.1")
    agent = load(SHARED / "claude-code/sessions/subagent.jsonl", identity=ME)
    assert [s.source for s in agent.subagents] == ["progress"]
    assert "SUBAGENT afb92ff (6 messages)" in agent.to_text()
    assert "SUBAGENT" not in agent.to_text(subagents=False)


@needs_shared
def test_reference_text_round_trips_exactly():
    reference = REFERENCE_TEXT.read_text(encoding="utf-8")
    session = parse_text(reference)
    assert session.message_count == 73
    assert session.identity.developer == "dmku33" and session.claude_version == "2.1.42"
    assert session.to_text() == reference


def test_render_matches_reference_layout(tmp_path):
    path = _write(
        tmp_path,
        [
            _envelope("user", message={"role": "user", "content": "fix the build"}),
            _assistant("m1", {"type": "thinking", "thinking": "hmm", "signature": "x"}),
            _assistant("m1", {"type": "text", "text": "\n\nLooking."}),
            _assistant("m1", {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "make\ntest"}}),
        ],
    )
    session = load(path, identity=ME)
    session.uploaded_at = "2026-01-02T00:00:00+00:00"
    rule = "=" * 72
    assert session.to_text() == (
        f"{rule}\nSESSION METADATA\n{rule}\n"
        "session_id:      s-1\ndeveloper:       Ada\nemail:           ada@example.com\n"
        "hostname:        box\nplatform:        Linux\nos_user:         ada\ngit_branch:      main\n"
        "project_dir:     /home/ada/proj\nclaude_version:  2.1.40\nmessage_count:   2\n"
        "start_time:      2026-01-01T10:00:00.000Z\nend_time:        2026-01-01T10:00:01.000Z\n"
        f"uploaded_at:     2026-01-02T00:00:00+00:00\n{rule}\n\n"
        "[USER] [2026-01-01T10:00:00.000Z]\nfix the build\n\n---\n\n"
        "[ASSISTANT] [2026-01-01T10:00:01.000Z]\nLooking.\n[tool] Bash: make test\n\n---\n"
    )
    data = json.loads(session.to_json())
    assert data["metadata"]["message_count"] == 2
    assert data["messages"][1]["thinking"] == "hmm"
    assert data["messages"][1]["tool_calls"][0]["summary"] == "make test"


def test_every_entry_type_and_merge_by_message_id(tmp_path):
    entries = [
        {"type": "summary", "summary": "Build fix", "leafUuid": "x"},
        {"type": "file-history-snapshot", "messageId": "a", "snapshot": {}},
        {"type": "queue-operation", "operation": "enqueue", "content": "later"},
        {"type": "permission-mode", "permissionMode": "plan", "sessionId": "s-1"},
        {"type": "last-prompt", "lastPrompt": "x", "sessionId": "s-1"},
        _envelope("progress", data={"type": "hook_progress", "hookEvent": "SessionStart"}),
        _envelope("attachment", attachment={"type": "new_file", "filename": "a.py"}),
        _envelope("user", message={"role": "user", "content": "<system-reminder>secret sauce</system-reminder>hello"}),
        _envelope("user", isMeta=True, message={"role": "user", "content": "<local-command-caveat>c</local-command-caveat>"}),
        _assistant("m1", {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/a.py"}}),
        _assistant("m1", {"type": "tool_use", "id": "t2", "name": "Grep", "input": {"pattern": "TODO", "path": "src"}}),
        _envelope("user", message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}),
        _envelope(
            "user",
            message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2", "is_error": True, "content": "no\nmatch"}]},
        ),
        _envelope("system", subtype="compact_boundary", content="Conversation compacted", compactMetadata={"trigger": "auto", "preTokens": 155000}),
        _envelope("user", isCompactSummary=True, message={"role": "user", "content": "We fixed the build."}),
        _envelope("system", subtype="local_command", content="<command-name>/model</command-name>\x1b[1m"),
        _envelope("system", subtype="turn_duration", durationMs=5),
    ]
    session = load(_write(tmp_path, entries), identity=ME)
    counts = session.stats()["entries"]
    for kind in ("summary", "file-history-snapshot", "queue-operation", "permission-mode", "last-prompt", "user", "user/meta", "assistant"):
        assert counts[kind] >= 1, kind
    assert counts["system/compact_boundary"] == 1 and counts["progress/hook_progress"] == 1
    assert counts["attachment/new_file"] == 1 and counts["system/turn_duration"] == 1
    assert session.titles == ["Build fix"] and session.permission_mode == "plan"
    roles = [m.role for m in session.messages]
    assert roles == ["USER", "ASSISTANT", "SYSTEM", "SUMMARY", "USER"]
    assert session.messages[0].text == "hello"  # injected tag stripped
    assert session.messages[1].body() == "[tool] Read: /a.py\n[tool] Grep: TODO in src -> error: no match"
    assert session.messages[2].text == "Conversation compacted (trigger=auto, preTokens=155000)"
    assert session.messages[4].text == "<command-name>/model</command-name>"
    assert session.tool_call_count == 2


def test_malformed_lines_are_skipped_and_counted(tmp_path):
    good = _envelope("user", message={"role": "user", "content": "still here"})
    entries = [
        good,
        json.dumps(good)[:40],  # truncated
        "not json at all",
        "[1, 2, 3]",  # JSON but not an object
        json.dumps({"no": "type"}),
        json.dumps(_envelope("user", message="a string")),
        json.dumps(_envelope("assistant", message={"id": "m", "content": [{"type": "text", "text": 7}]})),
        json.dumps(_envelope("user", timestamp=12345, message={"role": "user", "content": "x"})),
        b'{"type": "user", "message": {"content": "\xff\xfe"}}',
        json.dumps({"type": "brand-new-kind", "x": 1}),
        json.dumps({"type": "brand-new-kind"}),
    ]
    session = load(_write(tmp_path, entries), identity=ME)
    assert session.skipped == {"not_json": 2, "not_object": 1, "wrong_types": 4, "not_utf8": 1}
    assert session.unknown_types == {"brand-new-kind": 2}
    assert [m.text for m in session.messages] == ["still here"]
    assert session.stats()["skipped_lines"] == 8 and session.stats()["lines"] == len(entries)


def test_subagent_files_nested_and_beside(tmp_path):
    main = _write(
        tmp_path,
        [
            _envelope("user", message={"role": "user", "content": "research it"}),
            _assistant("m1", {"type": "tool_use", "id": "t1", "name": "Task", "input": {"description": "look", "subagent_type": "Explore"}}),
        ],
    )
    nested = tmp_path / "s-1" / "subagents"
    nested.mkdir(parents=True)
    side = dict(isSidechain=True, agentId="abc")
    _write(nested, [_envelope("user", message={"role": "user", "content": "look"}, **side), "garbage"], "agent-abc.jsonl")
    _write(tmp_path, [_envelope("user", message={"role": "user", "content": "old layout"}, isSidechain=True, agentId="old")], "agent-old.jsonl")
    _write(tmp_path, [_envelope("user", sessionId="other", message={"role": "user", "content": "not ours"})], "agent-zzz.jsonl")
    session = load(main, identity=ME)
    assert [(s.agent_id, s.source, [m.text for m in s.messages]) for s in session.subagents] == [
        ("abc", "file", ["look"]),
        ("old", "file", ["old layout"]),
    ]
    assert session.skipped["not_json"] == 1
    assert session.messages[1].body() == "[tool] Task: look (Explore)"


def test_sidechain_lines_in_main_file_become_a_subagent(tmp_path):
    entries = [
        _envelope("user", message={"role": "user", "content": "main"}),
        _envelope("user", isSidechain=True, agentId="b1", message={"role": "user", "content": "Warmup"}),
        _assistant("m9", {"type": "text", "text": "ready"}) | {"isSidechain": True, "agentId": "b1"},
    ]
    session = load(_write(tmp_path, entries), identity=ME)
    assert [m.text for m in session.messages] == ["main"]
    assert [(s.agent_id, s.source, len(s.messages)) for s in session.subagents] == [("b1", "sidechain", 2)]


def test_local_identity_reads_git_config(tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "config", "user.name", "Grace Hopper"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "config", "user.email", "grace@example.com"], check=True)
    ident = Identity.local(str(tmp_path))
    assert (ident.developer, ident.email) == ("Grace Hopper", "grace@example.com")
    assert ident.hostname and ident.platform


def test_parse_text_rejects_other_text():
    with pytest.raises(ValueError, match="SESSION METADATA"):
        parse_text("hello")
