"""Claude through the Claude Agent SDK: the user's own Claude Code login as a completion model.

Why: the bundled Claude Code CLI authenticates however Claude Code is set up (a Claude
subscription login, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, Bedrock or Vertex settings in
the environment), so rlmlab needs no key of its own.

A plain completion, not an agent: `tools=[]` (no built-in tools), `max_turns=1`, no MCP
servers (`strict_mcp_config`), no settings files (`setting_sources=[]`: a user's hooks would
run on every call; pass `setting_sources=["user"]` when auth or env lives in settings.json),
`--no-session-persistence` (measured: nothing is written under `projects/`), verbatim prompts
(REPL output mentioning `@/some/path` is not expanded into a file read), thinking off like
`AnthropicClient` (`thinking=` turns it on), the CLI's own retries off
(`CLAUDE_CODE_MAX_RETRIES=0`: `LLMClient.complete` retries, so attempts count alike for every
provider) and `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1` (no telemetry, update checks or
reachability probes). Claude Code still adds a one-line identity and a billing header before
the system prompt, and an environment reminder to the first user message; rlmlab cannot turn
these off. Its working directory is the temp dir, so no project's git state reaches the prompt.

History: `query()` takes one prompt. Its streaming mode (an async iterable of messages) was
tried with CLI 2.1.332: every user message starts its own model turn (a paid call per earlier
turn), and user messages marked `shouldQuery: false` are merged into the next querying one,
after any assistant turns, so the order of the history is lost. Resuming a fabricated session
would depend on the CLI's internal transcript format. So a multi-turn conversation is rendered
into one user message, each turn inside `<user_turn>` / `<assistant_turn>` tags; a lone user
message (every `llm_query`) goes verbatim. System messages become the system prompt.

Threads: `_send` is synchronous and called from up to 16 threads at once; `query()` is async.
Each client owns one event-loop thread and every call is a task on it, so N concurrent calls
are N CLI processes in flight. A loop per call (`anyio.run`) would fail in a thread that already
runs one: Jupyter's main thread, where the root call is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

try:
    import anyio
    import claude_agent_sdk as sdk
except ImportError as missing:  # a minimal install
    raise ImportError("ClaudeAgentClient needs the Claude Agent SDK: pip install 'rlmlab[agent]'") from missing

from .base import Completion, LLMClient, Messages, Usage, estimated_usage

DEFAULT_MODEL_NAME = "claude-agent"  # how usage is keyed when Claude Code picks the model
THINKING_OFF = {"type": "disabled"}
SETTING_SOURCES = {"user", "project", "local"}
QUIET_CLI_ENV = {
    "CLAUDE_CODE_MAX_RETRIES": "0",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
}
SECRET_ENV = (
    "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK",
)  # fmt: skip
HISTORY_PREAMBLE = (
    "The conversation so far, oldest turn first. You are the assistant: write your next turn, "
    "replying to the last user turn, without any turn tags."
)
MAX_ARGV_PROMPT_BYTES = 64 * 1024  # Linux caps one argv string at 128 KiB: longer system prompts go in a file
STDERR_TAIL_LINES = 20


class ClaudeCodeFailure(Exception):
    """A call Claude Code ran but failed: the HTTP status it met, and whether a retry may help."""

    def __init__(self, message: str, *, status: int | None, retryable: bool, retry_after_s: float | None = None):
        self.status = status
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        super().__init__(message)


class ClaudeAgentClient(LLMClient):
    """A Claude model through the Claude Code CLI; `model=None` leaves the choice to Claude Code.

    `env` is added to the inherited environment of the CLI (ANTHROPIC_BASE_URL, a HOME or
    CLAUDE_CONFIG_DIR, CLAUDE_CODE_USE_BEDROCK, ...). `bare=True` runs `claude --bare`: no
    environment reminder in the prompt and a faster start, but Anthropic auth only through
    ANTHROPIC_API_KEY (a subscription login is not read); Bedrock and Vertex still work.
    """

    provider = "claude-agent"

    def __init__(
        self,
        model: str | None = None,
        *,
        cli_path: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        setting_sources: list[str] | tuple[str, ...] = (),
        thinking: dict | None = THINKING_OFF,
        bare: bool = False,
        timeout_s: float = 600.0,
        **limits,
    ):
        super().__init__(model or DEFAULT_MODEL_NAME, **limits)
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if cli_path is not None and shutil.which(str(cli_path)) is None:
            raise ValueError(f"cli_path {str(cli_path)!r} is not an executable file (or a command on PATH)")
        self.cli_model = model
        self.cli_path = cli_path
        self.cwd = str(cwd) if cwd is not None else tempfile.gettempdir()
        unknown = sorted(set(setting_sources) - SETTING_SOURCES)
        if unknown:
            raise ValueError(f"setting_sources may hold {sorted(SETTING_SOURCES)}, got {unknown}")
        self.setting_sources = list(setting_sources)
        self.thinking = dict(thinking) if thinking is not None else None
        self.timeout_s = timeout_s
        self.extra_args = {"no-session-persistence": None} | ({"bare": None} if bare else {})
        self.env = {**QUIET_CLI_ENV, **(env or {})}
        if self.max_output_tokens is not None:
            self.env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(self.max_output_tokens)
        inherited = {**os.environ, **self.env}
        self._secrets.extend(inherited[name] for name in SECRET_ENV if inherited.get(name))
        self.reported_cost_usd = 0.0  # what Claude Code says its calls cost; informational, prices are rlmlab's
        self._loop: LoopThread | None = None
        self._loop_lock = threading.Lock()

    def _send(self, messages: Messages) -> Completion:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        prompt = render_turns([m for m in messages if m["role"] != "system"])
        with self._loop_lock:
            if self._loop is None:
                self._loop = LoopThread(f"claude-agent-{self.model}")
            loop = self._loop
        with system_prompt_option(system) as system_prompt:
            completion, cost = loop.run(self._query(prompt, system_prompt, messages))
        if cost:
            with self._loop_lock:
                self.reported_cost_usd += cost
        return completion

    def agent_options(self, **overrides) -> sdk.ClaudeAgentOptions:
        """This client's CLI settings as SDK options: no built-in tools, no outside MCP servers
        or settings files, one turn; `overrides` change any of them (rlmlab.rlm.agent adds tools)."""
        options = dict(
            model=self.cli_model,
            tools=[],
            max_turns=1,
            mcp_servers={},
            strict_mcp_config=True,
            setting_sources=self.setting_sources,
            verbatim_prompts=True,
            thinking=self.thinking,
            cli_path=self.cli_path,
            cwd=self.cwd,
            env=self.env,
            extra_args=self.extra_args,
        )
        return sdk.ClaudeAgentOptions(**(options | overrides))

    async def _query(self, prompt: str, system_prompt, messages: Messages) -> tuple[Completion, float | None]:
        stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        options = self.agent_options(system_prompt=system_prompt, stderr=stderr.append)
        texts: list[str] = []
        model, result, rate_limit = self.model, None, None
        try:
            with anyio.fail_after(self.timeout_s):
                async for message in sdk.query(prompt=prompt, options=options):
                    if isinstance(message, sdk.AssistantMessage):
                        model = message.model or model
                        texts += [block.text for block in message.content if isinstance(block, sdk.TextBlock)]
                    elif isinstance(message, sdk.ResultMessage):
                        result = message
                    elif isinstance(message, sdk.RateLimitEvent):
                        rate_limit = message.rate_limit_info
        except sdk.ClaudeSDKError as error:
            raise cli_failure(error, rate_limit, stderr) from None
        except TimeoutError:  # the SDK then stops the CLI: stdin closed, SIGTERM after 5 s
            raise ClaudeCodeFailure(
                f"Claude Code gave no result within {self.timeout_s} s{_tail(stderr)}", status=None, retryable=True
            ) from None
        if result is None or result.is_error:
            raise result_failure(result, rate_limit, stderr)
        text = result.result if result.result is not None else "".join(texts)
        return Completion(text, model, _usage(result.usage, messages, text)), result.total_cost_usd

    def _classify(self, error: Exception) -> tuple[bool, int | None, float | None]:
        if isinstance(error, ClaudeCodeFailure):
            return error.retryable, error.status, error.retry_after_s
        return False, None, None

    def close(self) -> None:
        """Stop the event-loop thread; a later call starts a new one."""
        with self._loop_lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()


def render_turns(turns: Messages) -> str:
    """One prompt for the CLI: a lone user message as is, a longer history with role tags."""
    if not turns:
        raise ValueError("the messages hold no user or assistant turn to answer")
    if len(turns) == 1 and turns[0]["role"] == "user":
        return turns[0]["content"]
    unknown = sorted({m["role"] for m in turns} - {"user", "assistant"})
    if unknown:
        raise ValueError(f"message roles must be system, user or assistant, got {unknown}")
    tagged = [f"<{m['role']}_turn>\n{m['content']}\n</{m['role']}_turn>" for m in turns]
    return "\n\n".join([HISTORY_PREAMBLE, *tagged])


@contextlib.contextmanager
def system_prompt_option(system: str):
    """The system prompt as the SDK takes it: a string, or a file while the call runs when too long for argv."""
    if len(system.encode()) <= MAX_ARGV_PROMPT_BYTES:
        yield system or None
        return
    with tempfile.TemporaryDirectory(prefix="rlmlab-agent-") as scratch:
        path = Path(scratch, "system_prompt.txt")
        path.write_text(system, encoding="utf-8")
        yield {"type": "file", "path": str(path)}


def _usage(reported: dict | None, messages: Messages, text: str) -> Usage:
    """The result's usage, or an estimate when Claude Code reported none."""
    return api_usage(reported) if reported else estimated_usage(messages, text)


def api_usage(reported: dict) -> Usage:
    """Usage as the Messages API reports it, every prompt token in `input_tokens` as AnthropicClient counts them."""
    read = reported.get("cache_read_input_tokens") or 0
    written = reported.get("cache_creation_input_tokens") or 0
    return Usage((reported.get("input_tokens") or 0) + read + written, reported.get("output_tokens") or 0, read)


def result_failure(result, rate_limit, stderr: deque[str]) -> ClaudeCodeFailure:
    """A run that ended with no ResultMessage, or an error one, as a ClaudeCodeFailure."""
    status = None if result is None else result.api_error_status
    why = "ended without a result" if result is None else f"reported {result.subtype}: {result.result}"
    return ClaudeCodeFailure(
        f"Claude Code {why}{_tail(stderr)}", status=status, retryable=_retryable_status(status),
        retry_after_s=_resets_in_s(rate_limit),
    )  # fmt: skip


def cli_failure(error: Exception, rate_limit, stderr: deque[str]) -> ClaudeCodeFailure:
    """An SDK error as a ClaudeCodeFailure that says whether to retry.

    ResultError: the CLI reached the API and reports the HTTP status (none for a connection
    failure). A CLI killed by a signal (out of memory) may pass on a retry; one that is missing,
    cannot start or exits at once (CLIConnectionError), or talks nonsense needs a fix instead.
    """
    message = f"{type(error).__name__}: {error}{_tail(stderr)}"
    if isinstance(error, sdk.ResultError):
        status = error.api_error_status
        retryable = _retryable_status(status) if status is not None else error.terminal_reason == "api_error"
        return ClaudeCodeFailure(message, status=status, retryable=retryable, retry_after_s=_resets_in_s(rate_limit))
    if isinstance(error, sdk.CLINotFoundError):
        return ClaudeCodeFailure(
            f"{message}. Pass cli_path= or reinstall claude-agent-sdk, which bundles the CLI",
            status=None,
            retryable=False,
        )
    if isinstance(error, sdk.ProcessError):
        return ClaudeCodeFailure(message, status=None, retryable=(error.exit_code or 0) < 0)
    return ClaudeCodeFailure(message, status=None, retryable=False)


def _retryable_status(status: int | None) -> bool:
    return status is not None and (status in (408, 409, 429) or status >= 500)


def _resets_in_s(rate_limit) -> float | None:
    """Seconds until a rejected subscription rate limit resets, as a Retry-After."""
    if rate_limit is None or rate_limit.status != "rejected" or not rate_limit.resets_at:
        return None
    return max(0.0, rate_limit.resets_at - time.time())


def _tail(stderr: deque[str]) -> str:
    return "\nClaude Code stderr:\n" + "\n".join(stderr) if stderr else ""


class LoopThread:
    """One asyncio loop in a daemon thread; any thread runs a coroutine on it and waits."""

    def __init__(self, name: str):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine):
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # the caller gave up (KeyboardInterrupt): stop the CLI too
            raise

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
