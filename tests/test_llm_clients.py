"""The provider clients through the real SDKs against fake servers: retries, usage, prices, keys."""

import pytest

from rlmlab.errors import LLMError, MissingCredentials
from rlmlab.llm import base as llm_base
from rlmlab.llm.anthropic import AnthropicClient
from rlmlab.llm.base import CallGate, RateLimiter, RetryPolicy, SubCallCache
from rlmlab.llm.fakes import FakeAnthropicServer, FakeOpenAIServer
from rlmlab.llm.openai import OpenAIClient
from rlmlab.llm.pricing import PRICES, price_for
from rlmlab.trace import Trace

FAST = RetryPolicy(max_retries=3, base_s=0.001, max_s=0.01)
HELLO = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]

PROVIDERS = {
    "openai": (FakeOpenAIServer, lambda url, **kw: OpenAIClient("gpt-5-mini", base_url=url, api_key="sk-test", retry=FAST, **kw)),
    "anthropic": (FakeAnthropicServer, lambda url, **kw: AnthropicClient("claude-haiku-4-5", base_url=url, api_key="sk-ant-test", retry=FAST, **kw)),
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request):
    return PROVIDERS[request.param]


@pytest.mark.parametrize("status", [429, 500, 503, 529])
def test_transient_failures_are_retried(provider, status):
    server_cls, make = provider
    with server_cls(["fine"], fail_first=[status, status]) as server:
        completion = make(server.url).complete(HELLO)
    assert completion.text == "fine" and completion.attempts == 3
    assert server.stats.statuses == [status, status, 200]


def test_retries_run_out_with_a_typed_error(provider):
    server_cls, make = provider
    with server_cls(["never"], fail_first=[503] * 10) as server:
        with pytest.raises(LLMError) as failed:
            make(server.url).complete(HELLO)
    assert failed.value.status == 503 and "after 4 attempts" in str(failed.value)
    assert len(server.stats.requests) == 4


def test_client_errors_are_not_retried(provider):
    from rlmlab.llm.fakes import FakeError

    server_cls, make = provider
    with server_cls(lambda request: FakeError(400, "bad request")) as server:
        with pytest.raises(LLMError) as failed:
            make(server.url).complete(HELLO)
    assert failed.value.status == 400 and len(server.stats.requests) == 1


def test_usage_and_cost_from_the_response(provider):
    server_cls, make = provider
    with server_cls(["a reply of some length"]) as server:
        client = make(server.url)
        completion = client.complete(HELLO)
    usage = completion.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0 and not usage.estimated
    assert client.cost(usage) == pytest.approx(client.price.cost(usage.input_tokens, usage.output_tokens))


def test_system_prompt_reaches_the_server(provider):
    server_cls, make = provider
    with server_cls(["ok"]) as server:
        make(server.url).complete(HELLO)
    assert server.stats.requests[0].messages == HELLO


def test_missing_usage_is_estimated():
    with FakeOpenAIServer(["reply"], include_usage=False) as server:
        usage = PROVIDERS["openai"][1](server.url).complete(HELLO).usage
    assert usage.estimated and usage.input_tokens > 0


def test_retry_after_is_honoured():
    policy = RetryPolicy(base_s=0.001, max_s=5.0)
    assert policy.delay(1, retry_after_s=2.0) == 2.0
    assert policy.delay(1, retry_after_s=60.0) == 5.0


def test_missing_credentials_say_what_to_set(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY.*OPENAI_BASE_URL"):
        OpenAIClient("gpt-5")
    with pytest.raises(MissingCredentials, match="ANTHROPIC_API_KEY"):
        AnthropicClient("claude-sonnet-4-5")
    assert OpenAIClient("llama3", base_url="http://127.0.0.1:1/v1").model == "llama3"  # local servers need no key


def test_price_lookup_matches_dated_and_prefixed_names():
    assert price_for("gpt-5-mini-2025-08-07") is PRICES["gpt-5-mini"]
    assert price_for("openai/gpt-5") is PRICES["gpt-5"]
    assert price_for("claude-sonnet-4-5-20250929") is PRICES["claude-sonnet-4-5"]
    assert price_for("my-local-llama") is None
    for price in PRICES.values():
        assert price.as_of and price.source.startswith("https://")


def test_cached_tokens_are_priced_at_the_cached_rate():
    price = PRICES["gpt-5"]
    assert price.cost(1_000_000, 0, cached_tokens=1_000_000) == pytest.approx(price.cached_input)
    assert price.cost(1_000_000, 1_000_000) == pytest.approx(price.input + price.output)


def test_rate_limiter_waits_for_the_window(monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(llm_base.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(llm_base.time, "sleep", lambda s: clock.__setitem__("now", clock["now"] + s))
    limiter = RateLimiter(requests_per_minute=2)
    assert limiter.acquire(10) == 0 and limiter.acquire(10) == 0
    assert limiter.acquire(10) == pytest.approx(60.0)
    tokens = RateLimiter(tokens_per_minute=100)
    assert tokens.acquire(80) == 0
    assert tokens.acquire(30) > 0


def test_gate_traces_every_call_with_errors(provider):
    server_cls, make = provider
    with server_cls(["ok"], fail_first=[400]) as server:
        client = make(server.url)
        gate = CallGate(Trace(), cache=SubCallCache())
        with pytest.raises(LLMError):
            gate.call(client, HELLO[1:], role="sub", depth=1)
        assert gate.call(client, HELLO[1:], role="sub", depth=1) == "ok"
        assert gate.call(client, HELLO[1:], role="sub", depth=1) == "ok"  # from the cache
    events = gate.trace["llm"]
    assert [e.error is not None for e in events] == [True, False]
    assert gate.usage[client.model].calls == 2 and gate.usage[client.model].errors == 1
    assert gate.spent_usd == pytest.approx(events[1].cost_usd) and events[1].cost_usd > 0
