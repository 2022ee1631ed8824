"""What every model client shares, and the one gate every call of a run goes through.

A client (`OpenAIClient`, `AnthropicClient`, ...) turns chat messages into a `Completion`
and owns what is about one provider account: retries with backoff on 429/5xx and a rate
limiter. A `CallGate` owns what is about one RLM run: a single concurrency limit shared
by every depth, the dollar budget (root, sub-calls and children together), an optional
sub-call cache, the deadline, per-model usage, and the trace event of every call.
"""

from __future__ import annotations

import random
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field

from ..errors import BudgetExceeded, LLMError, RunTimedOut
from ..trace import LLMCallEvent, Trace
from .pricing import Price, price_for

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Usage:
    """Tokens of one call. `input_tokens` includes `cached_tokens`; `estimated` when the provider gave none."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    usage: Usage
    attempts: int = 1


def estimate_tokens(text: str) -> int:
    """About four characters per token: good enough to price a simulated run, and marked estimated."""
    return max(1, (len(text) + 3) // 4)


def messages_text(messages: Messages) -> str:
    return "\n".join(str(m.get("content", "")) for m in messages)


def estimated_usage(messages: Messages, reply: str) -> Usage:
    """Usage when the provider reported none (a simulated or scripted call), marked estimated."""
    return Usage(estimate_tokens(messages_text(messages)), estimate_tokens(reply), 0, estimated=True)


def sdk_retry_decision(error: Exception, sdk) -> tuple[bool, int | None, float | None]:
    """`LLMClient._classify` for the official SDKs: `openai` and `anthropic` share these error classes."""
    if isinstance(error, (sdk.APIConnectionError, sdk.APITimeoutError)):
        return True, None, None
    if isinstance(error, sdk.APIStatusError):
        status = error.status_code
        return status in (408, 409, 429) or status >= 500, status, retry_after_s(error.response)
    return False, None, None


def retry_after_s(response) -> float | None:
    """The server's `retry-after-ms` or `retry-after` header, in seconds."""
    if response is None:
        return None
    for header, scale in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = response.headers.get(header)
        if value is not None:
            try:
                return float(value) / scale
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's Retry-After wins when it is longer."""

    max_retries: int = 5
    base_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        backoff = random.uniform(0, min(self.max_s, self.base_s * 2 ** (attempt - 1)))
        return max(backoff, min(retry_after_s or 0.0, self.max_s))


class RateLimiter:
    """Requests and tokens per minute over a sliding one-minute window, shared by threads."""

    def __init__(self, requests_per_minute: int | None = None, tokens_per_minute: int | None = None):
        for name, value in (("requests_per_minute", requests_per_minute), ("tokens_per_minute", tokens_per_minute)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.rpm, self.tpm = requests_per_minute, tokens_per_minute
        self._sent: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def acquire(self, tokens: int) -> float:
        """Block until one request of `tokens` fits; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0][0] >= 60.0:
                    self._sent.popleft()
                used = sum(t for _, t in self._sent)
                fits_rpm = self.rpm is None or len(self._sent) < self.rpm
                # One request larger than the whole token budget still goes when the window is empty.
                fits_tpm = self.tpm is None or used + tokens <= self.tpm or not self._sent
                if fits_rpm and fits_tpm:
                    self._sent.append((now, tokens))
                    return waited
                pause = max(0.01, 60.0 - (now - self._sent[0][0]))
            time.sleep(pause)
            waited += pause


class LLMClient(ABC):
    """One model at one provider. Subclasses implement `_send` (one attempt) and `_classify`."""

    provider = "llm"

    def __init__(
        self,
        model: str,
        *,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        price: Price | None = None,
        max_output_tokens: int | None = None,
    ):
        if not model:
            raise ValueError("a model name is required")
        self.model = model
        self.retry = retry or RetryPolicy()
        self.rate_limiter = rate_limiter
        self.price = price or price_for(model)
        self.max_output_tokens = max_output_tokens
        self._secrets: list[str] = []

    @abstractmethod
    def _send(self, messages: Messages) -> Completion:
        """One attempt, no retries."""

    @abstractmethod
    def _classify(self, error: Exception) -> tuple[bool, int | None, float | None]:
        """(retryable, HTTP status or None, server's Retry-After seconds or None)."""

    def complete(self, messages: Messages) -> Completion:
        """Send `messages`, retrying 429, 5xx and connection failures with backoff."""
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(estimate_tokens(messages_text(messages)) + (self.max_output_tokens or 0))
        attempt = 1
        while True:
            try:
                completion = self._send(messages)
                return Completion(completion.text, completion.model, completion.usage, attempts=attempt)
            except Exception as error:  # the SDK's errors: classified below, re-raised typed
                retryable, status, retry_after = self._classify(error)
                if not retryable or attempt > self.retry.max_retries:
                    tried = f" after {attempt} attempts" if attempt > 1 else ""
                    raise LLMError(
                        f"{self.provider} call failed{tried}: {self.redact(f'{type(error).__name__}: {error}')}",
                        model=self.model,
                        status=status,
                    ) from None
                time.sleep(self.retry.delay(attempt, retry_after))
                attempt += 1

    def cost(self, usage: Usage) -> float:
        if self.price is None:
            return 0.0
        return self.price.cost(usage.input_tokens, usage.output_tokens, usage.cached_tokens)

    def redact(self, text: str) -> str:
        """Remove this client's secrets and anything shaped like an API key from `text`."""
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "[redacted]")
        return _KEY_SHAPED.sub("[redacted]", text)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


_KEY_SHAPED = re.compile(r"\b(?:sk-[A-Za-z0-9_\-*]{8,}|[A-Za-z0-9_\-]*T3BlbkFJ[A-Za-z0-9_\-]*)")


class SubCallCache:
    """Answers to plain sub-calls keyed by (model, prompt): RLMs re-ask the same questions."""

    def __init__(self):
        self._answers: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, model: str, prompt: str) -> str | None:
        with self._lock:
            answer = self._answers.get((model, prompt))
            if answer is None:
                self.misses += 1
            else:
                self.hits += 1
            return answer

    def put(self, model: str, prompt: str, answer: str) -> None:
        with self._lock:
            self._answers[(model, prompt)] = answer


@dataclass
class ModelUsage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    errors: int = 0
    estimated: bool = False


@dataclass(frozen=True)
class LLMCallRecord:
    """What an observer (a cassette recorder, a live view) learns of each call: the text too."""

    role: str
    depth: int
    model: str
    messages: list[dict]
    response: str | None
    usage: Usage
    cost_usd: float
    start_s: float
    end_s: float
    batch_id: str | None = None
    batch_index: int | None = None
    iteration: int | None = None
    error: str | None = None


_calling = threading.local()


def current_call() -> dict | None:
    """Where the call this thread is making comes from (role, depth, batch_id, batch_index,
    iteration): a client that answers from a recording (rlmlab.replay) needs to know."""
    return getattr(_calling, "where", None)


@dataclass
class CallGate:
    """Every LLM call of one run, at every depth, passes through one gate."""

    trace: Trace
    max_concurrency: int = 16
    budget_usd: float | None = None
    timeout_s: float | None = None
    cache: SubCallCache | None = None
    observers: list = field(default_factory=list)  # objects with on_llm_call(LLMCallRecord)
    started: float = field(default_factory=time.monotonic)
    usage: dict[str, ModelUsage] = field(default_factory=dict)
    spent_usd: float = 0.0

    def __post_init__(self):
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {self.max_concurrency}")
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._lock = threading.Lock()
        self._batches = 0

    def new_batch_id(self) -> str:
        with self._lock:
            self._batches += 1
            return f"b{self._batches}"

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def remaining_s(self) -> float | None:
        return None if self.timeout_s is None else self.timeout_s - self.elapsed_s()

    def check(self, partial_answer: str | None = None) -> None:
        """Raise the typed stop error if the budget is spent or the deadline has passed."""
        if self.budget_usd is not None and self.spent_usd >= self.budget_usd:
            raise BudgetExceeded(
                f"budget spent: ${self.spent_usd:.6f} of ${self.budget_usd:.6f}",
                spent_usd=self.spent_usd,
                budget_usd=self.budget_usd,
                partial_answer=partial_answer,
            )
        remaining = self.remaining_s()
        if remaining is not None and remaining <= 0:
            raise RunTimedOut(
                f"time limit passed: {self.elapsed_s():.1f} s of {self.timeout_s:.1f} s",
                elapsed_s=self.elapsed_s(),
                timeout_s=self.timeout_s,
                partial_answer=partial_answer,
            )

    def call(
        self,
        client: LLMClient,
        messages: Messages,
        *,
        role: str,
        depth: int,
        batch_id: str | None = None,
        batch_index: int | None = None,
        iteration: int | None = None,
    ) -> str:
        """One model call under the shared limit, priced, counted, traced and observed."""
        cacheable = self.cache is not None and role == "sub" and len(messages) == 1
        if cacheable:
            cached = self.cache.get(client.model, messages[0]["content"])
            if cached is not None:
                return cached
        self.check()
        where = dict(role=role, depth=depth, batch_id=batch_id, batch_index=batch_index, iteration=iteration)
        with self._slots:
            start = self.trace.now()
            _calling.where = where
            try:
                completion = client.complete(messages)
            except LLMError as error:
                self._record(client, messages, None, Usage(), 0.0, start, str(error), where)
                raise
            finally:
                _calling.where = None
        cost = client.cost(completion.usage)
        self._record(client, messages, completion.text, completion.usage, cost, start, None, where)
        if cacheable:
            self.cache.put(client.model, messages[0]["content"], completion.text)
        return completion.text

    def record_call(
        self,
        client: LLMClient,
        usage: Usage,
        start: float,
        *,
        role: str,
        depth: int,
        iteration: int | None = None,
        messages: Messages = (),
        response: str | None = None,
        error: str | None = None,
    ) -> float:
        """Account for a call made elsewhere, ending now (a Claude agent's own turns, which its CLI
        sends): priced by `client`, counted, traced and observed like a call through `call`."""
        cost = client.cost(usage)
        where = dict(role=role, depth=depth, batch_id=None, batch_index=None, iteration=iteration)
        self._record(client, messages, response, usage, cost, start, error, where)
        return cost

    def _record(self, client, messages, response, usage: Usage, cost: float, start: float, error, where) -> None:
        end = self.trace.now()
        with self._lock:
            self.spent_usd += cost
            totals = self.usage.setdefault(client.model, ModelUsage())
            totals.calls += 1
            totals.input_tokens += usage.input_tokens
            totals.output_tokens += usage.output_tokens
            totals.cached_tokens += usage.cached_tokens
            totals.cost_usd += cost
            totals.errors += error is not None
            totals.estimated |= usage.estimated
        self.trace.record(
            LLMCallEvent(
                start=start,
                role=where["role"],
                depth=where["depth"],
                model=client.model,
                batch_id=where["batch_id"],
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                latency_s=end - start,
                cost_usd=cost,
                usage_estimated=usage.estimated,
                error=error,
            )
        )
        if self.observers:
            record = LLMCallRecord(
                model=client.model, messages=list(messages), response=response, usage=usage,
                cost_usd=cost, start_s=start, end_s=end, error=error, **where,
            )  # fmt: skip
            for observer in self.observers:
                observer.on_llm_call(record)
