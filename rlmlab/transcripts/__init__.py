"""Coding-agent session transcripts: parse, render, redact, synthesise, upload."""

from .claude_code import load
from .redact import redact
from .render import parse_text
from .session import Identity, Message, Session, Subagent, ToolCall

__all__ = ["Identity", "Message", "Session", "Subagent", "ToolCall", "load", "parse_text", "redact"]
