"""The RLM with a Claude agent as its root: the REPL is the agent's tool, not a ```repl block.

Why: Claude is trained to act through tools, so it can drive the REPL as one (GUIDE §6)
instead of writing fenced code in prose. The root is Claude Code through the Claude Agent
SDK, set up like `ClaudeAgentClient` (whose settings and helpers it reuses), with no built-in
tools and one in-process MCP server of two tools: `python(code)` runs a cell in the run's
REPL and returns its output cut as the text loop cuts it, plus the variable names;
`final_answer(answer | variable)` ends the run (a missing variable is told to the model).
Below the root nothing changes: llm_query and friends go through the run's `CallGate` to
`sub`, children (`rlm_query`) run the engine's text loop, every cell is a CellEvent.

Each agent model turn is a root LLM call in the trace, priced like any other: its usage is
read from the API's own stream events (message_start, message_delta), which Claude Code
passes on with `include_partial_messages`, so `budget_usd` counts the root as it goes and
stops the run with the engine's typed errors. Claude Code's own `max_budget_usd` and
`max_turns` are a backstop only. A PostToolUse hook ends Claude Code's loop right after a
final answer or a stop, so no model turn is paid for after it. Turn latency runs from when
the CLI was free to call the model (started, or handed its last tool result back) to the
end of the streamed reply. A stop (budget, time limit) that lands while a model call is in
flight takes up to 5 s more: the SDK gives the CLI that long to exit before SIGTERM.

Iterations are python tool calls, the unit of REPL work (as a reply with ```repl blocks is
in the text loop): they are numbered where the cell runs, and label the cell's sub-calls.
(Turns cannot label them: the SDK delivers stream messages and tool calls on separate
paths, so a tool does not know for sure which turn called it.) Root calls in the trace carry
their turn number. `max_iterations` caps the python calls; past it the tool asks for
final_answer. `ended_by` is "final" (final_answer, or FINAL in a cell), "max_iterations"
(Claude Code's max_turns backstop hit: the best answer so far) or "reply" (the agent ended
its turn in prose without final_answer: that prose is the answer).

Claude Code retries its own API calls in this mode (CLAUDE_CODE_MAX_RETRIES=5, unless `env`
says otherwise): a turn inside the agent loop cannot be retried from outside it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from dataclasses import dataclass, field

from ..errors import BudgetExceeded, LLMError, RunStopped
from ..llm.base import CallGate, LLMClient, Usage
from ..llm.claude_agent import (
    STDERR_TAIL_LINES, THINKING_OFF, ClaudeAgentClient, LoopThread, anyio, api_usage, cli_failure, result_failure,
    sdk, system_prompt_option,
)  # fmt: skip
from ..llm.pricing import Price
from . import prompts
from .engine import RLM, _Progress
from .repl import make_repl

SERVER = "rlm"
PYTHON_TOOL = f"mcp__{SERVER}__python"
FINAL_TOOL = f"mcp__{SERVER}__final_answer"
CLI_RETRIES = 5  # Claude Code retries its own API calls: an agent turn cannot be retried from outside
EXTRA_TURNS = 3  # the max_turns backstop: one turn per python call, plus room for final_answer
TOOL_TIMEOUT_GRACE_S = 30.0  # Claude Code waits this much past the cell timeout for a python call
TURN_RECORD_WAIT_S = 10.0  # how long a tool's hook waits for its turn's usage (it streams in at once)

PYTHON_SCHEMA = {
    "type": "object",
    "properties": {"code": {"type": "string", "description": "Python to run in the persistent REPL"}},
    "required": ["code"],
}
FINAL_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "description": "the final answer itself"},
        "variable": {"type": "string", "description": "or: the name of the REPL variable that holds it"},
    },
}


class AgentRLM(RLM):
    """An RLM whose root is a Claude agent driving the REPL through tools; `completion` as `RLM`'s.

    `model`, `cli_path`, `env`, `cwd`, `setting_sources` and `thinking` set up Claude Code as
    for `ClaudeAgentClient` (`model=None` leaves the choice to Claude Code; `price=` prices
    a model rlmlab has no price for). `sub` answers llm_query and runs children (default:
    the same Claude Code as a plain completion client). `agent_prompt` is the root's
    system prompt; `system_prompt` stays the children's. Other settings as for `RLM`.
    """

    def __init__(
        self,
        sub: LLMClient | None = None,
        *,
        model: str | None = None,
        cli_path: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        setting_sources: list[str] | tuple[str, ...] = (),
        thinking: dict | None = THINKING_OFF,
        price: Price | None = None,
        agent_prompt: str = prompts.AGENT_SYSTEM_PROMPT,
        **settings,
    ):
        if settings.get("record_to") is not None:
            raise ValueError("record_to: a Claude agent's root turns cannot be replayed; record a text-loop RLM instead")
        claude_code = dict(cli_path=cli_path, cwd=cwd, setting_sources=setting_sources, thinking=thinking, price=price)
        root = ClaudeAgentClient(model, env={"CLAUDE_CODE_MAX_RETRIES": str(CLI_RETRIES), **(env or {})}, **claude_code)
        # the default sub is the same Claude Code as a plain client, which retries its calls itself
        super().__init__(root, sub or ClaudeAgentClient(model, env=env, **claude_code), **settings)
        self.agent_prompt = agent_prompt

    def _solve(self, context, query: str, depth: int, gate: CallGate) -> tuple[str, int, str]:
        if depth > 0:  # a child: the engine's text loop with `sub`
            return super()._solve(context, query, depth, gate)
        progress = _Progress()
        repl = make_repl(self.repl, context, self._host_functions(gate, depth, progress), **self.repl_options)
        loop = LoopThread("rlmlab-agent")
        try:
            run = _AgentRun(self, gate, repl, progress)
            system = self.agent_prompt.replace("{context_kind}", prompts.context_kind(context))
            prompt = prompts.FIRST_TURN.format(description=prompts.describe(context), query=query)
            with system_prompt_option(system) as system_prompt:
                return loop.run(run.drive(prompt, system_prompt))
        except RunStopped as stop:
            if stop.partial_answer is None:
                stop.partial_answer = progress.partial
            raise
        finally:
            loop.close()
            repl.close()

    def _tool_env(self) -> dict[str, str]:
        """Claude Code's MCP limits, wide enough for a whole cell and its output (unless `env` sets them)."""
        limits = {
            "MCP_TOOL_TIMEOUT": str(int((self.cell_timeout_s + TOOL_TIMEOUT_GRACE_S) * 1000)),
            "MAX_MCP_OUTPUT_TOKENS": str(self._result_chars()),  # a token is at least a character
        }
        return limits | self.root.env

    def _result_chars(self) -> int:
        """The longest python result: printed text and error, each cut to output_chars, and notes."""
        return 2 * self.output_chars + 10_000


@dataclass
class _Turn:
    start: float
    usage: dict
    parts: list[str] = field(default_factory=list)
    tool_ids: list[str] = field(default_factory=list)


class _AgentRun:
    """One top-level agent run: the tools' state, read by the tool handlers (on the SDK's loop,
    cells in worker threads) and by `drive`, which reads Claude Code's messages."""

    def __init__(self, rlm: AgentRLM, gate: CallGate, repl, progress: _Progress):
        self.rlm, self.gate, self.repl, self.progress = rlm, gate, repl, progress
        self.lock = threading.Lock()  # one cell at a time, each with its own iteration number
        self.iterations = 0
        self.turns = 0
        self.answer: str | None = None
        self.stopped: RunStopped | None = None
        self.turn: _Turn | None = None
        self._turn_recorded: dict[str, anyio.Event] = {}  # by tool_use id: the turn that called it is priced
        self.idle_since = gate.trace.now()  # when Claude Code was last free to call the model

    # -- the tools ------------------------------------------------------------------------
    def server(self):
        @sdk.tool("python", "Run Python in the REPL that holds `context`; returns what it printed.", PYTHON_SCHEMA,
                  annotations=sdk.ToolAnnotations(maxResultSizeChars=self.rlm._result_chars()))  # fmt: skip
        async def python(args):
            return await self._tool_reply(self.python, args["code"])

        @sdk.tool("final_answer", "End the run with the answer, given as text or as a REPL variable's name.",
                  FINAL_SCHEMA)  # fmt: skip
        async def final_answer(args):
            return await self._tool_reply(self.final_answer, args.get("answer"), args.get("variable"))

        return sdk.create_sdk_mcp_server(SERVER, tools=[python, final_answer])

    async def _tool_reply(self, work, *args) -> dict:
        """Run a tool's work in a worker thread, so the SDK's loop keeps reading Claude Code meanwhile."""
        try:
            text = await anyio.to_thread.run_sync(work, *args)
        finally:
            self.idle_since = self.gate.trace.now()
        return {"content": [{"type": "text", "text": text}]}

    def python(self, code: str) -> str:
        with self.lock:
            if self.answer is not None or self.stopped is not None:
                return "The run has ended; this code did not run."
            if self.iterations >= self.rlm.max_iterations:
                return prompts.AGENT_LAST_CALL.format(max_iterations=self.rlm.max_iterations)
            if not self._still_going():
                return f"The run is stopped: {self.stopped}"
            self.iterations += 1
            self.progress.iteration = self.iterations
            output = self.rlm._run_cell(self.repl, code, 0, self.iterations, self.gate)
            if output.final is not None:  # FINAL(...) in a cell ends the run as in the text loop
                self.answer = self.progress.partial = output.final
            self._still_going()  # sub-calls inside the cell may have spent the budget
            return f"{self.rlm._shown(output)}\n\nREPL variables: {', '.join(self.repl.variables()) or 'none'}"

    def final_answer(self, answer: str | None, variable: str | None) -> str:
        if (answer is None) == (variable is None):
            return "Call final_answer with exactly one of `answer` (the text) or `variable` (a REPL variable's name)."
        with self.lock:
            if variable is not None:
                found, answer = self.repl.lookup(variable)
                if not found:
                    names = ", ".join(self.repl.variables()) or "none"
                    return prompts.AGENT_MISSING_VARIABLE.format(name=variable, variables=names)
            self.answer = self.progress.partial = answer
        return "Final answer recorded; the run ends."

    def _still_going(self) -> bool:
        try:
            self.gate.check(self.progress.partial)
            return True
        except RunStopped as stop:
            self.stopped = stop
            return False

    async def _after_tool(self, hook_input, tool_use_id, context) -> dict:
        """Claude Code's loop ends once there is an answer or a stop: no model turn after it.

        Claude Code runs a tool while the reply that called it is still streaming, so this first
        waits for that turn to be priced: a turn that spent the budget is never followed by another.
        """
        with anyio.move_on_after(TURN_RECORD_WAIT_S):
            await self._recorded(tool_use_id).wait()
        if self.answer is not None or self.stopped is not None or not self._still_going():
            return {"continue_": False, "stopReason": "the RLM run has ended"}
        return {}

    def _recorded(self, tool_use_id: str) -> anyio.Event:
        return self._turn_recorded.setdefault(tool_use_id, anyio.Event())

    # -- Claude Code's messages -------------------------------------------------------------
    async def drive(self, prompt: str, system_prompt) -> tuple[str, int, str]:
        rlm = self.rlm
        stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        options = rlm.root.agent_options(
            system_prompt=system_prompt,
            mcp_servers={SERVER: self.server()},
            allowed_tools=[PYTHON_TOOL, FINAL_TOOL],
            hooks={"PostToolUse": [sdk.HookMatcher(matcher=f"{PYTHON_TOOL}|{FINAL_TOOL}", hooks=[self._after_tool])]},
            max_turns=rlm.max_iterations + EXTRA_TURNS,
            max_budget_usd=rlm.budget_usd,
            include_partial_messages=True,
            env=rlm._tool_env(),
            stderr=stderr.append,
        )
        result, rate_limit = None, None
        try:
            with anyio.fail_after(self.gate.remaining_s()):
                async with contextlib.aclosing(sdk.query(prompt=prompt, options=options)) as messages:
                    async for message in messages:
                        if isinstance(message, sdk.StreamEvent):
                            self._on_stream_event(message.event)
                        elif isinstance(message, sdk.AssistantMessage):
                            self._on_reply(message)
                        elif isinstance(message, sdk.SystemMessage) and message.subtype == "init":
                            self.idle_since = self.gate.trace.now()
                        elif isinstance(message, sdk.ResultMessage):
                            result = message
                        elif isinstance(message, sdk.RateLimitEvent):
                            rate_limit = message.rate_limit_info
                        self._check()
        except TimeoutError:
            self._check()  # the deadline passed: RunTimedOut
            raise
        except sdk.ClaudeSDKError as error:
            if result is None or result.subtype not in ("error_max_turns", "error_max_budget_usd"):
                self._fail(cli_failure(error, rate_limit, stderr))
        self._check()
        if self.answer is not None:
            return self.answer, self.iterations, "final"
        if result is not None and result.subtype == "error_max_budget_usd":
            raise BudgetExceeded(
                f"Claude Code stopped at its budget backstop of ${rlm.budget_usd:.6f} (rlmlab counted "
                f"${self.gate.spent_usd:.6f})", spent_usd=self.gate.spent_usd, budget_usd=rlm.budget_usd,
                partial_answer=self.progress.partial,
            )  # fmt: skip
        if result is not None and result.subtype == "error_max_turns":
            return self.progress.partial or "", self.iterations, "max_iterations"
        if result is None or result.is_error:
            self._fail(result_failure(result, rate_limit, stderr))
        return (result.result or self.progress.partial or "").strip(), self.iterations, "reply"

    def _on_stream_event(self, event: dict) -> None:
        """A turn's usage as the API streamed it: input at message_start, the final output at message_delta."""
        kind = event.get("type")
        if kind == "message_start":
            if self.turn is not None:
                self._finish_turn("the reply stream broke off")
            self.turn = _Turn(self.idle_since, _reported(event.get("message", {}).get("usage")))
        elif kind == "message_delta" and self.turn is not None:
            self.turn.usage.update(_reported(event.get("usage")))
        elif kind == "message_stop" and self.turn is not None:
            self._finish_turn()

    def _on_reply(self, message) -> None:
        text = "".join(block.text for block in message.content if isinstance(block, sdk.TextBlock))
        if text.strip():
            self.progress.partial = text
        calls = [block for block in message.content if isinstance(block, sdk.ToolUseBlock)]
        if self.turn is None:  # a reply outside any streamed turn: nothing to wait for
            for block in calls:
                self._recorded(block.id).set()
            return
        self.turn.parts += ([text] if text else []) + [f"[{block.name}] {block.input}" for block in calls]
        self.turn.tool_ids += [block.id for block in calls]

    def _finish_turn(self, error: str | None = None) -> None:
        turn, self.turn = self.turn or _Turn(self.idle_since, {}), None
        self.turns += 1
        usage = api_usage(turn.usage) if turn.usage else Usage()
        self.gate.record_call(self.rlm.root, usage, turn.start, role="root", depth=0, iteration=self.turns,
                              response="\n".join(turn.parts) or None, error=error)  # fmt: skip
        for tool_use_id in turn.tool_ids:
            self._recorded(tool_use_id).set()

    def _check(self) -> None:
        if self.stopped is not None:
            raise self.stopped
        self.gate.check(self.progress.partial)

    def _fail(self, failure: Exception):
        """Claude Code failed: the open turn (if any) is recorded as a failed root call, then LLMError."""
        root = self.rlm.root
        message = root.redact(str(failure))
        self._finish_turn(message)
        raise LLMError(f"{root.provider} agent run failed: {message}", model=root.model,
                       status=getattr(failure, "status", None)) from None  # fmt: skip


def _reported(usage: dict | None) -> dict:
    return {name: value for name, value in (usage or {}).items() if value is not None}
