"""Read a Claude Code session JSONL file into a `Session`.

The format is internal to Claude Code and changes between versions, so this reader keeps
what a team reader needs (who said what, which tools ran on what) and skips, but counts,
everything else: unknown entry types, and malformed lines (truncated, not JSON, not an
object, wrong field types, not UTF-8). Nothing in a file makes it raise.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .session import Identity, Message, Session, Subagent, ToolCall

KNOWN_TYPES = frozenset(
    {
        "user",
        "assistant",
        "system",
        "summary",
        "attachment",
        "progress",
        "file-history-snapshot",
        "queue-operation",
        "permission-mode",
        "last-prompt",
    }
)

# Blocks the harness injects into user turns; nobody typed them.
_INJECTED = re.compile(
    r"<(system-reminder|local-command-caveat)>.*?</\1>\s*",
    re.DOTALL,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SUMMARY_CHARS = 200
_ERROR_CHARS = 160


class MalformedEntry(ValueError):
    """A line that is JSON but not shaped like a Claude Code entry."""


def load(path: str | Path, *, identity: Identity | None = None, subagents: bool = True) -> Session:
    """Parse one session file (plus its subagent files) into a Session.

    `identity` is who ran it; by default this machine's, with developer and email from git
    config in the session's project directory.
    """
    path = Path(path)
    parser = _Parser()
    parser.feed_file(path)
    session = parser.session
    session.path = str(path)
    if not session.session_id:
        session.session_id = path.stem
    if subagents:
        from_files = {}
        for agent_path in subagent_files(path, session.session_id):
            sub = _Parser(sidechain_is_main=True, tool_calls=parser.tool_calls)
            sub.feed_file(agent_path)
            agent_id = agent_path.stem.removeprefix("agent-")
            from_files[agent_id] = Subagent(agent_id, sub.finish_messages(), source="file")
            session.skipped.update(sub.session.skipped)
            session.unknown_types.update(sub.session.unknown_types)
        inline = {agent_id: sub for agent_id, sub in parser.subagents.items() if agent_id not in from_files}
        session.subagents = list(from_files.values()) + [s for s in _finish_subagents(inline) if s.messages]
    else:
        session.subagents = []
    session.messages = parser.finish_messages()
    session.identity = identity if identity is not None else Identity.local(session.project_dir)
    return session


def subagent_files(path: Path, session_id: str) -> list[Path]:
    """`<session>/subagents/agent-*.jsonl`, and (older versions) `agent-*.jsonl` beside the session."""
    found = []
    nested = path.with_suffix("") / "subagents"
    if nested.is_dir():
        found.extend(sorted(nested.glob("agent-*.jsonl")))
    if not path.name.startswith("agent-"):
        for candidate in sorted(path.parent.glob("agent-*.jsonl")):
            if first_session_id(candidate) == session_id:
                found.append(candidate)
    return found


def first_session_id(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            for raw in handle:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("sessionId"), str):
                    return entry["sessionId"]
    except OSError:
        return None
    return None


def _finish_subagents(builders: dict) -> list[Subagent]:
    return [Subagent(agent_id, b.finish_messages(), source=b.source) for agent_id, b in builders.items()]


class _Conversation:
    """Messages of one conversation (main or a subagent), merging assistant lines by message id."""

    def __init__(self, source: str = ""):
        self.source = source
        self.messages: list[Message] = []
        self.by_message_id: dict[str, Message] = {}

    def finish_messages(self) -> list[Message]:
        return [m for m in self.messages if not m.is_empty()]


class _Parser:
    def __init__(self, *, sidechain_is_main: bool = False, tool_calls: dict | None = None):
        self.session = Session()
        self.main = _Conversation()
        self.subagents: dict[str, _Conversation] = {}
        self.tool_calls: dict[str, ToolCall] = tool_calls if tool_calls is not None else {}
        self.sidechain_is_main = sidechain_is_main

    def finish_messages(self) -> list[Message]:
        return self.main.finish_messages()

    def feed_file(self, path: Path) -> None:
        with open(path, "rb") as handle:
            data = handle.read()
        for raw in data.split(b"\n"):
            if raw.strip():
                self.feed_line(raw)

    def feed_line(self, raw: bytes) -> None:
        skipped = self.session.skipped
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped["not_utf8"] += 1
            return
        try:
            entry = json.loads(line)
        except ValueError:
            skipped["not_json"] += 1
            return
        if not isinstance(entry, dict):
            skipped["not_object"] += 1
            return
        kind = entry.get("type")
        if not isinstance(kind, str):
            skipped["wrong_types"] += 1
            return
        if kind not in KNOWN_TYPES:
            self.session.unknown_types[kind] += 1
            return
        try:
            label = getattr(self, "_on_" + kind.replace("-", "_"))(entry)
        except (MalformedEntry, TypeError, AttributeError, KeyError):
            skipped["wrong_types"] += 1
            return
        self.session.entry_counts[label or kind] += 1

    # -- entry types ------------------------------------------------------------------

    def _envelope(self, entry: dict) -> None:
        session = self.session
        if not session.session_id:
            session.session_id = _optional_str(entry, "sessionId")
        if not session.project_dir:
            session.project_dir = _optional_str(entry, "cwd")
        branch = _optional_str(entry, "gitBranch")
        if branch:
            session.git_branch = branch
        version = _optional_str(entry, "version")
        if version:
            session.claude_version = version

    def _conversation_for(self, entry: dict, default: _Conversation | None = None) -> _Conversation:
        if entry.get("isSidechain") is True and not self.sidechain_is_main:
            return self._subagent(_optional_str(entry, "agentId") or "sidechain", "sidechain")
        return default or self.main

    def _subagent(self, agent_id: str, source: str) -> _Conversation:
        conversation = self.subagents.get(agent_id)
        if conversation is None:
            conversation = self.subagents[agent_id] = _Conversation(source)
        return conversation

    def _on_user(self, entry: dict, conversation: _Conversation | None = None) -> str:
        message = _require_dict(entry, "message")
        content = message.get("content")
        timestamp = _optional_str(entry, "timestamp")
        self._envelope(entry)
        conversation = self._conversation_for(entry, conversation)
        texts: list[str] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for block in content:
                if not isinstance(block, dict):
                    raise MalformedEntry("content block is not an object")
                kind = block.get("type")
                if kind == "text":
                    texts.append(_require_str(block, "text"))
                elif kind == "tool_result":
                    self._record_result(block)
                elif kind in ("image", "document"):
                    texts.append(f"[{kind}]")
        else:
            raise MalformedEntry("message.content is neither text nor a list")
        if entry.get("isMeta") is True:
            return "user/meta"
        text = clean_text("\n\n".join(texts))
        if text:
            role = "SUMMARY" if entry.get("isCompactSummary") is True else "USER"
            conversation.messages.append(Message(role, timestamp, text, uuid=_optional_str(entry, "uuid")))
        return "user"

    def _record_result(self, block: dict) -> None:
        call = self.tool_calls.get(block.get("tool_use_id") or "")
        if call is None or block.get("is_error") is not True:
            return
        call.is_error = True
        call.error = _one_line(_result_text(block.get("content")), _ERROR_CHARS)

    def _on_assistant(self, entry: dict, conversation: _Conversation | None = None) -> str:
        message = _require_dict(entry, "message")
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise MalformedEntry("message.content is neither text nor a list")
        self._envelope(entry)
        conversation = self._conversation_for(entry, conversation)
        message_id = message.get("id") if isinstance(message.get("id"), str) else _optional_str(entry, "uuid")
        turn = conversation.by_message_id.get(message_id) if message_id else None
        if turn is None:
            turn = Message("ASSISTANT", _optional_str(entry, "timestamp"), uuid=_optional_str(entry, "uuid"), message_id=message_id)
            conversation.messages.append(turn)
            if message_id:
                conversation.by_message_id[message_id] = turn
        for block in content:
            if not isinstance(block, dict):
                raise MalformedEntry("content block is not an object")
            kind = block.get("type")
            if kind == "text":
                text = clean_text(_require_str(block, "text"))
                if text:
                    turn.text = f"{turn.text}\n\n{text}" if turn.text else text
            elif kind == "thinking":
                thinking = _optional_str(block, "thinking").strip()
                if thinking:
                    turn.thinking = f"{turn.thinking}\n\n{thinking}" if turn.thinking else thinking
            elif kind in ("tool_use", "server_tool_use"):
                name = _require_str(block, "name")
                tool_input = block.get("input")
                call = ToolCall(_optional_str(block, "id"), name, summarize_tool(name, tool_input if isinstance(tool_input, dict) else {}))
                turn.tool_calls.append(call)
                if call.tool_use_id:
                    self.tool_calls[call.tool_use_id] = call
        return "assistant"

    def _on_system(self, entry: dict) -> str:
        subtype = _optional_str(entry, "subtype")
        self._envelope(entry)
        timestamp = _optional_str(entry, "timestamp")
        conversation = self._conversation_for(entry)
        if subtype == "compact_boundary":
            meta = entry.get("compactMetadata") if isinstance(entry.get("compactMetadata"), dict) else {}
            details = ", ".join(f"{k}={meta[k]}" for k in ("trigger", "preTokens") if k in meta)
            text = "Conversation compacted" + (f" ({details})" if details else "")
            conversation.messages.append(Message("SYSTEM", timestamp, text, uuid=_optional_str(entry, "uuid")))
        elif subtype == "local_command":
            text = clean_text(_optional_str(entry, "content"))
            if text:
                conversation.messages.append(Message("USER", timestamp, text, uuid=_optional_str(entry, "uuid")))
        return f"system/{subtype}" if subtype else "system"

    def _on_summary(self, entry: dict) -> str:
        title = _optional_str(entry, "summary")
        if title:
            self.session.titles.append(title)
        return "summary"

    def _on_progress(self, entry: dict) -> str:
        data = _require_dict(entry, "data")
        kind = _optional_str(data, "type")
        self._envelope(entry)
        if kind == "agent_progress" and isinstance(data.get("message"), dict):
            inner = data["message"]
            agent = self._subagent(_optional_str(data, "agentId") or "progress", "progress")
            inner_kind = inner.get("type")
            if inner_kind == "user":
                self._on_user({**inner, "isSidechain": False}, agent)
            elif inner_kind == "assistant":
                self._on_assistant({**inner, "isSidechain": False}, agent)
        return f"progress/{kind}" if kind else "progress"

    def _on_attachment(self, entry: dict) -> str:
        attachment = entry.get("attachment")
        kind = _optional_str(attachment, "type") if isinstance(attachment, dict) else ""
        return f"attachment/{kind}" if kind else "attachment"

    def _on_permission_mode(self, entry: dict) -> str:
        mode = _optional_str(entry, "permissionMode") or _optional_str(entry, "mode")
        if mode:
            self.session.permission_mode = mode
        return "permission-mode"

    def _on_file_history_snapshot(self, entry: dict) -> str:
        return "file-history-snapshot"

    def _on_queue_operation(self, entry: dict) -> str:
        return "queue-operation"

    def _on_last_prompt(self, entry: dict) -> str:
        return "last-prompt"


# -- text helpers ----------------------------------------------------------------------


def clean_text(text: str) -> str:
    """Drop harness-injected blocks and terminal escape codes; trim the ends."""
    if "<" in text:
        text = _INJECTED.sub("", text)
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return text.strip()


def summarize_tool(name: str, tool_input: dict) -> str:
    """The one input that says what a tool call did (the command, the file, the pattern...)."""
    pick = _KEY_INPUTS.get(name)
    if pick is not None:
        summary = pick(tool_input)
    else:
        scalars = [f"{k}={v}" for k, v in tool_input.items() if isinstance(v, (str, int, float, bool))]
        summary = " ".join(scalars[:2])
    return _one_line(summary, _SUMMARY_CHARS)


def _get(key: str):
    return lambda args: str(args.get(key, ""))


def _with_path(key: str):
    def pick(args: dict) -> str:
        value = str(args.get(key, ""))
        where = args.get("path")
        return f"{value} in {where}" if where else value

    return pick


def _first_question(args: dict) -> str:
    questions = args.get("questions")
    if isinstance(questions, list) and questions and isinstance(questions[0], dict):
        return str(questions[0].get("question", ""))
    return str(args.get("question", ""))


def _todos(args: dict) -> str:
    todos = args.get("todos")
    if not isinstance(todos, list):
        return ""
    active = [t.get("content", "") for t in todos if isinstance(t, dict) and t.get("status") == "in_progress"]
    return f"{len(todos)} todos" + (f", doing: {active[0]}" if active else "")


def _task(args: dict) -> str:
    kind = args.get("subagent_type")
    description = str(args.get("description", ""))
    return f"{description} ({kind})" if kind else description


_KEY_INPUTS = {
    "Bash": _get("command"),
    "Read": _get("file_path"),
    "Write": _get("file_path"),
    "Edit": _get("file_path"),
    "MultiEdit": _get("file_path"),
    "NotebookEdit": _get("notebook_path"),
    "NotebookRead": _get("notebook_path"),
    "Glob": _with_path("pattern"),
    "Grep": _with_path("pattern"),
    "LS": _get("path"),
    "WebFetch": _get("url"),
    "WebSearch": _get("query"),
    "Task": _task,
    "Agent": _task,
    "TodoWrite": _todos,
    "AskUserQuestion": _first_question,
    "ExitPlanMode": lambda args: str(args.get("plan", "")),
    "exit_plan_mode": lambda args: str(args.get("plan", "")),
    "BashOutput": _get("bash_id"),
    "KillShell": _get("shell_id"),
    "KillBash": _get("shell_id"),
    "Skill": _get("skill"),
    "SlashCommand": _get("command"),
}


def _result_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _one_line(text: str, limit: int) -> str:
    text = " ".join(clean_text(text).replace("<tool_use_error>", "").replace("</tool_use_error>", "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _optional_str(mapping: dict, key: str) -> str:
    value = mapping.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedEntry(f"{key} is {type(value).__name__}, not a string")
    return value


def _require_str(mapping: dict, key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str):
        raise MalformedEntry(f"{key} is missing or not a string")
    return value


def _require_dict(mapping: dict, key: str) -> dict:
    value = mapping.get(key)
    if not isinstance(value, dict):
        raise MalformedEntry(f"{key} is missing or not an object")
    return value
