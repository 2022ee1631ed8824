"""Hooks, spool and install: queued sessions arrive exactly once, briefings are injected, settings stay intact."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlmlab.cli import main
from rlmlab.sim import S3Server
from rlmlab.stores import open_store
from rlmlab.transcripts import hooks, install
from rlmlab.transcripts.config import ConfigError, project_transcripts_dir, store_settings
from rlmlab.transcripts.spool import enqueue, flush, pending
from rlmlab.transcripts.synth import session_paths, synthesize
from rlmlab.transcripts.upload import session_index

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Isolated rlmlab and Claude Code homes; no store configured."""
    monkeypatch.setenv("RLMLAB_HOME", str(tmp_path / "rlmlab-home"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-home"))
    for name in ("RLMLAB_STORE", "RLMLAB_CONFIG", "RLMLAB_SPOOL_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RLMLAB_PRECOMPILE", "0")  # precompiling has its own tests; a stray API key must not reach out here
    return tmp_path


@pytest.fixture
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    synthesize(out, size=300_000, developers=2, needles=0, seed=2)
    return [path for path, _ in session_paths(out)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(home: Path, **fields) -> None:
    path = home / "rlmlab-home" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields))


def test_store_resolution_order(home, monkeypatch):
    with pytest.raises(ConfigError, match="no store configured"):
        store_settings()
    _config(home, store="s3://cfg/x", endpoint_url="http://127.0.0.1:1")
    assert store_settings() == store_settings(None) and store_settings().uri == "s3://cfg/x"
    monkeypatch.setenv("RLMLAB_STORE", "file:///env")
    assert store_settings().uri == "file:///env"
    assert store_settings("mem://flag").uri == "mem://flag"


def test_spooled_sessions_arrive_exactly_once_when_the_store_comes_back(home, corpus):
    port = _free_port()
    _config(home, store="s3://team/ctx", endpoint_url=f"http://127.0.0.1:{port}")
    for path in corpus:
        hooks.session_end({"session_id": path.stem, "transcript_path": str(path), "reason": "other"}, spawn=False)
    assert len(pending()) == len(corpus)
    down = flush()
    assert set(down.failed) == {p.stem for p in corpus} and not down.sent
    assert len(pending()) == len(corpus)  # nothing lost while the store is away

    with S3Server(port=port) as s3:
        s3.create_bucket("team")
        up = flush()
        assert sorted(up.sent) == sorted(p.stem for p in corpus) and not up.failed
        assert pending() == []
        # A crash between upload and delete leaves an entry behind: sending it again changes nothing.
        enqueue(corpus[0].stem, str(corpus[0]), store_settings())
        again = flush()
        assert again.sent == [corpus[0].stem]
        index = session_index(open_store("s3://team/ctx", endpoint_url=s3.endpoint_url))
        assert sorted(r.session_id for r in index) == sorted(p.stem for p in corpus)


def test_flush_drops_entries_whose_transcript_is_gone(home, tmp_path):
    _config(home, store=f"file://{tmp_path}/store")
    enqueue("gone", str(tmp_path / "missing.jsonl"), store_settings())
    report = flush()
    assert "gone" in report.dropped and pending() == []


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}")
def test_hook_cli_returns_and_a_detached_flusher_uploads(home, tmp_path):
    transcript = SHARED / "claude-code" / "sessions" / "short.jsonl"
    env = {**os.environ, "RLMLAB_STORE": f"file://{tmp_path}/store"}
    payload = {"session_id": "55604662-cf2a-4331-851a-ec234028f8ca", "transcript_path": str(transcript),
               "cwd": str(tmp_path), "hook_event_name": "SessionEnd", "reason": "prompt_input_exit"}
    done = subprocess.run([sys.executable, "-m", "rlmlab", "transcripts", "hook", "session-end"], input=json.dumps(payload),
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (tmp_path / "store" / "manifest.json").exists() and not pending():
            break
        time.sleep(0.2)
    index = session_index(f"file://{tmp_path}/store")
    assert [r.session_id for r in index] == [payload["session_id"]]


def test_hook_cli_rejects_bad_input_clearly(home, monkeypatch, capsys):
    monkeypatch.setenv("RLMLAB_STORE", "mem://x")
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("not json"))
    assert main(["transcripts", "hook", "session-end"]) == 1
    assert "not JSON" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO('{"cwd": "/x"}'))
    assert main(["transcripts", "hook", "session-end"]) == 1
    assert "session_id" in capsys.readouterr().err


def test_session_start_injects_the_briefing_and_falls_back_to_the_cached_copy(home, tmp_path):
    store_dir = tmp_path / "store"
    _config(home, store=f"file://{store_dir}")
    assert hooks.session_start({"source": "startup"}, spawn=False) is None  # nothing compiled yet
    open_store(f"file://{store_dir}").put(hooks.BRIEFING_KEY, "# Team briefing\nAna: fixed the importer.\n".encode())
    output = json.loads(hooks.session_start({"source": "startup"}, spawn=False))
    assert output["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert "Ana: fixed the importer." in output["hookSpecificOutput"]["additionalContext"]
    # The store goes away (here: an unreachable S3 endpoint): the last briefing seen is still injected.
    _config(home, store=f"file://{store_dir}")
    cached = home / "rlmlab-home" / "briefings"
    (cached_file,) = list(cached.iterdir())
    port = _free_port()
    _config(home, store="s3://team/ctx", endpoint_url=f"http://127.0.0.1:{port}")
    cached_file.rename(cached / (hooks.hashlib.sha256(b"s3://team/ctx").hexdigest()[:16] + ".md"))
    output = json.loads(hooks.session_start({"source": "resume"}, spawn=False, deadline_s=1.0))
    assert "Ana: fixed the importer." in output["hookSpecificOutput"]["additionalContext"]


def test_install_keeps_other_hooks_and_removes_cleanly(home, tmp_path):
    project = tmp_path / "proj"
    settings_file = project / ".claude" / "settings.json"
    settings_file.parent.mkdir(parents=True)
    original = {
        "permissions": {"allow": ["Bash(make:*)"]},
        "hooks": {
            "SessionEnd": [{"hooks": [{"type": "command", "command": "notify-send bye"}]}],
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard.sh"}]}],
        },
    }
    settings_file.write_text(json.dumps(original))
    settings_file.chmod(0o640)
    install.install("project", project)
    install.install("project", project)  # twice: still one entry per event
    settings = json.loads(settings_file.read_text())
    assert settings_file.stat().st_mode & 0o777 == 0o640
    commands = [h["command"] for g in settings["hooks"]["SessionEnd"] for h in g["hooks"]]
    assert commands[0] == "notify-send bye" and sum(install.HOOK_MARK in c for c in commands) == 1
    assert sum(install.HOOK_MARK in h["command"] for g in settings["hooks"]["SessionStart"] for h in g["hooks"]) == 1
    assert settings["hooks"]["PreToolUse"] == original["hooks"]["PreToolUse"] and settings["permissions"] == original["permissions"]
    skill = install.skill_path("project", project)
    assert skill.read_text().startswith("---\nname: upload-context\n")
    changed = install.uninstall("project", project)
    assert json.loads(settings_file.read_text()) == original
    assert skill in changed and not skill.exists() and not skill.parent.exists()
    assert install.uninstall("project", project) == []


def test_install_refuses_to_overwrite_broken_settings(home, tmp_path):
    settings_file = tmp_path / "p" / ".claude" / "settings.json"
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text("{ not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        install.install("project", tmp_path / "p")
    assert settings_file.read_text() == "{ not json"


def test_install_hook_cli_user_scope(home, capsys):
    assert main(["transcripts", "install-hook", "--user"]) == 0
    user_settings = home / "claude-home" / "settings.json"
    assert install.HOOK_MARK in user_settings.read_text()
    assert main(["transcripts", "install-hook", "--user", "--remove"]) == 0
    assert not user_settings.exists() and not (home / "claude-home" / "skills").exists()  # nothing was there before
    assert "removed from" in capsys.readouterr().out


def test_upload_cli_all_latest_and_by_id(home, tmp_path, corpus, capsys):
    project = tmp_path / "myproj"
    project.mkdir()
    folder = project_transcripts_dir(project)
    folder.mkdir(parents=True)
    for i, path in enumerate(corpus[:3]):
        target = folder / path.name
        target.write_bytes(path.read_bytes())
        os.utime(target, (1_700_000_000 + i, 1_700_000_000 + i))
    uri = f"file://{tmp_path}/store"
    assert main(["transcripts", "upload", "--latest", "--cwd", str(project), "--to", uri]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 1
    assert [r.session_id for r in session_index(uri)] == [corpus[2].stem]
    assert main(["transcripts", "upload", "--all", "--cwd", str(project), "--to", uri]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["added"], printed["unchanged"], printed["version"]) == (2, 1, 2)
    assert main(["transcripts", "upload", corpus[0].stem, "--cwd", str(project), "--to", uri]) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 1
    with pytest.raises(SystemExit, match="no session nope"):
        main(["transcripts", "upload", "nope", "--cwd", str(project), "--to", uri])
    with pytest.raises(SystemExit, match="--latest or --all"):
        main(["transcripts", "upload", "--cwd", str(project), "--to", uri])
