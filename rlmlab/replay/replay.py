"""Replay a cassette: the recorded model answers, but the REPL code runs again, for real.

`replay(cassette, context, fetch=..., cache=..., prefetch=..., latency=...)` runs the real
engine with model clients that answer from the cassette (`ReplayClient`): root replies in
recorded order, sub-calls by request hash, else by position within the cell (see
`book.py`). Everything else is live: the REPL executes each cell against the given
context under the given read policies, so every storage access is real and traced. Each
model call takes the time the latency model says. The result lists every divergence from
the recording (other prompts, other cell output, another answer) instead of failing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LLMError, RlmlabError
from ..llm.base import Completion, LLMClient, Usage, current_call
from ..trace import Trace
from .book import Divergence, NoRecordedReply, ReplayBook
from .cassette import Cassette, cell_digest, describe_request, read_cassette
from .latency import LatencyModel, parse_latency


class ReplaySession:
    """What the replay clients share: the book, the latency model, and where the run is."""

    def __init__(self, cassette: Cassette, latency: LatencyModel):
        self.cassette = cassette
        self.book = ReplayBook(cassette, compare_root_requests=cassette.header.source == "rlmlab")
        self.latency = latency
        self._recorded_cells = cassette.top_cells
        self._lock = threading.Lock()
        self.top_cells = 0  # top-level cells finished: the one running now has this index
        self.cells_matched = 0
        self.model_delay_s = 0.0

    def answer(self, messages: list[dict]) -> Completion:
        where = current_call() or {"role": "root", "depth": 0}
        digest = describe_request(messages)[2]
        if where["role"] == "root" and where["depth"] == 0:
            call = self.book.root(digest)
        else:
            call = self.book.sub(digest, self.top_cells, where.get("batch_id"), where.get("batch_index"))
        delay = self.latency.delay(call)
        if delay > 0:
            time.sleep(delay)
        with self._lock:
            self.model_delay_s += delay
        if call.error is not None:
            raise LLMError(call.error)
        usage = call.usage
        return Completion(call.response, call.model, Usage(usage.get("input_tokens", 0), usage.get("output_tokens", 0),
                                                           usage.get("cached_tokens", 0), usage.get("estimated", True)))

    # -- engine observer -----------------------------------------------------------------
    def on_cell(self, record) -> None:
        if record.depth != 0:
            return
        with self._lock:
            index = self.top_cells
            self.top_cells += 1
        output = record.output
        if index >= len(self._recorded_cells):
            return  # counted at the end, as a cell_count divergence
        recorded = self._recorded_cells[index]
        if cell_digest(output.stdout, output.stderr, output.error) == recorded.output_sha256:
            with self._lock:
                self.cells_matched += 1
            return
        self.book.divergences.append(Divergence(
            "cell_output", record.iteration, index,
            f"cell {index} (iteration {record.iteration}) printed {output.output_chars:,} chars, other output than the "
            f"recorded {recorded.output_chars:,}" + (f"; error: {output.error.splitlines()[-1]}" if output.error else ""),
        ))  # fmt: skip


class ReplayClient(LLMClient):
    """A model client that answers from a cassette; never retried, never rate-limited."""

    provider = "replay"

    def __init__(self, model: str, session: ReplaySession):
        super().__init__(model)
        self.session = session

    def complete(self, messages):
        # A recorded reply is final and a recorded failure fails again the same way: no retries.
        return self._send(messages)

    def _send(self, messages) -> Completion:
        try:
            return self.session.answer(messages)
        except NoRecordedReply as missing:
            raise LLMError(f"replay: {missing}", model=self.model) from None

    def _classify(self, error: Exception):
        return False, None, None


@dataclass
class ReplayResult:
    """A replayed run: its answer, how it diverged from the recording, and where time went."""

    answer: str | None
    recorded_answer: str | None
    iterations: int
    ended_by: str
    divergences: list[Divergence]
    cells_run: int
    cells_matched: int
    trace: Trace
    started_s: float  # trace time the replay began at
    elapsed_s: float
    model_delay_s: float
    cost_usd: float = 0.0
    error: str | None = None
    usage: dict = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """Same answer and same cell outputs, with every sub-call answered by its own hash."""
        return not self.divergences and self.error is None

    def divergence_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.divergences:
            counts[d.kind] = counts.get(d.kind, 0) + 1
        return counts

    def timing(self) -> dict[str, float]:
        """End-to-end time split into model time, REPL time, storage stall and engine time.

        Model time: root calls plus the wall time some sub-call was running (a batch counts
        once). Storage stall: what Context reads waited on storage, in cells or not (the
        root's first prompt previews the context). REPL time: top-level cells minus the
        model and storage time spent inside them. Engine time: the rest.
        """
        t0 = self.started_s
        llm = [e for e in self.trace["llm"] if e.start >= t0]
        cells = [(c.start, c.start + c.duration_s) for c in self.trace["cell"] if c.start >= t0 and c.depth == 0]
        accesses = [a for a in self.trace["access"] if a.start >= t0]
        root_s = sum(e.latency_s for e in llm if e.role == "root" and e.depth == 0)
        sub_s = _union([(e.start, e.start + e.latency_s) for e in llm if not (e.role == "root" and e.depth == 0)])
        stall_s = sum(a.stall_s for a in accesses)
        stall_in_cells = sum(a.stall_s for a in accesses if _inside(a.start, cells))
        repl_s = max(0.0, sum(b - a for a, b in cells) - sub_s - stall_in_cells)
        model_s = root_s + sub_s
        return {
            "end_to_end_s": self.elapsed_s,
            "model_s": model_s,
            "repl_s": repl_s,
            "storage_stall_s": stall_s,
            "engine_s": max(0.0, self.elapsed_s - model_s - repl_s - stall_s),
        }


def _inside(t: float, intervals: list[tuple[float, float]]) -> bool:
    return any(a <= t < b for a, b in intervals)


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def _engine_settings(cassette: Cassette, repl: str | None) -> dict:
    recorded = cassette.header.extra.get("engine") or {}
    roots = len(cassette.root_calls)
    settings = {
        "max_iterations": recorded.get("max_iterations") or cassette.header.extra.get("max_iterations") or max(30, roots),
        "max_depth": recorded.get("max_depth") or cassette.header.extra.get("max_depth") or 1,
        "max_concurrency": recorded.get("max_concurrency", 16),
        "output_chars": recorded.get("output_chars", 20_000),
        "cell_timeout_s": recorded.get("cell_timeout_s", 60.0),
        "repl": repl or recorded.get("repl", "inprocess"),
        "cache": bool(recorded.get("sub_call_cache", False)),
    }
    return settings


def replay(
    cassette: Cassette | str | Path,
    context,
    *,
    fetch: str | None = None,
    cache: str | None = None,
    prefetch: str | None = None,
    latency: str | LatencyModel = "recorded",
    repl: str | None = None,
    **context_options,
) -> ReplayResult:
    """Replay `cassette` against `context`: a URI (opened with the given policies) or an opened Context.

    Policies and `context_options` (workers=, cache_bytes=, endpoint_url=, ...) apply only
    when `context` is a URI. `latency` is recorded | zero | scale:K | fitted[:SEED].
    """
    from ..rlm.engine import RLM

    if not isinstance(cassette, Cassette):
        cassette = read_cassette(cassette)
    owns_context = isinstance(context, str)
    if owns_context and "://" not in context:
        raise ValueError(f"replay needs a context URI (mem://, file:///, s3://) or an opened Context, not {context[:60]!r}; "
                         "to replay on text in memory, write it first: write_context(text, 'mem://name')")
    if owns_context:
        from ..context import open_context

        chosen = {k: v for k, v in (("fetch", fetch), ("cache", cache), ("prefetch", prefetch)) if v is not None}
        context = open_context(context, **chosen, **context_options)
    elif fetch or cache or prefetch or context_options:
        raise ValueError("read policies apply to a context opened from a URI; this context is already open")
    session = ReplaySession(cassette, parse_latency(latency, cassette))
    header = cassette.header
    root = ReplayClient(header.root_model or "replay-root", session)
    sub = ReplayClient(header.sub_model or root.model, session)
    others = sorted({c.model for c in cassette.sub_calls} - {sub.model})
    rlm = RLM(root, sub, models=[ReplayClient(m, session) for m in others], observers=[session],
              **_engine_settings(cassette, repl))  # fmt: skip
    own = getattr(context, "trace", None)
    trace = own if isinstance(own, Trace) else Trace()
    started_s = trace.now()
    began = time.perf_counter()
    answer, iterations, ended_by, error, usage, cost = None, 0, "error", None, {}, 0.0
    try:
        result = rlm.completion(context, header.query or "(no query recorded)", trace=trace)
        answer, iterations, ended_by, usage, cost = result.answer, result.iterations, result.ended_by, result.usage, result.cost_usd
    except RlmlabError as stopped:  # a stop or a missing reply is how this replay ended: reported, not raised
        error = f"{type(stopped).__name__}: {stopped}"
        answer = getattr(stopped, "partial_answer", None)
        iterations = session.book.root_iteration
    finally:
        elapsed = time.perf_counter() - began
        if owns_context:
            context.close()
    session.book.close()
    divergences = session.book.divergences
    recorded_cells = len(cassette.top_cells)
    if session.top_cells != recorded_cells:
        divergences.append(Divergence("cell_count", None, None,
                                      f"the replay ran {session.top_cells} top-level cells; the recording has {recorded_cells}"))
    recorded_answer = cassette.final.answer if cassette.final else None
    if cassette.final is not None and answer != recorded_answer:
        divergences.append(Divergence("answer", None, None, "the final answer differs from the recorded one"))
    if cassette.final is not None and (error is None) != (cassette.final.error is None):
        divergences.append(Divergence("outcome", None, None, f"recorded run ended with error {cassette.final.error!r}; "
                                                             f"the replay with {error!r}"))
    return ReplayResult(
        answer=answer,
        recorded_answer=recorded_answer,
        iterations=iterations,
        ended_by=ended_by,
        divergences=divergences,
        cells_run=session.top_cells,
        cells_matched=session.cells_matched,
        trace=trace,
        started_s=started_s,
        elapsed_s=elapsed,
        model_delay_s=session.model_delay_s,
        cost_usd=cost,
        error=error,
        usage=usage,
    )
