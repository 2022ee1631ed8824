"""Synthetic multi-developer Claude Code transcripts with planted facts (needles).

Sessions are written in the real JSONL shape (envelopes, assistant lines split per content
block and sharing `message.id`, tool results as user lines, hook progress, snapshots,
compaction), so the parser, the redactor and the RLM all read them like the real thing.
`questions.jsonl` beside them holds one question per needle with its expected answer and
the session that holds it. Everything derives from the seed: same seed, same bytes.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .session import Identity, Session

FIRST = ["Ana", "Bilal", "Chen", "Dara", "Emeka", "Freya", "Goran", "Hana", "Ivan", "Jonas", "Kemi", "Lior", "Mira", "Noor", "Oskar"]
LAST = ["Okafor", "Lindqvist", "Tanaka", "Moreau", "Haddad", "Kowalski", "Silva", "Novak", "Reyes", "Fischer", "Osei", "Park"]
PROJECTS = ["checkout-service", "rlm-explorer", "billing-api", "mobile-app", "data-pipeline", "search-indexer"]
AREAS = ["auth middleware", "payment retries", "the S3 context loader", "the CSV importer", "rate limiting", "the release script",
         "cache invalidation", "the GraphQL resolver", "session cleanup", "the websocket reconnect logic", "feature flags", "the metrics exporter"]
ASKS = ["Can you look into {area}? Tests are flaky since yesterday.", "Refactor {area} so it is easier to test.",
        "Why is {area} so slow on large inputs?", "Add logging around {area}, we can't see what fails in prod.",
        "Review {area} and tell me what you would change.", "Fix the bug in {area}: it drops the last item.",
        "Write tests for {area} covering the edge cases.", "Explain how {area} works, I need to present it tomorrow."]
REPLIES = ["I'll start by reading the relevant files to understand how {area} is structured.",
           "Looking at {area}, the problem is that the loop exits before the final batch is flushed.",
           "I found the cause: {area} retries without backoff, so under load it hammers the upstream.",
           "Done. I changed {area} to build the request once and reuse it, and added tests for the empty case.",
           "The tests pass now. The flakiness came from a shared temp directory between test workers.",
           "Here is a summary of {area}: it validates input, batches writes, and flushes every 500 ms.",
           "I'd split {area} into a parser and a writer; the parser is pure and easy to test in isolation."]
THOUGHTS = ["The user wants changes to {area}. I should read the code before proposing anything.",
            "Let me check the tests first; flaky tests usually mean shared state.",
            "I need to find where {area} is configured and whether there is an existing helper."]
FILES = ["src/{p}/handlers.py", "src/{p}/models.py", "tests/test_{p}.py", "src/{p}/config.py", "README.md", "src/{p}/client.ts"]
COMMANDS = ["pytest -q tests/", "git status", "npm test -- --watch=false", "make lint", "git diff HEAD~1", "python -m {p}.cli --help",
            "rg -n 'TODO' src/", "docker compose up -d db"]

NEEDLES = [
    ("The staging database for {project} listens on port {n4}.", "Which port does the staging database for {project} listen on?", "{n4}"),
    ("We agreed to pin numpy to version 1.{n2}.{n1} in {project} until the ABI issue is fixed.", "Which numpy version did the team pin in {project}?", "1.{n2}.{n1}"),
    ("The feature flag for the new checkout flow is called {flag}.", "What is the feature flag for the new checkout flow called?", "{flag}"),
    ("Decision: {project} moves its nightly job to {hour}:00 UTC to avoid the backup window.", "At what hour (UTC) does {project}'s nightly job run now?", "{hour}:00 UTC"),
    ("The on-call escalation alias for {project} is {alias}@example.com.", "What is the on-call escalation alias for {project}?", "{alias}@example.com"),
    ("{dev} found that the memory leak in {project} came from the {component} holding references to closed sockets.",
     "What component caused the memory leak in {project}?", "{component}"),
    ("The load test for {project} peaked at {n3} requests per second before latency degraded.", "What throughput did the {project} load test peak at?", "{n3} requests per second"),
    ("Ticket {ticket} tracks the flaky integration test in {project}.", "Which ticket tracks the flaky integration test in {project}?", "{ticket}"),
]
COMPONENTS = ["connection pool", "event bus", "LRU cache", "retry scheduler", "websocket hub", "metrics buffer"]


@dataclass(frozen=True)
class Developer:
    slug: str
    identity: Identity


@dataclass(frozen=True)
class Needle:
    question: str
    answer: str
    session_id: str
    developer: str
    fact: str


def synthesize(out: str | Path, *, size: int, developers: int = 5, needles: int = 20, seed: int = 1) -> dict:
    """Write sessions totalling about `size` bytes under `out`; return a summary of what was written."""
    if size <= 0 or developers <= 0 or needles < 0:
        raise ValueError(f"size and developers must be positive and needles non-negative (got {size}, {developers}, {needles})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    team = _team(rng, developers)
    clock = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    written, sessions = 0, []
    while written < size:
        dev = team[len(sessions) % len(team)]
        project = rng.choice(PROJECTS)
        clock += timedelta(minutes=rng.randint(20, 600))
        session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        lines = _session_lines(rng, dev, project, session_id, clock)
        path = out / dev.slug / ("-" + f"home-{dev.identity.os_user}-{project}") / f"{session_id}.jsonl"
        sessions.append({"path": path, "dev": dev, "project": project, "lines": lines, "id": session_id})
        written += sum(len(line) + 1 for line in lines)
    planted: list[Needle] = []
    for i in range(needles):
        for _ in range(100):  # re-draw until the question is unambiguous
            needle = _draw_needle(rng, sessions, i)
            if needle.question not in {n.question for n in planted}:
                break
        else:
            raise ValueError(f"cannot plant {needles} unambiguous needles in {len(sessions)} sessions: ask for a larger --size")
        _plant(rng, sessions, needle)
        planted.append(needle)
    for s in sessions:
        s["path"].parent.mkdir(parents=True, exist_ok=True)
        s["path"].write_text("".join(line + "\n" for line in s["lines"]), encoding="utf-8")
    (out / "developers.json").write_text(
        json.dumps({d.slug: asdict(d.identity) for d in team}, indent=2) + "\n", encoding="utf-8"
    )
    with open(out / "questions.jsonl", "w", encoding="utf-8") as handle:
        for needle in planted:
            handle.write(json.dumps(asdict(needle)) + "\n")
    written = sum(s["path"].stat().st_size for s in sessions)
    return {"sessions": len(sessions), "bytes": written, "developers": len(team), "needles": len(planted), "out": str(out)}


def session_paths(out: str | Path) -> list[tuple[Path, Identity]]:
    """Every synthetic session under `out` with the identity of the developer who 'ran' it."""
    out = Path(out)
    identities = json.loads((out / "developers.json").read_text(encoding="utf-8"))
    found = []
    for slug, fields in sorted(identities.items()):
        for path in sorted((out / slug).glob("*/*.jsonl")):
            found.append((path, Identity(**fields)))
    return found


def load_corpus(out: str | Path) -> list[Session]:
    from .claude_code import load

    return [load(path, identity=identity) for path, identity in session_paths(out)]


def parse_size(text: str) -> int:
    """'50MB', '512k', '1.5 GB', '2000' → bytes (decimal units, as `ls -h --si` and S3 prices use)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmg]?)b?\s*", text.lower())
    if not match:
        raise ValueError(f"not a size: {text!r} (expected e.g. 50MB, 512kB, 2000)")
    return int(float(match.group(1)) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[match.group(2)])


# -- generation ---------------------------------------------------------------------------


def _team(rng: random.Random, n: int) -> list[Developer]:
    team, names, users = [], set(), set()
    while len(team) < n:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if (first, last) in names and len(names) < len(FIRST) * len(LAST):
            continue
        names.add((first, last))
        user = first.lower() if first.lower() not in users else f"{first.lower()}{len(team)}"
        users.add(user)
        identity = Identity(
            developer=f"{first} {last}",
            email=f"{user}.{last.lower()}@example.com",
            hostname=f"{user}-{rng.choice(['mbp', 'xps', 'thinkpad'])}.local",
            platform=rng.choice(["Darwin", "Linux"]),
            os_user=user,
        )
        team.append(Developer(f"{user}-{last.lower()}", identity))
    return team


class _Writer:
    """Emits one session's JSONL lines with a consistent envelope and a ticking clock."""

    def __init__(self, rng: random.Random, dev: Developer, project: str, session_id: str, start: datetime):
        self.rng, self.session_id, self.clock = rng, session_id, start
        self.cwd = f"/home/{dev.identity.os_user}/{project}"
        self.branch = rng.choice(["main", f"feature/{project.split('-')[0]}-{rng.randint(10, 99)}", "fix/flaky-tests"])
        self.version = rng.choice(["2.0.55", "2.1.38", "2.1.42"])
        self.parent: str | None = None
        self.lines: list[str] = []

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _stamp(self, seconds: tuple[int, int]) -> str:
        self.clock += timedelta(seconds=self.rng.randint(*seconds), milliseconds=self.rng.randint(0, 999))
        return self.clock.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.clock.microsecond // 1000:03d}Z"

    def emit(self, kind: str, seconds=(1, 20), **fields) -> dict:
        entry = {"parentUuid": self.parent, "isSidechain": False, "userType": "external", "cwd": self.cwd,
                 "sessionId": self.session_id, "version": self.version, "gitBranch": self.branch, "type": kind}
        entry.update(fields)
        entry["uuid"] = self._uuid()
        entry["timestamp"] = self._stamp(seconds)
        self.parent = entry["uuid"]
        self.lines.append(json.dumps(entry))
        return entry

    def raw(self, entry: dict) -> None:
        self.lines.append(json.dumps(entry))


def _session_lines(rng: random.Random, dev: Developer, project: str, session_id: str, start: datetime) -> list[str]:
    w = _Writer(rng, dev, project, session_id, start)
    w.raw({"type": "file-history-snapshot", "messageId": w._uuid(), "snapshot": {"trackedFileBackups": {}}, "isSnapshotUpdate": False})
    w.emit("progress", data={"type": "hook_progress", "hookEvent": "SessionStart", "hookName": "SessionStart:startup", "command": "rlmlab transcripts hook session-start"})
    p = project.replace("-", "_")
    for turn in range(rng.randint(3, 12)):
        area = rng.choice(AREAS)
        w.emit("user", seconds=(30, 900), message={"role": "user", "content": rng.choice(ASKS).format(area=area)})
        for step in range(rng.randint(1, 4)):
            message_id = "msg_" + "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(24))
            usage = {"input_tokens": rng.randint(3, 900), "output_tokens": rng.randint(20, 2000), "cache_read_input_tokens": rng.randint(0, 90000)}

            def block(content: dict) -> None:
                w.emit("assistant", seconds=(1, 15), requestId="req_" + str(rng.getrandbits(60)),
                       message={"model": "claude-opus-4-6", "id": message_id, "type": "message", "role": "assistant",
                                "content": [content], "stop_reason": None, "usage": usage})

            if step == 0 and rng.random() < 0.5:
                block({"type": "thinking", "thinking": rng.choice(THOUGHTS).format(area=area), "signature": "sig" + str(rng.getrandbits(64))})
            block({"type": "text", "text": rng.choice(REPLIES).format(area=area)})
            for _ in range(rng.randint(0, 3)):
                tool_id = "toolu_" + str(rng.getrandbits(80))
                name, tool_input, result = _tool(rng, p, w.cwd)
                block({"type": "tool_use", "id": tool_id, "name": name, "input": tool_input})
                failed = rng.random() < 0.08
                w.emit("user", toolUseResult={"stdout": result} if name == "Bash" else result,
                       message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id,
                                                             "content": "Exit code 1\nAssertionError: expected 3 items, got 2" if failed else result,
                                                             "is_error": failed}]})
        if turn == 6 and rng.random() < 0.5:
            w.emit("system", subtype="compact_boundary", content="Conversation compacted", level="info",
                   compactMetadata={"trigger": "auto", "preTokens": rng.randint(120000, 160000)})
            w.emit("user", isCompactSummary=True, message={"role": "user", "content": f"Summary of the earlier conversation: we worked on {area} in {project}."})
    return w.lines


def _tool(rng: random.Random, p: str, cwd: str) -> tuple[str, dict, str]:
    kind = rng.choice(["Read", "Bash", "Edit", "Grep", "Glob", "Write", "TodoWrite"])
    path = f"{cwd}/" + rng.choice(FILES).format(p=p)
    if kind == "Read":
        body = "\n".join(f"{i:>6}\u2192    value_{i} = compute({i})" for i in range(1, rng.randint(10, 120)))
        return kind, {"file_path": path}, body
    if kind == "Bash":
        command = rng.choice(COMMANDS).format(p=p)
        return kind, {"command": command, "description": "Run " + command.split()[0]}, f"{rng.randint(1, 300)} passed in {rng.random() * 9:.2f}s"
    if kind == "Edit":
        return kind, {"file_path": path, "old_string": "retries = 0", "new_string": "retries = 3"}, f"The file {path} has been updated."
    if kind in ("Grep", "Glob"):
        return kind, {"pattern": rng.choice(["TODO", "def handle_", "**/*.py", "retry"]), "path": cwd}, f"Found {rng.randint(0, 40)} files"
    if kind == "Write":
        return kind, {"file_path": path, "content": "# generated\n" * rng.randint(1, 30)}, f"File created successfully at: {path}"
    todos = [{"content": f"Step {i}", "status": rng.choice(["pending", "in_progress", "completed"]), "activeForm": f"Doing step {i}"} for i in range(rng.randint(1, 5))]
    return kind, {"todos": todos}, "Todos have been modified successfully."


def _draw_needle(rng: random.Random, sessions: list[dict], index: int) -> Needle:
    """A fact for a random session, and the question it answers (which names the developer)."""
    session = rng.choice(sessions)
    template, question, answer = NEEDLES[index % len(NEEDLES)]
    values = {
        "project": session["project"],
        "dev": session["dev"].identity.developer,
        "n1": rng.randint(0, 9), "n2": rng.randint(20, 26), "n3": rng.randint(1200, 9800), "n4": rng.randint(5400, 6999),
        "hour": rng.randint(0, 5), "flag": f"CHECKOUT_V{rng.randint(2, 9)}_{rng.choice(['ROLLOUT', 'CANARY', 'PILOT'])}_{index}",
        "alias": f"{session['project'].split('-')[0]}-oncall-{index}", "component": rng.choice(COMPONENTS),
        "ticket": f"ENG-{rng.randint(1000, 9999)}",
    }
    asked = f"In {values['dev']}'s sessions: " + question[0].lower() + question[1:]
    return Needle(asked.format(**values), answer.format(**values), session["id"], session["dev"].identity.developer, template.format(**values))


def _plant(rng: random.Random, sessions: list[dict], needle: Needle) -> None:
    """Append the fact to one user or assistant text line of its session."""
    lines = next(s for s in sessions if s["id"] == needle.session_id)["lines"]
    candidates = [i for i, line in enumerate(lines) if '"type": "text"' in line or '"role": "user", "content": "' in line]
    i = rng.choice(candidates)
    entry = json.loads(lines[i])
    content = entry["message"]["content"]
    if isinstance(content, str):
        entry["message"]["content"] = f"{content} By the way: {needle.fact}"
    else:
        content[0]["text"] = f"{content[0]['text']} Note for the team: {needle.fact}"
    lines[i] = json.dumps(entry)
