"""The Recursive Language Model loop (Zhang, Kraska, Khattab), readable in one sitting.

The root model sees the query and a description of `context`, never its text. It replies
with ```repl blocks; the REPL runs them (with `context`, `llm_query`, `llm_query_batched`,
`rlm_query`, `rlm_query_batched`) and the root sees their output, cut to a limit. The run
ends at FINAL(answer) / FINAL_VAR(name) (in prose or in code) or `answer["ready"] = True`;
after `max_iterations` one more call asks for the best answer.

Every model call of a run, at every depth, goes through one `CallGate`: one concurrency
limit, one dollar budget, one deadline, one trace. The trace is the context's own trace
when the context has one (an rlmlab `Context`), so storage reads and model calls share a
clock; otherwise the run gets a new one (or pass `trace=`).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from ..errors import RunStopped
from ..llm.base import CallGate, LLMClient, ModelUsage, SubCallCache
from ..trace import CellEvent, Trace
from . import prompts
from .parsing import code_blocks, find_final
from .repl import REPLS, CellOutput, make_repl


@dataclass
class Result:
    answer: str
    iterations: int  # root iterations of the top-level run
    usage: dict[str, ModelUsage]  # per model, sub-calls and children included
    cost_usd: float
    trace: Trace
    elapsed_s: float
    ended_by: str  # "final" or "max_iterations" (and "reply" for an AgentRLM, see rlmlab.rlm.agent)


@dataclass(frozen=True)
class CellRecord:
    """What an observer learns of each REPL cell (`on_cell`), beyond the trace's CellEvent."""

    depth: int
    iteration: int
    code: str
    output: CellOutput
    start_s: float


class _Progress:
    """Where one (possibly child) run is: for partial answers and for labelling sub-calls."""

    def __init__(self):
        self.iteration = 0
        self.partial: str | None = None  # the answer found, else the last reply


class RLM:
    def __init__(
        self,
        root: LLMClient,
        sub: LLMClient | None = None,
        *,
        max_iterations: int = 30,
        max_depth: int = 1,
        max_concurrency: int = 16,
        budget_usd: float | None = None,
        timeout_s: float | None = None,
        cell_timeout_s: float = 60.0,
        repl: str = "inprocess",
        repl_options: dict | None = None,
        output_chars: int = 20_000,
        cache: SubCallCache | bool | None = None,
        models: list[LLMClient] = (),
        system_prompt: str = prompts.SYSTEM_PROMPT,
        observers: list = (),
        record_to: str | None = None,
    ):
        """`sub` answers llm_query (default: the root's client); `models` adds clients `model=` can name.

        `observers` get `on_llm_call(LLMCallRecord)` and `on_cell(CellRecord)` when they have them.
        """
        _positive(max_iterations=max_iterations, max_depth=max_depth, max_concurrency=max_concurrency,
                  cell_timeout_s=cell_timeout_s, output_chars=output_chars)  # fmt: skip
        if budget_usd is not None and budget_usd <= 0:
            raise ValueError(f"budget_usd must be positive, got {budget_usd}")
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if repl not in REPLS:
            raise ValueError(f"unknown repl {repl!r}; choose one of {sorted(REPLS)}")
        self.root, self.sub = root, sub or root
        self.models = {client.model: client for client in (self.sub, *models)}
        if budget_usd is not None:
            unpriced = [c.model for c in (self.root, *self.models.values()) if c.price is None]
            if unpriced:
                raise ValueError(
                    f"budget_usd needs a price for every model, and {unpriced} have none in "
                    "rlmlab.llm.pricing.PRICES; pass price=Price(...) to the client"
                )
        self.max_iterations, self.max_depth = max_iterations, max_depth
        self.max_concurrency, self.budget_usd, self.timeout_s = max_concurrency, budget_usd, timeout_s
        self.cell_timeout_s, self.output_chars = cell_timeout_s, output_chars
        self.repl, self.repl_options = repl, dict(repl_options or {})
        self.cache = SubCallCache() if cache is True else (cache or None)
        self.system_prompt = system_prompt
        self.observers = list(observers)
        self.record_to = record_to  # each completion is written there as a cassette (rlmlab.replay)

    # -- the run ---------------------------------------------------------------------------
    def completion(self, context, query: str, *, trace: Trace | None = None) -> Result:
        """Answer `query` about `context` (str, list, dict, or an rlmlab Context)."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        if self.record_to is not None:
            from ..replay.record import record

            return record(self, context, query, self.record_to, trace=trace)
        if trace is None:
            own = getattr(context, "trace", None)
            trace = own if isinstance(own, Trace) else Trace()
        gate = CallGate(
            trace, self.max_concurrency, self.budget_usd, self.timeout_s, self.cache,
            [o for o in self.observers if hasattr(o, "on_llm_call")],
        )  # fmt: skip
        started = time.perf_counter()
        answer, iterations, ended_by = self._solve(context, query, 0, gate)
        return Result(answer, iterations, gate.usage, gate.spent_usd, trace, time.perf_counter() - started, ended_by)

    def _solve(self, context, query: str, depth: int, gate: CallGate) -> tuple[str, int, str]:
        root = self.root if depth == 0 else self.sub
        progress = _Progress()
        repl = make_repl(self.repl, context, self._host_functions(gate, depth, progress), **self.repl_options)
        messages = [
            {"role": "system", "content": self.system_prompt.replace("{context_kind}", prompts.context_kind(context))},
            {"role": "user", "content": prompts.FIRST_TURN.format(description=prompts.describe(context), query=query)},
        ]
        try:
            for iteration in range(1, self.max_iterations + 1):
                progress.iteration = iteration
                gate.check(progress.partial)
                reply = gate.call(root, messages, role="root", depth=depth, iteration=iteration)
                messages.append({"role": "assistant", "content": reply})
                progress.partial = reply
                answer, feedback = self._act(reply, repl, depth, iteration, gate, progress)
                if answer is not None:
                    return answer, iteration, "final"
                messages.append({"role": "user", "content": feedback})
            gate.check(progress.partial)
            messages.append({"role": "user", "content": prompts.LAST_CALL})
            reply = gate.call(root, messages, role="root", depth=depth, iteration=self.max_iterations + 1)
            return self._last_answer(reply, repl), self.max_iterations, "max_iterations"
        except RunStopped as stop:
            if stop.partial_answer is None:
                stop.partial_answer = progress.partial
            raise
        finally:
            repl.close()

    def _act(self, reply: str, repl, depth: int, iteration: int, gate: CallGate, progress: _Progress):
        """Run the reply's code, then honour its FINAL: (answer or None, feedback for the root)."""
        blocks = code_blocks(reply)
        parts, answer = [], None
        for number, code in enumerate(blocks, 1):
            output = self._run_cell(repl, code, depth, iteration, gate)
            header = f"REPL output (block {number} of {len(blocks)}):" if len(blocks) > 1 else "REPL output:"
            parts.append(f"{header}\n{self._shown(output)}")
            if output.final is not None:
                answer = output.final
                break
        marker = find_final(reply) if answer is None else None
        if marker is not None and marker.kind == "answer":
            answer = marker.value
        elif marker is not None:
            found, value = repl.lookup(marker.value)
            if found:
                answer = value
            else:
                parts.append(prompts.MISSING_VARIABLE.format(name=marker.value, variables=", ".join(repl.variables()) or "none"))
        if answer is not None:
            progress.partial = answer
        gate.check(progress.partial)  # sub-calls inside the cells may have spent the budget
        if answer is not None:
            return answer, ""
        if not blocks and marker is None:
            parts.append(prompts.NO_CODE)
        elif blocks:
            parts.append(f"REPL variables: {', '.join(repl.variables()) or 'none'}")
        parts.append(prompts.NEXT_TURN.format(iteration=iteration + 1, max_iterations=self.max_iterations))
        return None, "\n\n".join(parts)

    def _last_answer(self, reply: str, repl) -> str:
        marker = find_final(reply)
        if marker is None:
            return reply.strip()
        if marker.kind == "variable":
            found, value = repl.lookup(marker.value)
            return value if found else reply.strip()
        return marker.value

    def _run_cell(self, repl, code: str, depth: int, iteration: int, gate: CallGate) -> CellOutput:
        remaining = gate.remaining_s()
        timeout = self.cell_timeout_s if remaining is None else max(0.01, min(self.cell_timeout_s, remaining))
        start = gate.trace.now()
        output = repl.run(code, timeout)
        gate.trace.record(CellEvent(start, depth, iteration, code, output.duration_s, output.output_chars, output.error))
        for observer in self.observers:
            if hasattr(observer, "on_cell"):
                observer.on_cell(CellRecord(depth, iteration, code, output, start))
        return output

    def _shown(self, output: CellOutput) -> str:
        """A cell's output as the root sees it: printed text cut to `output_chars` with a note
        saying how much was cut, then the error (its end, where the message is) in full view."""
        printed = (output.stdout + output.stderr).rstrip()
        if output.output_chars > self.output_chars:
            cut = output.output_chars - self.output_chars
            printed = (f"{printed[: self.output_chars]}\n[... {cut:,} of {output.output_chars:,} characters cut; "
                       "print less, e.g. a slice or a summary]")  # fmt: skip
        error = (output.error or "")[-self.output_chars :]
        return "\n".join(part for part in (printed, error) if part) or "(no output)"

    # -- what the REPL can call ------------------------------------------------------------
    def _host_functions(self, gate: CallGate, depth: int, progress: _Progress) -> dict:
        def llm_query(prompt, model=None):
            return self._sub_query(gate, prompt, model, depth, progress.iteration, None, None)

        def llm_query_batched(prompts_, model=None):
            batch = gate.new_batch_id()
            return self._together(
                [lambda i=i, p=p: self._sub_query(gate, p, model, depth, progress.iteration, batch, i)
                 for i, p in enumerate(_as_list(prompts_, "prompts"))]
            )  # fmt: skip

        def rlm_query(prompt, context=None, model=None):
            return self._child(gate, prompt, context, model, depth, progress.iteration)

        def rlm_query_batched(prompts_, contexts=None, model=None):
            prompts_ = _as_list(prompts_, "prompts")
            contexts = [None] * len(prompts_) if contexts is None else _as_list(contexts, "contexts")
            if len(contexts) != len(prompts_):
                raise ValueError(f"rlm_query_batched got {len(prompts_)} prompts but {len(contexts)} contexts")
            return self._together(
                [lambda p=p, c=c: self._child(gate, p, c, model, depth, progress.iteration)
                 for p, c in zip(prompts_, contexts)]
            )  # fmt: skip

        return {"llm_query": llm_query, "llm_query_batched": llm_query_batched,
                "rlm_query": rlm_query, "rlm_query_batched": rlm_query_batched}  # fmt: skip

    def _sub_query(self, gate, prompt, model, depth, iteration, batch_id, index) -> str:
        """A plain sub-call; a failure (or a spent budget) comes back as "Error: ..." text."""
        try:
            client = self._client(model)
            return gate.call(client, [{"role": "user", "content": str(prompt)}], role="sub", depth=depth + 1,
                             batch_id=batch_id, batch_index=index, iteration=iteration)  # fmt: skip
        except Exception as error:  # the model's code gets text, never an exception that ends the run
            return f"Error: {error}"

    def _child(self, gate, prompt, context, model, depth, iteration) -> str:
        """A child RLM with its own REPL; at max depth, a plain call."""
        if depth + 1 >= self.max_depth:
            text = str(prompt) if context is None else f"{prompt}\n\n{context}"
            return self._sub_query(gate, text, model, depth, iteration, None, None)
        try:
            if context is None:
                return self._solve(str(prompt), prompts.CHILD_QUERY.format(prompt=_clip(str(prompt))), depth + 1, gate)[0]
            return self._solve(context, str(prompt), depth + 1, gate)[0]
        except Exception as error:
            return f"Error: {error}"

    def _client(self, model: str | None) -> LLMClient:
        if model is None:
            return self.sub
        if model not in self.models:
            raise KeyError(f"no client for model {model!r}; available: {sorted(self.models)}")
        return self.models[model]

    def _together(self, calls: list) -> list[str]:
        """Run independent calls at once; the gate's shared limit decides how many talk to a model."""
        if len(calls) <= 1:
            return [call() for call in calls]
        pool = ThreadPoolExecutor(max_workers=min(len(calls), self.max_concurrency), thread_name_prefix="rlmlab-sub")
        try:
            futures = [pool.submit(call) for call in calls]
            pending = set(futures)
            while pending:  # short waits, so a cell timeout can interrupt the waiting cell between them
                _, pending = wait(pending, timeout=0.1)
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _as_list(value, name: str) -> list:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list, got {type(value).__name__}")
    return list(value)


def _clip(text: str, limit: int = 2_000) -> str:
    return text if len(text) <= limit else f"{text[:limit]} ... [{len(text) - limit:,} more characters in `context`]"


def _positive(**values) -> None:
    for name, value in values.items():
        if value is None or value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
