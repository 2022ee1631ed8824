"""Four realistic RLM strategies as scripted model replies, and the corpora they were recorded on.

The shipped recordings in `data/recordings/` are made here by running the real engine
against fake model servers: the root model's replies are fixed text, the sub-model's
replies are a deterministic function of each prompt. Every cell computes its offsets from
`len(context)`, its own searches and its REPL variables, never from numbers printed by an
earlier cell, so a recording replays against any context at any segment size (the
prompts then differ and the replay lists the divergences).

Strategies (one per shipped recording):
  map_reduce  chunk-map-reduce summary with `llm_query_batched`
  regex_reads regex filter over the whole context, then targeted reads around the hits
  bisection   needle search narrowing by bisection, one sub-call per step
  sessions    per-session digests over a store of many session transcripts
"""

from __future__ import annotations

import inspect
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

# -- the strategies ------------------------------------------------------------------------

_POSITIONS = """import re
def positions(pattern):
    found = context.finditer(pattern) if hasattr(context, "finditer") else re.finditer(pattern, context)
    return [m.start() for m in found]
"""

_PEEK = """Let me look at the context before deciding how to read it.
```repl
print(type(context).__name__, len(context), "chars")
print(context[:400])
```"""


@dataclass(frozen=True)
class Strategy:
    name: str
    query: str
    root_replies: tuple[str, ...]
    corpus: str  # which corpus generator it was recorded on (a key of CORPORA)


MAP_REDUCE = Strategy(
    name="map_reduce",
    query="Summarise this service log: what happened, and was anything unusual?",
    corpus="service_log",
    root_replies=(
        _PEEK,
        """It is a long log. I will cut it into line-aligned chunks and summarise them in parallel.
```repl
n = len(context)
parts = max(1, min(16, n // 40_000 + 1))
size = -(-n // parts)
bounds, start = [], 0
while start < n:
    stop = min(n, start + size)
    cut = context.rfind("\\n", start, stop)
    if stop < n and cut > start:
        stop = cut + 1
    bounds.append((start, stop))
    start = stop
prompts = [
    f"Summarise part {i + 1} of {len(bounds)} of a service log in two sentences. Mention anything unusual.\\n\\n{context[a:b]}"
    for i, (a, b) in enumerate(bounds)
]
summaries = llm_query_batched(prompts)
for i, s in enumerate(summaries):
    print(i, s[:300])
```""",
        """Now I combine the partial summaries.
```repl
summary = llm_query("Combine these partial summaries into one short summary of the whole log:\\n" + "\\n".join(summaries))
print(summary)
```""",
        "The combined summary answers the question.\nFINAL_VAR(summary)",
    ),
)

REGEX_READS = Strategy(
    name="regex_reads",
    query="Which errors does this log report, and what caused them?",
    corpus="service_log",
    root_replies=(
        _PEEK,
        "I will find the lines that report problems with a regular expression.\n```repl\n"
        + _POSITIONS
        + """hits = positions(r"(?im)^.*\\b(error|exception|traceback|failed|timeout)\\b")
if not hits:
    hits = positions(r"(?im)^.*\\b(warn\\w*|denied|retry)\\b")
print(len(hits), "matching lines; first offsets:", hits[:10])
```""",
        """Now I read around a sample of the hits and ask what went wrong in each.
```repl
step = max(1, len(hits) // 8)
picked = hits[::step][:8]
windows = [context[max(0, h - 600):min(len(context), h + 600)] for h in picked]
findings = llm_query_batched([f"Explain the problem reported around this log excerpt in one sentence.\\n\\n{w}" for w in windows]) if windows else []
for f in findings:
    print("-", f)
```""",
        """```repl
report = llm_query("Write a short incident report from these findings:\\n" + "\\n".join(findings)) if findings else "No error lines found."
print(report)
```""",
        "FINAL_VAR(report)",
    ),
)

_NARROW = """I keep narrowing the window.
```repl
narrow(3)
```"""

BISECTION = Strategy(
    name="bisection",
    query="What is the release passphrase mentioned somewhere in the context?",
    corpus="service_log",
    root_replies=(
        _PEEK,
        """The phrase could be anywhere. I will bisect: ask a sub-model whether the left half mentions it.
```repl
phrase = "release passphrase"
lo, hi, rounds = 0, len(context), 0
def narrow(steps):
    global lo, hi, rounds
    for _ in range(steps):
        if hi - lo <= 4000:
            break
        mid = (lo + hi) // 2
        reply = llm_query(f"Does this text mention the {phrase}? Answer yes or no.\\n\\n{context[lo:mid]}")
        if reply.strip().lower().startswith("yes"):
            hi = mid
        else:
            lo = mid
        rounds += 1
    print(f"window {lo}:{hi} ({hi - lo} chars) after {rounds} rounds")
narrow(3)
```""",
        _NARROW,
        _NARROW,
        _NARROW,
        """The window is small now; I read it with a margin and extract the phrase.
```repl
found = llm_query(f"Quote the {phrase} from this text exactly, nothing else.\\n\\n{context[max(0, lo - 300):hi + 300]}")
print(found)
```""",
        "FINAL_VAR(found)",
    ),
)

SESSIONS = Strategy(
    name="sessions",
    query="Give a one-line digest of every coding session in this store.",
    corpus="session_store",
    root_replies=(
        "Let me see how the sessions are laid out.\n```repl\n"
        + _POSITIONS
        + """starts = positions(r"(?m)^SESSION METADATA$")
print(len(context), "chars;", len(starts), "session headers")
print(context[:600])
```""",
        """I will take each session's bounds and read its id from its header only.
```repl
if not starts:  # not a session store: treat eight line-aligned parts as sessions
    n = len(context)
    starts = sorted({0} | {context.rfind("\\n", 0, i) + 1 for i in range(max(1, n // 8), n, max(1, n // 8))})
bounds = list(zip(starts, starts[1:] + [len(context)]))
ids = []
for a, b in bounds:
    m = re.search(r"session_id:\\s*(\\S+)", context[a:min(b, a + 700)])
    ids.append(m.group(1) if m else f"part-{len(ids)}")
print(len(bounds), "sessions:", ids[:20])
```""",
        """Each digest needs the session's opening and its end, not the whole session.
```repl
prompts = []
for (a, b), sid in zip(bounds, ids):
    opening = context[a:min(b, a + 4000)]
    ending = context[max(a, b - 1500):b]
    prompts.append(f"Digest coding session {sid} in one line: who, what they worked on, how it ended.\\n\\n{opening}\\n[...]\\n{ending}")
digests = []
for i in range(0, len(prompts), 16):
    digests += llm_query_batched(prompts[i:i + 16])
for d in digests[:10]:
    print(d[:200])
```""",
        """```repl
table = "\\n".join(f"- {sid}: {d}" for sid, d in zip(ids, digests))
print(table[:3000])
```""",
        "FINAL_VAR(table)",
    ),
)

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (MAP_REDUCE, REGEX_READS, BISECTION, SESSIONS)}


# -- the scripted sub-model ------------------------------------------------------------------

_PROBLEM = re.compile(r"(?i)\b(error|exception|traceback|failed|timeout)\b")


def _count_levels(text: str) -> Counter:
    return Counter(m.group(1) for m in re.finditer(r"\b(INFO|WARN|ERROR|DEBUG)\b", text))


def _summarise_part(prompt: str, text: str) -> str:
    header = prompt.split("\n", 1)[0]
    part = re.search(r"part (\d+) of (\d+)", header)
    lines = text.count("\n") + 1
    levels = _count_levels(text)
    hosts = Counter(re.findall(r"\bhost-\d+\b", text)).most_common(1)
    busiest = f"; busiest host {hosts[0][0]}" if hosts else ""
    label = f"Part {part.group(1)}/{part.group(2)}" if part else "This part"
    return f"{label}: {lines} lines, {levels['ERROR']} errors and {levels['WARN']} warnings{busiest}."


def _combine(text: str) -> str:
    errors = sum(int(x) for x in re.findall(r"(\d+) errors", text))
    warnings = sum(int(x) for x in re.findall(r"(\d+) warnings", text))
    parts = len(re.findall(r"^Part ", text, re.M))
    return f"Across {parts} parts the log reports {errors} errors and {warnings} warnings; the rest is routine traffic."


def _explain(text: str) -> str:
    for line in text.splitlines():
        if _PROBLEM.search(line):
            return f"A component reported a failure: {line.strip()[:160]}"
    return "Nothing in this excerpt looks like a failure."


def _report(text: str) -> str:
    findings = [line for line in text.splitlines()[1:] if line.strip()]
    return f"Incident report: {len(findings)} findings. " + " ".join(findings[:3])


def _mentions(prompt: str, text: str) -> str:
    phrase = re.search(r"mention the (.+?)\?", prompt)
    return "yes" if phrase and phrase.group(1).lower() in text.lower() else "no"


def _quote(prompt: str, text: str) -> str:
    phrase = re.search(r"Quote the (.+?) from", prompt)
    if phrase:
        for line in text.splitlines():
            if phrase.group(1).lower() in line.lower():
                return line.strip()
    return "I could not find it in this text."


def _digest(text: str) -> str:
    developer = re.search(r"(?m)^developer:\s*(.*)$", text)
    branch = re.search(r"(?m)^git_branch:\s*(.*)$", text)
    first_user = re.search(r"(?m)^\[USER\] \[[^\]]*\]\n(.+)$", text)
    who = developer.group(1).strip() if developer else "someone"
    where = f" on {branch.group(1).strip()}" if branch and branch.group(1).strip() else ""
    what = first_user.group(1) if first_user else (text.strip().splitlines() or ["nothing"])[0]
    what = what.strip()[:80]
    return f"{who}{where} asked '{what}'."


_SUB_REPLIES: list[tuple[str, Callable[[str, str], str]]] = [
    ("Summarise part", _summarise_part),
    ("Combine these partial summaries", lambda prompt, text: _combine(text)),
    ("Explain the problem", lambda prompt, text: _explain(text)),
    ("Write a short incident report", lambda prompt, text: _report(text)),
    ("Does this text mention", _mentions),
    ("Quote the", _quote),
    ("Digest coding session", lambda prompt, text: _digest(text)),
]


def sub_reply(prompt: str) -> str:
    """The scripted sub-model: a deterministic answer computed from the prompt's own text."""
    instruction, _, text = prompt.partition("\n")
    for prefix, answer in _SUB_REPLIES:
        if instruction.startswith(prefix):
            return answer(prompt, text)
    return "I cannot answer that from the text given."


# -- corpora the recordings were made on ---------------------------------------------------------

NEEDLE = "release passphrase is 'amber-falcon-42'"


def service_log(n_lines: int = 4000, seed: int = 11) -> str:
    """A service log with routine traffic, a few warnings and errors, and one needle line."""
    rng = random.Random(seed)
    paths = ["/v1/items", "/v1/users", "/v1/orders", "/healthz", "/v1/search"]
    problems = [
        "ERROR db: query timeout after 3000 ms on orders_by_user",
        "ERROR payments: upstream returned 502, request failed",
        "ERROR worker: unhandled exception in resize_image: ValueError('bad header')",
        "WARN cache: eviction storm, 1200 keys dropped",
        "WARN auth: token refresh retry 3/5",
    ]
    needle_at = rng.randrange(n_lines // 4, 3 * n_lines // 4)
    lines = []
    for i in range(n_lines):
        stamp = f"2026-03-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.{rng.randrange(1000):03d}Z"
        host = f"host-{rng.randrange(6)}"
        if i == needle_at:
            body = f"INFO deploy: rollout finished; the {NEEDLE}"
        elif rng.random() < 0.02:
            body = rng.choice(problems)
        else:
            body = f"INFO api: GET {rng.choice(paths)} status=200 ms={rng.randrange(2, 180)}"
        lines.append(f"{stamp} {host} {body}\n")
    return "".join(lines)


def session_store(n_sessions: int = 120, seed: int = 5) -> str:
    """Many coding-agent sessions rendered in the team's transcript text format, back to back."""
    from ..transcripts.render import render_text
    from ..transcripts.session import Identity, Message, Session, ToolCall

    rng = random.Random(seed)
    developers = [("ana", "ana@example.com"), ("bo", "bo@example.com"), ("chen", "chen@example.com"), ("dee", "dee@example.com")]
    asks = ["fix the flaky upload test", "add a cache to the context reader", "explain why the build is slow",
            "refactor the manifest writer", "write a benchmark for ranged GETs", "review the retry policy"]
    tools = [("Bash", "pytest -q tests/test_upload.py"), ("Read", "rlmlab/stores.py"), ("Edit", "rlmlab/layout.py"),
             ("Grep", "def write_context"), ("Bash", "git diff --stat")]
    texts = []
    for s in range(n_sessions):
        name, email = rng.choice(developers)
        minute = rng.randrange(60)
        messages = []
        for turn in range(rng.randrange(4, 14)):
            stamp = f"2026-02-{1 + s % 28:02d}T10:{minute:02d}:{turn:02d}.000Z"
            if turn % 2 == 0:
                text = rng.choice(asks) if turn == 0 else rng.choice(["go on", "now run the tests", "looks good, commit it"])
                messages.append(Message(role="USER", timestamp=stamp, text=text))
            else:
                calls = [ToolCall(f"t{s}-{turn}-{k}", *rng.choice(tools)) for k in range(rng.randrange(0, 3))]
                body = " ".join(rng.choice(["I read the code.", "The test passes now.", "I changed two functions.",
                                            "The slow part is the upload loop."]) for _ in range(rng.randrange(2, 8)))
                messages.append(Message(role="ASSISTANT", timestamp=stamp, text=body, tool_calls=calls))
        session = Session(
            session_id=f"{rng.getrandbits(32):08x}-{s:04d}",
            identity=Identity(developer=name, email=email, hostname=f"{name}-laptop", platform="Linux", os_user=name),
            git_branch=rng.choice(["main", "fix/upload", "feat/cache"]),
            project_dir=f"/home/{name}/rlmlab",
            claude_version="2.1.42",
            uploaded_at="2026-03-01T00:00:00+00:00",
            messages=messages,
        )
        texts.append(render_text(session))
    return "".join(texts)


CORPORA: dict[str, Callable[..., str]] = {"service_log": service_log, "session_store": session_store}


def corpus_text(header) -> str:
    """The exact text a scripted recording was made on, regenerated from its header."""
    corpus = header.extra.get("corpus")
    if not corpus or corpus.get("name") not in CORPORA:
        raise ValueError(f"this cassette names no generated corpus (extra.corpus = {corpus!r})")
    return CORPORA[corpus["name"]](**corpus.get("kwargs", {}))


# -- making the recordings ----------------------------------------------------------------------

ROOT_MODEL, SUB_MODEL = "gpt-5", "gpt-5-mini"
FAKE_API_KEY = "sk-proj-scripted-recording-key-0000000000000000"  # the fake servers accept any key


def record_scripted(name: str, path, *, root_latency_s: float = 0.4, sub_latency_s: float = 0.15,
                    segment_bytes: int = 64_000, corpus_kwargs: dict | None = None):
    """Record strategy `name` through the real engine and the real OpenAI SDK, against fake servers.

    The root server replays the strategy's replies in order; the sub server answers each
    prompt with `sub_reply`. Both wait their latency per call, so the recording's timings
    have the shape of a real run. Returns the engine's Result.
    """
    import uuid

    from ..context import open_context
    from ..layout import write_context
    from ..llm.fakes import FakeOpenAIServer
    from ..llm.openai import OpenAIClient
    from ..rlm.engine import RLM
    from .record import record

    if name not in STRATEGIES:
        raise ValueError(f"unknown scripted strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    strategy = STRATEGIES[name]
    generator = CORPORA[strategy.corpus]
    # Every argument spelled out in the header, so a later change of defaults cannot change the corpus.
    defaults = {n: p.default for n, p in inspect.signature(generator).parameters.items()}
    kwargs = {**defaults, **(corpus_kwargs or {})}
    uri = f"mem://scripted-{name}-{uuid.uuid4().hex[:8]}"
    write_context(generator(**kwargs), uri, segment_bytes=segment_bytes, progress=False)
    root_server = FakeOpenAIServer(list(strategy.root_replies), latency_s=root_latency_s)
    sub_server = FakeOpenAIServer(lambda request: sub_reply(request.last_user), latency_s=sub_latency_s)
    with root_server, sub_server, open_context(uri) as context:
        rlm = RLM(OpenAIClient(ROOT_MODEL, base_url=root_server.url, api_key=FAKE_API_KEY),
                  OpenAIClient(SUB_MODEL, base_url=sub_server.url, api_key=FAKE_API_KEY))
        return record(rlm, context, strategy.query, path, scripted=True,
                      extra={"strategy": name, "corpus": {"name": strategy.corpus, "kwargs": kwargs}})
