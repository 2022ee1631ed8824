"""Anthropic messages through the official SDK (e.g. Sonnet as root, Haiku as sub).

System messages become the `system` parameter; usage is normalised so `input_tokens`
counts every prompt token (Anthropic reports cache reads and writes separately).
"""

from __future__ import annotations

import os

import anthropic

from ..errors import MissingCredentials
from .base import Completion, LLMClient, Messages, Usage, estimated_usage, sdk_retry_decision

DEFAULT_MAX_OUTPUT_TOKENS = 8192  # the Messages API requires a cap


class AnthropicClient(LLMClient):
    provider = "anthropic"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 600.0,
        sampling: dict | None = None,
        **limits,
    ):
        if limits.get("max_output_tokens") is None:
            limits["max_output_tokens"] = DEFAULT_MAX_OUTPUT_TOKENS
        super().__init__(model, **limits)
        base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        api_key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not api_key:
            raise MissingCredentials(
                "AnthropicClient needs a key: set ANTHROPIC_API_KEY=sk-ant-... "
                "(and ANTHROPIC_BASE_URL for a proxy or gateway)"
            )
        self._secrets.append(api_key)
        self.sampling = dict(sampling or {})
        self._sdk = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_s,
        )

    def _send(self, messages: Messages) -> Completion:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
        extra = {"system": system} if system else {}
        response = self._sdk.messages.create(
            model=self.model, max_tokens=self.max_output_tokens, messages=turns, **extra, **self.sampling
        )
        text = "".join(block.text for block in response.content if getattr(block, "type", None) == "text")
        usage = response.usage
        if usage is None:
            return Completion(text, response.model or self.model, estimated_usage(messages, text))
        read = usage.cache_read_input_tokens or 0
        written = usage.cache_creation_input_tokens or 0
        return Completion(
            text, response.model or self.model, Usage(usage.input_tokens + read + written, usage.output_tokens, read)
        )

    def _classify(self, error: Exception) -> tuple[bool, int | None, float | None]:
        return sdk_retry_decision(error, anthropic)

    def close(self) -> None:
        self._sdk.close()
