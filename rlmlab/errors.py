"""Typed errors. Each names what went wrong and where, so a user can act on it."""

from __future__ import annotations


class RlmlabError(Exception):
    """Base class of every error rlmlab raises on purpose."""


class StoreError(RlmlabError):
    """A store operation failed."""

    def __init__(self, message: str, *, key: str | None = None, byte_range: tuple[int | None, int | None] | None = None):
        self.key = key
        self.byte_range = byte_range
        where = ""
        if key is not None:
            where = f" [key={key!r}"
            if byte_range is not None and byte_range != (None, None):
                where += f", bytes={byte_range[0]}-{byte_range[1]}"
            where += "]"
        super().__init__(message + where)


class TransientStoreError(StoreError):
    """Worth retrying: 5xx, SlowDown, connection reset, timeout. `kind` says which."""

    def __init__(self, message: str, *, kind: str, **where):
        self.kind = kind
        super().__init__(message, **where)


class ObjectNotFound(StoreError):
    """The key does not exist."""


class PreconditionFailed(StoreError):
    """A conditional write lost its race (412 / 409, or the local file already exists)."""


class ObjectChanged(StoreError):
    """An immutable object's bytes do not match the manifest (length or sha256)."""


class RetriesExhausted(StoreError):
    """A transient error outlived every retry."""


class ManifestError(RlmlabError):
    """A manifest is missing, malformed, or names something that is not there."""


class LLMError(RlmlabError):
    """A language-model call failed for good (not retryable, or out of retries)."""

    def __init__(self, message: str, *, model: str | None = None, status: int | None = None):
        self.model = model
        self.status = status
        super().__init__(message if model is None else f"{message} [model={model!r}]")


class MissingCredentials(RlmlabError):
    """No API key or base URL for a provider: the message says exactly what to set."""


class SandboxUnavailable(RlmlabError):
    """The isolated REPL cannot start its sandbox (bubblewrap missing or refused)."""


class RunStopped(RlmlabError):
    """An RLM run hit a limit; `partial_answer` holds the best answer it had by then."""

    def __init__(self, message: str, *, partial_answer: str | None = None):
        self.partial_answer = partial_answer
        super().__init__(message)


class BudgetExceeded(RunStopped):
    """The run's dollar budget (root, sub-calls and children together) is spent."""

    def __init__(self, message: str, *, spent_usd: float, budget_usd: float, partial_answer: str | None = None):
        self.spent_usd = spent_usd
        self.budget_usd = budget_usd
        super().__init__(message, partial_answer=partial_answer)


class RunTimedOut(RunStopped):
    """The run's wall-clock limit passed."""

    def __init__(self, message: str, *, elapsed_s: float, timeout_s: float, partial_answer: str | None = None):
        self.elapsed_s = elapsed_s
        self.timeout_s = timeout_s
        super().__init__(message, partial_answer=partial_answer)
