"""Reading a root model's reply: its ```repl blocks and its FINAL(...) / FINAL_VAR(...).

Models write termination in untidy ways; each case below is one the reference library
broke on: FINAL in the middle of a sentence, FINAL after a code block in the same reply
(the caller runs the code first), parentheses inside the answer, a quoted answer, and a
closing parenthesis that never comes. FINAL inside a code block is code, not prose: the
REPL's own `FINAL` function handles it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

_CODE_BLOCK = re.compile(r"```repl[ \t]*\r?\n(.*?)(?:\r?\n)?[ \t]*```", re.DOTALL)
_FINAL = re.compile(r"\b(FINAL_VAR|FINAL)\s*\(")


@dataclass(frozen=True)
class Final:
    """A termination the reply asked for: a literal answer, or the name of a REPL variable."""

    kind: str  # "answer" or "variable"
    value: str


def code_blocks(reply: str) -> list[str]:
    """The ```repl blocks of a reply, in order, without their fences."""
    return [match.group(1).strip("\n") for match in _CODE_BLOCK.finditer(reply) if match.group(1).strip()]


def prose(reply: str) -> str:
    """The reply with its code blocks removed (FINAL in code is the REPL's business)."""
    return _CODE_BLOCK.sub("\n", reply)


def find_final(reply: str) -> Final | None:
    """The first FINAL(...) or FINAL_VAR(...) written in the reply's prose, if any."""
    text = prose(reply)
    for match in _FINAL.finditer(text):
        inner = _balanced(text, match.end())
        if inner is None:
            continue
        kind = "variable" if match.group(1) == "FINAL_VAR" else "answer"
        value = _unquote(inner.strip())
        if kind == "variable":
            value = value.strip().strip("`")
            if not value.isidentifier():
                continue
        return Final(kind, value)
    return None


def _balanced(text: str, start: int) -> str | None:
    """Text from `start` up to its matching ')'; None for an empty FINAL().

    Parentheses inside string literals don't count; an apostrophe inside a word ("user's")
    is not a string. If quotes leave the parenthesis unclosed, they are ignored; if it still
    never closes, the rest of the reply is the answer: a model cut off mid-answer should
    still end the run with what it wrote.
    """
    end = _closing(text, start, quotes=True)
    if end is None:
        end = _closing(text, start, quotes=False)
    inner = text[start:end] if end is not None else text[start:].rstrip()
    return inner if inner.strip() else None


def _closing(text: str, start: int, *, quotes: bool) -> int | None:
    depth, quote, i = 1, None, start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif text.startswith(quote, i):
                i += len(quote) - 1
                quote = None
        elif quotes and ch in "\"'" and not (i > 0 and text[i - 1].isalnum()):
            quote = text[i : i + 3] if text.startswith(ch * 3, i) else ch
            i += len(quote) - 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _unquote(value: str) -> str:
    """'"42"' → '42': a FINAL written as a Python string literal means the string."""
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        try:
            literal = ast.literal_eval(value)
        except (SyntaxError, ValueError):
            return value
        if isinstance(literal, str):
            return literal
    return value
