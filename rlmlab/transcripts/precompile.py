"""Precompile on close: per-session digests and a team briefing, written next to the transcripts.

After an upload, `precompile(store, rlm)` brings `compiled/` up to date:

* `compiled/digests/<session_id>-<sha12>.md`, one per session version. Incremental: a digest
  that exists is reused, so only new (or grown) sessions cost model calls. A session that
  fits one call (`plain_limit_chars`) is digested by one sub-model call; a longer one by an
  RLM run over that session's text, which is what RLMs are for.
* `compiled/briefing.md`: an RLM run over all digests (oldest first, one section per session)
  writes what a developer starting a session should know: recent work per developer,
  decisions, open threads, with session references. The SessionStart hook injects it.
* `compiled/state.json`: which index version the briefing reflects; an up-to-date store is
  left alone.

Without a model key, `models_from_settings` raises MissingCredentials and callers skip with
that message.
"""

from __future__ import annotations

import json
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..errors import ObjectNotFound
from ..stores import Store, open_store
from .hooks import BRIEFING_KEY
from .upload import SessionRange, latest_version, session_index

DIGESTS_PREFIX = "compiled/digests/"
STATE_KEY = "compiled/state.json"

DIGEST_INSTRUCTIONS = """You are writing the digest of one coding-agent session for a team's shared memory.
Session {session_id} by {developer} on branch {git_branch} in {project_dir}, from {start_time} to {end_time}.
Write at most 10 Markdown bullet points, nothing else:
- what was worked on, and how it ended;
- decisions made, and why;
- open threads: unresolved problems, TODOs, questions left hanging;
- specific facts someone may ask about later (ports, versions, flags, tickets, names, numbers)."""

BRIEFING_QUERY = """`context` holds digests of a team's coding-agent sessions, oldest first. Each section starts
with a line '## session <session_id> | <developer> | <start> .. <end>' followed by that session's digest.
Write the briefing a developer reads when starting a new session, in Markdown, at most 80 lines, with
these sections: 'Recent work by developer' (each developer's latest sessions first), 'Decisions',
'Open threads'. Cite every item with the sessions it comes from as [session <first 8 characters of its id>]."""


@dataclass
class PrecompileReport:
    version: int  # the transcripts index version the briefing now reflects
    digested: list[str] = field(default_factory=list)  # sessions digested by this run
    reused: int = 0  # digests that already existed
    briefing_chars: int = 0
    up_to_date: bool = False  # nothing to do: the briefing already reflected this version


def precompile(store: Store | str, rlm, *, plain_limit_chars: int = 60_000, workers: int = 8, force: bool = False) -> PrecompileReport:
    """Digest new sessions and rewrite the briefing. `rlm` is an `rlmlab.rlm.RLM` (its sub client digests)."""
    store = open_store(store) if isinstance(store, str) else store
    version, _ = latest_version(store)
    report = PrecompileReport(version)
    state = _state(store)
    if not force and state.get("version") == version and store.exists(BRIEFING_KEY):
        report.up_to_date = True
        return report
    index = session_index(store)
    if not index:
        return report
    from ..context import open_context

    context = open_context(store)
    existing = store.list(DIGESTS_PREFIX)
    missing = [r for r in index if digest_key(r) not in existing]
    report.reused = len(index) - len(missing)

    def digest(r: SessionRange) -> None:
        text = context[r.char_offset : r.char_offset + r.char_length]
        instructions = DIGEST_INSTRUCTIONS.format(**r.__dict__)
        if len(text) <= plain_limit_chars:
            body = rlm.sub.complete([{"role": "user", "content": f"{instructions}\n\nSESSION TEXT:\n{text}"}]).text
        else:
            body = rlm.completion(text, instructions + "\nThe session's text is in `context`.").answer
        store.put(digest_key(r), body.strip().encode("utf-8") + b"\n")

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(digest, missing))  # list(): re-raise the first failure
    report.digested = [r.session_id for r in missing]
    digests = "\n\n".join(
        f"## session {r.session_id} | {r.developer} | {r.start_time} .. {r.end_time}\n{store.get(digest_key(r)).decode('utf-8').strip()}"
        for r in sorted(index, key=lambda r: r.start_time)
    )
    result = rlm.completion(digests, BRIEFING_QUERY)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    briefing = f"<!-- team briefing: {len(index)} sessions, transcripts version {version}, compiled {now} -->\n{result.answer.strip()}\n"
    store.put(BRIEFING_KEY, briefing.encode("utf-8"))
    store.put(STATE_KEY, json.dumps({"version": version, "sessions": len(index), "compiled_at": now,
                                     "root_model": rlm.root.model, "sub_model": rlm.sub.model}).encode())
    report.briefing_chars = len(briefing)
    return report


def digest_key(r: SessionRange) -> str:
    return f"{DIGESTS_PREFIX}{r.session_id}-{r.content_sha256[:12]}.md"


def models_from_settings(root: str | None = None, sub: str | None = None, base_url: str | None = None):
    """(root client, sub client) from flags, config and the environment; MissingCredentials says what to set."""
    from ..llm import client_for
    from ..rlm.commands import choose_models

    root_model, sub_model, base_url = choose_models(types.SimpleNamespace(root=root, sub=sub, base_url=base_url))
    root_client = client_for(root_model, base_url=base_url)
    return root_client, (root_client if sub_model == root_model else client_for(sub_model, base_url=base_url))


def _state(store: Store) -> dict:
    try:
        return json.loads(store.get(STATE_KEY))
    except (ObjectNotFound, ValueError):
        return {}
