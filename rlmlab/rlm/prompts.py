"""What the root model is told: the system prompt, the context's metadata, and the turn notes.

The root never sees the context's text, only its type, length and a short preview.
Describing a context is duck-typed (type name, `len`, a slice), so plain str / list /
dict and an rlmlab `Context` (str-like, remote) are described alike without importing it.
"""

from __future__ import annotations

REPL_OFFERS = """\
- `context`: the data ({context_kind}); slice it, search it, loop over it.
- `llm_query(prompt, model=None) -> str`: ask a sub-model. It can read far more text than \
you should print (hundreds of thousands of characters), so hand it large chunks.
- `llm_query_batched(prompts, model=None) -> list[str]`: many independent sub-queries at \
once, answered concurrently, in order. Prefer it to a loop of llm_query.
- `rlm_query(prompt, context=None)` and `rlm_query_batched(prompts, contexts=None)`: like \
llm_query, but the helper gets its own REPL (pass it a context to explore).
- `SHOW_VARS()`: the variables you have defined.
A failed sub-call returns a string starting with "Error:" instead of raising."""

SYSTEM_PROMPT = (
    """\
You answer a query about a context that is too large to read at once. The context is not \
in this conversation: it is the variable `context` in a Python REPL that you drive.

Write Python in ```repl fenced blocks; each block runs in the same persistent namespace and \
you see what it prints (long output is cut, so print summaries, not raw text). In the REPL:
"""
    + REPL_OFFERS
    + """

Work step by step: look at the context's shape, split it, query sub-models over the parts, \
combine their answers in variables. When you are done, write one of these outside a code block:
FINAL(your answer)       -- the answer itself
FINAL_VAR(variable_name) -- the answer is the value of a REPL variable you created
You may also call FINAL(...) or FINAL_VAR("name") inside a ```repl block. Do not answer \
before you have looked at the context."""
)

# The root as a Claude agent (rlmlab.rlm.agent): the same REPL, driven through two tools.
AGENT_SYSTEM_PROMPT = (
    """\
You answer a query about a context that is too large to read at once. The context is not \
in this conversation: it is the variable `context` in a Python REPL that you drive with tools.

The `python` tool runs its `code` argument in the REPL; every call shares one persistent \
namespace and returns what the code printed (long output is cut, so print summaries, not raw \
text) and the names of the variables defined so far. In the REPL:
"""
    + REPL_OFFERS
    + """

Work step by step: look at the context's shape, split it, query sub-models over the parts, \
combine their answers in variables. When you are done, call the `final_answer` tool once, with \
either `answer` (the answer itself) or `variable` (the name of a REPL variable that holds it). \
Do not answer before you have looked at the context, and do not end your turn without \
calling `final_answer`."""
)

FIRST_TURN = """\
Context: {description}

Query: {query}

Start by looking at the context in the REPL. Your next action:"""

NEXT_TURN = "Iteration {iteration} of {max_iterations}. Continue, or give FINAL(...) / FINAL_VAR(...) when you have the answer."
NO_CODE = "Your reply had no ```repl block and no FINAL(...). Write code in a ```repl block, or finish with FINAL(answer)."
MISSING_VARIABLE = "FINAL_VAR({name}) names no variable in the REPL, so the run continues. Assign it in a ```repl block first. Variables now: {variables}."
LAST_CALL = "You have used every iteration. Give your best final answer now as FINAL(answer), based on what you found."
AGENT_MISSING_VARIABLE = "final_answer names `{name}`, which is no variable in the REPL, so the run continues. Assign it with the python tool first. Variables now: {variables}."
AGENT_LAST_CALL = "You have used every python call of this run ({max_iterations}); this code did not run. Call final_answer now with your best answer, based on what you found."
CHILD_QUERY = "Answer this request about the data in `context`:\n\n{prompt}"

PREVIEW_CHARS = 200


def describe(context) -> str:
    """Type, length and a short preview of a context, without reading more than the preview."""
    kind = type(context).__name__
    try:
        length = len(context)
    except TypeError:
        return f"a {kind} (no length)"
    if isinstance(context, dict):
        keys = list(context)[:10]
        return f"a dict with {length:,} keys; first keys: {keys!r}"
    if isinstance(context, (list, tuple)):
        sizes = [len(item) if hasattr(item, "__len__") else 1 for item in context[:1000]]
        shown = f"; first item: {_preview(context[0])}" if length else ""
        return f"a {kind} of {length:,} items (the first {len(sizes):,} total {sum(sizes):,} in size){shown}"
    try:
        head = context[:PREVIEW_CHARS]
    except Exception:  # a context that cannot be sliced is still described by type and length
        return f"a {kind} of length {length:,}"
    unit = "characters" if isinstance(head, str) else "items"
    return f"a {kind} of {length:,} {unit}; it begins: {_preview(head)}"


STR_LIKE_NOTE = (
    "; it behaves like a str (slicing, find, count, split, `in`), but the `re` module needs a real str: "
    "use context.search(p), context.findall(p), context.finditer(p), or re on a slice such as context[a:b]"
)


def context_kind(context) -> str:
    if not hasattr(context, "__len__"):
        return type(context).__name__
    kind = f"a {type(context).__name__} of length {len(context):,}"
    # a remote Context is str-like without being a str, and model code reaches for re.findall(p, context)
    if not isinstance(context, str) and callable(getattr(context, "findall", None)):
        kind += STR_LIKE_NOTE
    return kind


def _preview(value) -> str:
    text = value if isinstance(value, str) else repr(value)
    cut = text[:PREVIEW_CHARS]
    return repr(cut) + (" ..." if len(text) > PREVIEW_CHARS else "")
