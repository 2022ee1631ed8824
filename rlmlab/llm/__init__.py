"""Model clients (`OpenAIClient`, `AnthropicClient`), prices, limits, and fake servers for tests.

Provider SDKs are imported on first use, so `import rlmlab.llm` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "OpenAIClient": "rlmlab.llm.openai",
    "AnthropicClient": "rlmlab.llm.anthropic",
    "LLMClient": "rlmlab.llm.base",
    "CallGate": "rlmlab.llm.base",
    "Completion": "rlmlab.llm.base",
    "Usage": "rlmlab.llm.base",
    "RetryPolicy": "rlmlab.llm.base",
    "RateLimiter": "rlmlab.llm.base",
    "SubCallCache": "rlmlab.llm.base",
    "Price": "rlmlab.llm.pricing",
    "PRICES": "rlmlab.llm.pricing",
    "price_for": "rlmlab.llm.pricing",
    "FakeOpenAIServer": "rlmlab.llm.fakes",
    "FakeAnthropicServer": "rlmlab.llm.fakes",
    "FakeError": "rlmlab.llm.fakes",
    "ScriptedClient": "rlmlab.llm.fakes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rlmlab.llm' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def client_for(model: str, *, base_url: str | None = None, api_key: str | None = None, **options):
    """The client a model name implies: `claude-*` → Anthropic, anything else → OpenAI-compatible."""
    if model.lower().startswith("claude") and base_url is None:
        return __getattr__("AnthropicClient")(model, api_key=api_key, **options)
    return __getattr__("OpenAIClient")(model, base_url=base_url, api_key=api_key, **options)
