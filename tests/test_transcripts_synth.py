"""Synthetic transcripts: deterministic per seed, parseable, needles findable where the questions say."""

from __future__ import annotations

import json

import pytest

from rlmlab.cli import main
from rlmlab.transcripts.synth import load_corpus, parse_size, session_paths, synthesize


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    synthesize(a, size=200_000, developers=3, needles=5, seed=7)
    synthesize(b, size=200_000, developers=3, needles=5, seed=7)
    synthesize(c, size=200_000, developers=3, needles=5, seed=8)
    assert _tree(a) == _tree(b)
    assert _tree(a) != _tree(c)


def test_corpus_parses_cleanly_and_needles_are_in_their_sessions(tmp_path):
    summary = synthesize(tmp_path, size=400_000, developers=4, needles=12, seed=1)
    assert summary["bytes"] >= 400_000 and summary["developers"] == 4
    sessions = {s.session_id: s for s in load_corpus(tmp_path)}
    assert len(sessions) == summary["sessions"]
    assert len({s.identity.developer for s in sessions.values()}) == 4
    for session in sessions.values():
        assert not session.skipped and not session.unknown_types
        assert session.message_count > 0 and session.tool_call_count >= 0
    questions = [json.loads(line) for line in (tmp_path / "questions.jsonl").read_text().splitlines()]
    assert len(questions) == 12 and len({q["question"] for q in questions}) == 12
    for q in questions:
        text = sessions[q["session_id"]].to_text()
        assert q["answer"] in text and q["fact"] in text
        assert q["developer"] == sessions[q["session_id"]].identity.developer


def test_identities_come_from_developers_json(tmp_path):
    synthesize(tmp_path, size=50_000, developers=2, needles=0, seed=3)
    pairs = session_paths(tmp_path)
    assert pairs and all(path.parts[-3] in {p.parts[-3] for p, _ in pairs} for path, _ in pairs)
    assert {ident.email.split("@")[1] for _, ident in pairs} == {"example.com"}


@pytest.mark.parametrize("text,expected", [("50MB", 50_000_000), ("512kB", 512_000), ("1.5 GB", 1_500_000_000), ("2000", 2000)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")
    with pytest.raises(ValueError, match="positive"):
        synthesize("/nonexistent-never-written", size=0)


def test_cli_synth_and_parse(tmp_path, capsys):
    assert main(["data", "synth", "--size", "60kB", "--developers", "2", "--needles", "2", "--seed", "5", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["needles"] == 2 and (tmp_path / "questions.jsonl").exists()
    assert main(["transcripts", "parse", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == summary["sessions"] and all(r["skipped_lines"] == 0 for r in rows)
    first = sorted(tmp_path.rglob("*.jsonl"))[0]
    assert main(["transcripts", "parse", "--text", str(first)]) == 0
    assert capsys.readouterr().out.startswith("=" * 72 + "\nSESSION METADATA\n")
    with pytest.raises(SystemExit, match="not a size"):
        main(["data", "synth", "--size", "big", "--out", str(tmp_path / "x")])
