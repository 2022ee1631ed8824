"""The parsed shape of one coding-agent session: metadata, messages, subagents, counts.

Parsers (claude_code.py) build it; render.py turns it into the team's text format or JSON.
Keeping the model apart from both lets a session come from a JSONL file or from text that
was uploaded earlier, and be rendered the same way.
"""

from __future__ import annotations

import functools
import getpass
import os
import platform
import socket
import subprocess
from collections import Counter
from dataclasses import dataclass, field

METADATA_FIELDS = (
    "session_id",
    "developer",
    "email",
    "hostname",
    "platform",
    "os_user",
    "git_branch",
    "project_dir",
    "claude_version",
    "message_count",
    "start_time",
    "end_time",
    "uploaded_at",
)


@dataclass(frozen=True)
class Identity:
    """Who ran the session and where: what lets a reader tell developers apart."""

    developer: str = ""
    email: str = ""
    hostname: str = ""
    platform: str = ""
    os_user: str = ""

    @staticmethod
    def local(project_dir: str | None = None) -> "Identity":
        """This machine's identity; developer and email from git config (the repo's, else global)."""
        return _local_identity(project_dir or "")


@functools.lru_cache(maxsize=64)
def _local_identity(project_dir: str) -> Identity:
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = ""
    return Identity(
        developer=_git_config("user.name", project_dir) or os_user,
        email=_git_config("user.email", project_dir),
        hostname=socket.gethostname(),
        platform=platform.system(),
        os_user=os_user,
    )


def _git_config(key: str, directory: str) -> str:
    cwd = directory if directory and os.path.isdir(directory) else None
    try:
        done = subprocess.run(["git", "config", "--get", key], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@dataclass
class ToolCall:
    """One tool use, kept as a single line: the tool's name and its key input, plus how it ended."""

    tool_use_id: str
    name: str
    summary: str
    is_error: bool = False
    error: str = ""

    def line(self) -> str:
        text = f"[tool] {self.name}: {self.summary}" if self.summary else f"[tool] {self.name}"
        if self.is_error:
            text += f" -> error: {self.error}" if self.error else " -> error"
        return text


@dataclass
class Message:
    """One rendered turn. `role` is the upper-case label the text format prints (USER, ASSISTANT, ...)."""

    role: str
    timestamp: str
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    thinking: str = ""
    uuid: str = ""
    message_id: str = ""

    def body(self) -> str:
        parts = [self.text] if self.text else []
        parts.extend(call.line() for call in self.tool_calls)
        return "\n".join(parts)

    def is_empty(self) -> bool:
        return not self.text and not self.tool_calls


@dataclass
class Subagent:
    """A subagent's own conversation (Task tool), rendered as a marked section after the main one."""

    agent_id: str
    messages: list[Message] = field(default_factory=list)
    source: str = ""  # "file", "sidechain" or "progress": where its lines came from


@dataclass
class Session:
    session_id: str = ""
    identity: Identity = field(default_factory=Identity)
    git_branch: str = ""
    project_dir: str = ""
    claude_version: str = ""
    uploaded_at: str = ""
    messages: list[Message] = field(default_factory=list)
    subagents: list[Subagent] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)  # `summary` entries: Claude Code's session titles
    permission_mode: str = ""
    path: str = ""
    entry_counts: Counter = field(default_factory=Counter)  # lines read, by `type`
    unknown_types: Counter = field(default_factory=Counter)  # `type`s this parser does not know
    skipped: Counter = field(default_factory=Counter)  # malformed lines, by reason

    @property
    def message_count(self) -> int:
        return len(self.messages)

    @property
    def tool_call_count(self) -> int:
        return sum(len(m.tool_calls) for m in self.messages)

    @property
    def start_time(self) -> str:
        return self.messages[0].timestamp if self.messages else ""

    @property
    def end_time(self) -> str:
        return self.messages[-1].timestamp if self.messages else ""

    def metadata(self) -> dict:
        ident = self.identity
        values = {
            "session_id": self.session_id,
            "developer": ident.developer,
            "email": ident.email,
            "hostname": ident.hostname,
            "platform": ident.platform,
            "os_user": ident.os_user,
            "git_branch": self.git_branch,
            "project_dir": self.project_dir,
            "claude_version": self.claude_version,
            "message_count": self.message_count,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "uploaded_at": self.uploaded_at,
        }
        return {name: values[name] for name in METADATA_FIELDS}

    def stats(self) -> dict:
        """What was read and what was left out: the counts a parse reports."""
        return {
            "session_id": self.session_id,
            "lines": sum(self.entry_counts.values()) + sum(self.skipped.values()) + sum(self.unknown_types.values()),
            "messages": self.message_count,
            "tool_calls": self.tool_call_count,
            "subagents": len(self.subagents),
            "subagent_messages": sum(len(s.messages) for s in self.subagents),
            "skipped_lines": sum(self.skipped.values()),
            "skipped": dict(self.skipped),
            "unknown_types": dict(self.unknown_types),
            "entries": dict(self.entry_counts),
        }

    def to_text(self, *, subagents: bool = True) -> str:
        from .render import render_text

        return render_text(self, subagents=subagents)

    def to_json(self, **dumps_kwargs) -> str:
        from .render import render_json

        return render_json(self, **dumps_kwargs)
