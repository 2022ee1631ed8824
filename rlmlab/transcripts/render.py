"""The team's session text format (`SESSION METADATA` header, then `[ROLE] [time]` turns) and JSON.

The text format is the one the seed's upload script produced (see
`../shared/data/transcripts/session-86b31bd5.txt`): contexts already uploaded in it stay
readable, and `parse_text` reads it back, so a rendered session round-trips.
"""

from __future__ import annotations

import json
import re

from .session import METADATA_FIELDS, Identity, Message, Session, Subagent

RULE = "=" * 72
_KEY_WIDTH = 17  # "claude_version:  " — the widest key plus two spaces
_SEPARATOR = "\n\n---\n"
_TURN = re.compile(r"^\[([A-Z]+)\] \[([^\]\n]*)\]\n", re.MULTILINE)
_SUBAGENT = re.compile(rf"^{RULE}\nSUBAGENT (\S+) \((\d+) messages?\)\n{RULE}\n\n", re.MULTILINE)


def render_text(session: Session, *, subagents: bool = True) -> str:
    parts = [render_header(session), _render_turns(session.messages)]
    if subagents:
        for sub in session.subagents:
            parts.append("\n" + _render_subagent_header(sub) + _render_turns(sub.messages))
    return "".join(parts)


def render_header(session: Session) -> str:
    lines = [RULE, "SESSION METADATA", RULE]
    for name, value in session.metadata().items():
        lines.append(f"{name + ':':<{_KEY_WIDTH}}{value}")
    lines.append(RULE)
    return "\n".join(lines) + "\n\n"


def _render_subagent_header(sub: Subagent) -> str:
    noun = "message" if len(sub.messages) == 1 else "messages"
    return f"{RULE}\nSUBAGENT {sub.agent_id} ({len(sub.messages)} {noun})\n{RULE}\n\n"


def _render_turns(messages: list[Message]) -> str:
    return "\n".join(f"[{m.role}] [{m.timestamp}]\n{m.body()}{_SEPARATOR}" for m in messages)


def render_json(session: Session, **dumps_kwargs) -> str:
    return json.dumps(session_to_dict(session), ensure_ascii=False, **dumps_kwargs)


def session_to_dict(session: Session) -> dict:
    return {
        "metadata": session.metadata(),
        "titles": session.titles,
        "permission_mode": session.permission_mode,
        "stats": session.stats(),
        "messages": [_message_dict(m) for m in session.messages],
        "subagents": [
            {"agent_id": s.agent_id, "source": s.source, "messages": [_message_dict(m) for m in s.messages]}
            for s in session.subagents
        ],
    }


def _message_dict(message: Message) -> dict:
    out = {"role": message.role, "timestamp": message.timestamp, "text": message.text}
    if message.thinking:
        out["thinking"] = message.thinking
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.tool_use_id, "name": c.name, "summary": c.summary, "is_error": c.is_error, "error": c.error}
            for c in message.tool_calls
        ]
    return out


# -- reading the text format back --------------------------------------------------------


def parse_text(text: str) -> Session:
    """Read one rendered session back. Tool lines stay part of the turn's text."""
    header, body = _split_header(text)
    session = Session(
        session_id=header.get("session_id", ""),
        identity=Identity(**{k: header.get(k, "") for k in ("developer", "email", "hostname", "platform", "os_user")}),
        git_branch=header.get("git_branch", ""),
        project_dir=header.get("project_dir", ""),
        claude_version=header.get("claude_version", ""),
        uploaded_at=header.get("uploaded_at", ""),
    )
    sections = list(_SUBAGENT.finditer(body))
    main_end = sections[0].start() - 1 if sections else len(body)
    session.messages = _parse_turns(body[:main_end])
    for i, match in enumerate(sections):
        end = sections[i + 1].start() - 1 if i + 1 < len(sections) else len(body)
        session.subagents.append(Subagent(match.group(1), _parse_turns(body[match.end() : end]), source="text"))
    declared = header.get("message_count")
    if declared and declared.isdigit() and int(declared) != len(session.messages):
        raise ValueError(f"header says message_count {declared} but the text holds {len(session.messages)} turns")
    return session


def _split_header(text: str) -> tuple[dict, str]:
    opening = f"{RULE}\nSESSION METADATA\n{RULE}\n"
    if not text.startswith(opening):
        raise ValueError("not a rendered session: it does not start with the SESSION METADATA header")
    end = text.find(f"\n{RULE}\n", len(opening) - 1)
    if end < 0:
        raise ValueError("the SESSION METADATA header is not closed by a rule line")
    header = {}
    for line in text[len(opening) : end].split("\n"):
        name, sep, value = line.partition(":")
        if not sep or name not in METADATA_FIELDS:
            raise ValueError(f"unexpected line in the SESSION METADATA header: {line!r}")
        header[name] = value.strip()
    return header, text[end + len(RULE) + 3 :]


def _parse_turns(body: str) -> list[Message]:
    """Split on turn headers that open the body or follow a `---` separator (Markdown rules inside a turn stay)."""
    starts = [m for m in _TURN.finditer(body) if m.start() == 0 or body.endswith("---\n\n", 0, m.start())]
    messages = []
    for i, match in enumerate(starts):
        end = starts[i + 1].start() - 1 if i + 1 < len(starts) else len(body)
        chunk = body[match.end() : end]
        if not chunk.endswith(_SEPARATOR):
            raise ValueError(f"turn at {match.group(2)!r} is not closed by a '---' separator")
        messages.append(Message(match.group(1), match.group(2), chunk[: -len(_SEPARATOR)]))
    return messages
