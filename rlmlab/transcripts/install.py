"""Install (and remove) the SessionEnd/SessionStart hooks and the `/upload-context` skill.

Settings files hold other tools' hooks too: entries are recognised by their command (it runs
`rlmlab transcripts hook`), added once, and removed without touching anything else; groups
and events this left empty are removed as well. An unreadable settings file is an error,
never overwritten.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from .config import claude_dir

HOOK_MARK = "rlmlab transcripts hook"
EVENTS = {"SessionEnd": "session-end", "SessionStart": "session-start"}
SKILL_NAME = "upload-context"
_SKILL_MARK = "<!-- installed by rlmlab transcripts install-hook -->"


def settings_path(scope: str, cwd: str | os.PathLike | None = None) -> Path:
    if scope == "project":
        return Path(cwd or os.getcwd()) / ".claude" / "settings.json"
    if scope == "user":
        return claude_dir() / "settings.json"
    raise ValueError(f"unknown scope {scope!r}: use 'project' or 'user'")


def skill_path(scope: str, cwd: str | os.PathLike | None = None) -> Path:
    return settings_path(scope, cwd).parent / "skills" / SKILL_NAME / "SKILL.md"


def hook_command(event: str) -> str:
    """An absolute interpreter, so the hook works whatever PATH Claude Code runs it with."""
    return f"{shlex.quote(sys.executable)} -m rlmlab transcripts hook {EVENTS[event]}"


def install(scope: str, cwd: str | os.PathLike | None = None) -> list[Path]:
    path = settings_path(scope, cwd)
    settings = _read(path)
    hooks = _strip_ours(settings).setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ValueError(f"{path}: 'hooks' is {type(hooks).__name__}, expected an object")
    for event in EVENTS:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise ValueError(f"{path}: hooks.{event} is {type(groups).__name__}, expected a list")
        hook = {"type": "command", "command": hook_command(event)}
        if event == "SessionStart":
            hook["timeout"] = 10
        groups.append({"hooks": [hook]})
    _write(path, settings)
    skill = skill_path(scope, cwd)
    skill.parent.mkdir(parents=True, exist_ok=True)
    skill.write_text(_skill_text(), encoding="utf-8")
    return [path, skill]


def uninstall(scope: str, cwd: str | os.PathLike | None = None) -> list[Path]:
    changed = []
    path = settings_path(scope, cwd)
    if path.is_file():
        settings = _read(path)
        before = json.dumps(settings, sort_keys=True)
        _strip_ours(settings)
        if json.dumps(settings, sort_keys=True) != before:
            if settings:
                _write(path, settings)
            else:
                path.unlink()  # only our hooks were in it: leave no empty file behind
            changed.append(path)
    skill = skill_path(scope, cwd)
    if skill.is_file() and _SKILL_MARK in skill.read_text(encoding="utf-8"):
        skill.unlink()
        for folder in (skill.parent, skill.parent.parent):  # skills/upload-context, then skills/ if now empty
            try:
                folder.rmdir()
            except OSError:
                break  # the user keeps other files there
        changed.append(skill)
    return changed


def _strip_ours(settings: dict) -> dict:
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return settings
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                inner = [h for h in group["hooks"] if not (isinstance(h, dict) and HOOK_MARK in str(h.get("command", "")))]
                if not inner and group["hooks"]:
                    continue  # the group held only our hooks
                group = {**group, "hooks": inner}
            kept.append(group)
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if not hooks:
        del settings["hooks"]
    return settings


def _read(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8") or "{}")
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); fix it by hand, rlmlab will not overwrite it") from None
    if not isinstance(settings, dict):
        raise ValueError(f"{path} holds {type(settings).__name__}, expected a JSON object")
    return settings


def _write(path: Path, settings: dict) -> None:
    """Atomically, keeping the file's permissions (a new file gets the usual 0644 less the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        mode = path.stat().st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".settings-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(settings, indent=2) + "\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _skill_text() -> str:
    upload = f"{shlex.quote(sys.executable)} -m rlmlab transcripts upload --latest"
    return f"""---
name: {SKILL_NAME}
description: Upload this Claude Code session (secrets redacted) to the team's shared context store, so teammates' agents can read what was done and decided here. Use when the user asks to upload, share or save the session context.
---
{_SKILL_MARK}

# Upload this session to the team context

1. Run `{upload}` from the project directory. It uploads the newest session transcript of
   this project (this session) to the store named by `RLMLAB_STORE` or `~/.rlmlab/config.json`;
   add `--to s3://BUCKET/PREFIX` to choose another store.
2. Report what it printed: the manifest version and whether the session was added, replaced
   (it had grown since an earlier upload) or unchanged.
3. If it fails because no store is configured, tell the user to set `RLMLAB_STORE` or run
   `rlmlab transcripts upload --to URI` themselves. Do not retry with guessed URIs.
"""
