"""Model clients (`OpenAIClient`, `AnthropicClient`, `ClaudeAgentClient`), prices, limits, and fake servers for tests.

Provider SDKs are imported on first use, so `import rlmlab.llm` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "OpenAIClient": "rlmlab.llm.openai",
    "AnthropicClient": "rlmlab.llm.anthropic",
    "ClaudeAgentClient": "rlmlab.llm.claude_agent",
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


CLAUDE_AGENT = "claude-agent"  # "claude-agent:sonnet" → ClaudeAgentClient("sonnet"); alone: Claude Code's default


def claude_code_problem() -> str | None:
    """Why Claude Code cannot run here (no SDK, or a wheel without the bundled CLI), or None."""
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("claude_agent_sdk")
    if spec is None:
        return "claude-agent-sdk is not installed: pip install 'rlmlab[agent]'"
    if not (Path(spec.origin).parent / "_bundled" / "claude").is_file():
        return "this claude-agent-sdk wheel bundles no Claude Code CLI"
    return None


def runs_in_claude_code(model: str) -> bool:
    """`claude-agent` or `claude-agent:<model>`: a model reached through Claude Code, which has its own auth."""
    return model.partition(":")[0].lower() == CLAUDE_AGENT


def client_for(model: str, *, base_url: str | None = None, api_key: str | None = None, **options):
    """The client a model name implies: `claude-agent:<model>` → Claude Code (the Agent SDK),
    `claude-*` → Anthropic, anything else → OpenAI-compatible."""
    if runs_in_claude_code(model):
        if base_url is not None or api_key is not None:
            raise ValueError(
                f"{model!r} runs through Claude Code, which takes its endpoint and key from its own "
                "configuration: set ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY, or pass env= instead"
            )
        return __getattr__("ClaudeAgentClient")(model.partition(":")[2] or None, **options)
    if model.lower().startswith("claude") and base_url is None:
        return __getattr__("AnthropicClient")(model, api_key=api_key, **options)
    return __getattr__("OpenAIClient")(model, base_url=base_url, api_key=api_key, **options)
