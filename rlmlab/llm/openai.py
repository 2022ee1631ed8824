"""OpenAI chat completions through the official SDK; a `base_url` reaches any compatible server.

vLLM, Ollama, LM Studio and OpenRouter all speak this API: pass their `base_url` (a key is
optional for local servers). The SDK's own retries are off: `LLMClient.complete` retries
with its policy, so every attempt is counted the same way for every provider.
"""

from __future__ import annotations

import os

import openai

from ..errors import MissingCredentials
from .base import Completion, LLMClient, Messages, Usage, estimated_usage, sdk_retry_decision

LOCAL_SERVER_KEY = "not-needed"  # OpenAI-compatible local servers ignore the key, the SDK insists on one


class OpenAIClient(LLMClient):
    provider = "openai"

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
        super().__init__(model, **limits)
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            if base_url is None:
                raise MissingCredentials(
                    "OpenAIClient needs a key or a server: set OPENAI_API_KEY=sk-... for api.openai.com, "
                    "or pass base_url= / set OPENAI_BASE_URL=http://host:port/v1 for an OpenAI-compatible server "
                    "(vLLM, Ollama, LM Studio, OpenRouter)"
                )
            api_key = LOCAL_SERVER_KEY
        self._secrets.append(api_key)
        self.base_url = base_url
        self.sampling = dict(sampling or {})
        if self.max_output_tokens is not None:
            self.sampling.setdefault("max_completion_tokens", self.max_output_tokens)
        # One SDK client (one keep-alive connection pool) per model client: no new TCP connection per sub-call.
        self._sdk = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_s,
        )

    def _send(self, messages: Messages) -> Completion:
        response = self._sdk.chat.completions.create(model=self.model, messages=messages, **self.sampling)
        text = response.choices[0].message.content or ""
        usage = response.usage
        if usage is None:
            return Completion(text, response.model or self.model, estimated_usage(messages, text))
        details = getattr(usage, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
        return Completion(text, response.model or self.model, Usage(usage.prompt_tokens, usage.completion_tokens, cached))

    def _classify(self, error: Exception) -> tuple[bool, int | None, float | None]:
        return sdk_retry_decision(error, openai)

    def close(self) -> None:
        self._sdk.close()

