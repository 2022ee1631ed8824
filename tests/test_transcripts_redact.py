"""Redaction: every planted fake secret goes, ordinary random-looking text stays."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rlmlab.transcripts import redact
from rlmlab.transcripts.fake_secrets import ordinary_lines, planted_secrets
from rlmlab.transcripts.redact import kinds_found

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_recall_every_planted_kind(seed):
    for planted in planted_secrets(random.Random(seed)):
        out = redact(planted.line)
        assert planted.secret not in out, (planted.kind, out)
        assert f"[REDACTED:{planted.kind}]" in out, (planted.kind, out)


@pytest.mark.parametrize("seed", SEEDS)
def test_precision_on_ordinary_text(seed):
    for line in ordinary_lines(random.Random(seed)):
        assert redact(line) == line


def test_secrets_inside_a_transcript_line_keep_the_json_valid():
    planted = planted_secrets(random.Random(7))
    entry = {"type": "user", "message": {"role": "user", "content": "\n".join(p.line for p in planted)}}
    raw = json.dumps(entry)
    out = redact(raw)
    assert json.loads(out)["type"] == "user"
    for p in planted:
        assert json.dumps(p.secret)[1:-1] not in out, p.kind


def test_context_around_a_secret_is_kept():
    key = "gh" + "p_" + "a1B2" * 9
    assert redact(f"push with {key} now") == "push with [REDACTED:github-token] now"
    assert redact("x" * 10 + "AWS_SECRET_ACCESS_KEY=" + "k" * 40 + "\n") == "x" * 10 + "AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-access-key]\n"


def test_env_block_redacts_values_not_plain_config():
    block = "NODE_ENV=production\nPORT=3000\nDB_HOST=db.internal\nSTRIPE_WEBHOOK=whsec_" + "Zq9" * 8 + "\nDEBUG=true"
    out = redact(block)
    assert "whsec_" not in out and "[REDACTED:env-value]" in out
    assert "NODE_ENV=production" in out and "PORT=3000" in out and "DB_HOST=db.internal" in out and "DEBUG=true" in out


def test_placeholders_and_code_are_not_secrets():
    for line in [
        "password: ${DB_PASSWORD}",
        'token = "<your-token-here>"',
        "api_key=xxxxxxxxxxxx",
        "secret = self.settings.secret",
        "access_key = config.get('access_key')",
        "password = getpass.getpass()",
    ]:
        assert redact(line) == line, line


def test_idempotent():
    text = "\n".join(p.line for p in planted_secrets(random.Random(3)))
    once = redact(text)
    assert redact(once) == once


def test_kinds_found_reports_in_order():
    key = "AK" + "IA" + "ABCDEFGHIJKLMNOP"
    assert kinds_found(f"id {key} and Bearer {'z9' * 10}") == ["aws-access-key-id", "bearer-token"]


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}")
def test_real_transcripts_have_nothing_to_redact():
    """The shared files were sanitized by their publisher: every hit here would be a false positive."""
    files = sorted((SHARED / "claude-code").glob("*/*.jsonl")) + [SHARED / "transcripts" / "session-86b31bd5.txt"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert kinds_found(text) == [], path.name
