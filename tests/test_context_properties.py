"""Every Context operation equals the same operation on the plain str (hypothesis).

Texts mix ASCII, multi-byte UTF-8, emoji, every kind of line break str.splitlines knows,
empty lines and the empty text; segment sizes are tiny so most operations cross many
segment boundaries. Both layouts are exercised.
"""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlmlab.context import Context
from rlmlab.layout import write_context
from rlmlab.stores import MemoryStore

ALPHABET = ["a", "b", "a", "b", "c", " ", "\n", "\n", "\r", "\r\n", "é", "€", "🎉", "\u2028", "\x85", "\t", "aa", "ab"]

texts = st.lists(st.sampled_from(ALPHABET), max_size=120).map("".join) | st.text(max_size=60)
segment_sizes = st.integers(min_value=1, max_value=48)
layouts = st.sampled_from(["segments", "single"])
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(text: str, segment_bytes: int, layout: str, traced: bool = True) -> Context:
    store = MemoryStore(f"prop-{uuid.uuid4().hex}")
    manifest = write_context(text, store, layout=layout, segment_bytes=segment_bytes, progress=False)
    fetch = "coalesced" if layout == "single" else "sequential"
    return Context.from_manifest(store, manifest, fetch=fetch, workers=2, prefetch="none", trace=traced)


def positions(n: int):
    """Indices as model code writes them: None, in range, negative, and out of range."""
    return st.none() | st.integers(min_value=-n - 3, max_value=n + 3)


def substrings(text: str):
    """Needles likely to occur (pieces of the text) and ones that may not."""
    if not text:
        return st.sampled_from(["", "a", "\n"])
    return st.one_of(
        st.tuples(st.integers(0, len(text)), st.integers(0, 6)).map(lambda t: text[t[0] : t[0] + t[1]]),
        st.sampled_from(["", "a", "aa", "aaa", "ab", "aba", "\n", "\r\n", "é🎉", "zz", "\n\n"]),
    )


@PROPERTY
@given(text=texts, segment_bytes=segment_sizes, layout=layouts, traced=st.booleans(), data=st.data())
def test_indexing_and_slicing(text, segment_bytes, layout, traced, data):
    with build(text, segment_bytes, layout, traced) as ctx:  # slicing has a traced and an untraced path
        n = len(text)
        assert len(ctx) == n
        for _ in range(8):
            start, stop = data.draw(positions(n)), data.draw(positions(n))
            step = data.draw(st.none() | st.sampled_from([1, 2, 3, -1, -2, -5]))
            assert ctx[start:stop:step] == text[start:stop:step]
        for _ in range(4):
            i = data.draw(st.integers(min_value=-n - 2, max_value=n + 1))
            if -n <= i < n:
                assert ctx[i] == text[i]
            else:
                with pytest.raises(IndexError):
                    ctx[i]


@PROPERTY
@given(text=texts, segment_bytes=segment_sizes, layout=layouts, data=st.data())
def test_search_operations(text, segment_bytes, layout, data):
    with build(text, segment_bytes, layout) as ctx:
        n = len(text)
        for _ in range(6):
            sub = data.draw(substrings(text))
            start, end = data.draw(positions(n)), data.draw(positions(n))
            assert ctx.find(sub, start, end) == text.find(sub, start, end), (sub, start, end)
            assert ctx.rfind(sub, start, end) == text.rfind(sub, start, end), (sub, start, end)
            assert ctx.count(sub, start, end) == text.count(sub, start, end), (sub, start, end)
            assert ctx.startswith(sub, start, end) == text.startswith(sub, start, end), (sub, start, end)
            assert ctx.endswith(sub, start, end) == text.endswith(sub, start, end), (sub, start, end)
            assert (sub in ctx) == (sub in text)
            assert ctx.find(sub) == text.find(sub) and ctx.count(sub) == text.count(sub)
            for method in ("index", "rindex"):
                try:
                    expected = getattr(text, method)(sub, start, end)
                except ValueError:
                    with pytest.raises(ValueError):
                        getattr(ctx, method)(sub, start, end)
                else:
                    assert getattr(ctx, method)(sub, start, end) == expected
        pair = (data.draw(substrings(text)), data.draw(substrings(text)))
        assert ctx.startswith(pair) == text.startswith(pair)
        assert ctx.endswith(pair, 1) == text.endswith(pair, 1)


@PROPERTY
@given(text=texts, segment_bytes=segment_sizes, layout=layouts, data=st.data())
def test_split_and_lines(text, segment_bytes, layout, data):
    with build(text, segment_bytes, layout) as ctx:
        sep = data.draw(st.none() | substrings(text).filter(bool))
        maxsplit = data.draw(st.integers(min_value=-1, max_value=3))
        assert ctx.split(sep, maxsplit) == text.split(sep, maxsplit)
        assert ctx.rsplit(sep, maxsplit) == text.rsplit(sep, maxsplit)
        assert ctx.split() == text.split()
        assert ctx.splitlines() == text.splitlines()
        assert ctx.splitlines(True) == text.splitlines(True)
        lines = text.splitlines(keepends=True)
        assert ctx.manifest.total_lines == len(lines)
        for _ in range(5):
            start, stop = data.draw(positions(len(lines))), data.draw(positions(len(lines)))
            assert ctx.lines(start, stop) == "".join(lines[start:stop]), (start, stop)
        assert ctx.lines() == text


PATTERNS = [r"\w+", r"a+", r"ab|ba", r"\n\n", r"(é|🎉)", r"^a.*$", r"(?s)b.+?c", r"\s", r"[^\n]*\n"]


@PROPERTY
@given(text=texts, segment_bytes=segment_sizes, layout=layouts, pattern=st.sampled_from(PATTERNS),
       flags=st.sampled_from([0, re.M, re.I | re.S]))
def test_regex_helpers(text, segment_bytes, layout, pattern, flags):
    with build(text, segment_bytes, layout) as ctx:
        assert ctx.findall(pattern, flags) == re.findall(pattern, text, flags)
        assert [m.span() for m in ctx.finditer(pattern, flags)] == [m.span() for m in re.finditer(pattern, text, flags)]
        found, expected = ctx.search(pattern, flags), re.search(pattern, text, flags)
        assert (found and found.span()) == (expected and expected.span())
        compiled = re.compile(pattern, flags)
        assert ctx.findall(compiled) == compiled.findall(text)


@PROPERTY
@given(text=texts, segment_bytes=segment_sizes, layout=layouts)
def test_whole_text_views(text, segment_bytes, layout):
    with build(text, segment_bytes, layout) as ctx:
        assert str(ctx) == text
        assert "".join(ctx) == text and list(ctx) == list(text)
        assert ctx == text and text == ctx
        assert ctx != text + "x"
        if text:
            assert ctx != text[:-1] + ("y" if text[-1] != "y" else "z")
        assert ctx.upper() == text.upper() and ctx.encode() == text.encode()
        assert ctx + "!" == text + "!" and "!" + ctx == "!" + text
        assert f"{ctx}" == text and f"{ctx:>130}" == f"{text:>130}"


def test_type_errors_match_str():
    with build("abc\n", 2, "segments") as ctx:
        with pytest.raises(TypeError, match="requires string"):
            1 in ctx
        with pytest.raises(TypeError, match="must be str"):
            ctx.find(1)
        with pytest.raises(TypeError, match="indices must be integers"):
            ctx["a"]
        with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
            ctx.nonexistent
        with pytest.raises(TypeError, match="unhashable"):
            hash(ctx)
