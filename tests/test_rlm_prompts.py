"""What the root is told about its context: metadata only, and how to use a str-like one."""

from __future__ import annotations

import re

from rlmlab.context import open_context
from rlmlab.layout import write_context
from rlmlab.rlm import prompts


def test_plain_str_gets_no_str_like_note():
    assert prompts.context_kind("abc") == "a str of length 3"


def test_remote_context_tells_the_model_how_to_use_re(tmp_path):
    text = "alpha ERROR one\nbeta\nERROR two\n" * 50
    write_context(text, "mem://prompts-note", segment_bytes=64, progress=False)
    with open_context("mem://prompts-note") as ctx:
        kind = prompts.context_kind(ctx)
        assert kind.startswith(f"a Context of length {len(text):,}")
        assert "context.findall(p)" in kind
        # the advice it gives works and agrees with re on the plain text
        assert ctx.findall(r"ERROR \w+") == re.findall(r"ERROR \w+", text)
        # the root sees the length and a bounded preview, never the whole text
        description = prompts.describe(ctx)
        assert f"{len(text):,} characters" in description
        assert repr(text[: prompts.PREVIEW_CHARS]) in description and text not in description
