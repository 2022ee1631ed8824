"""ClaudeAgentClient: the real Agent SDK and its bundled Claude Code CLI against the fake
Anthropic server on 127.0.0.1 (the CLI honours ANTHROPIC_BASE_URL and only ever streams).

Each call starts one CLI process (about 0.4 s of CPU), so the tests that make calls are few.
"""

import asyncio
import importlib
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import anthropic
import pytest
from claude_code_cli import CLI_PROBLEM, KEY, cli_env, needs_cli

from rlmlab import RLM
from rlmlab.cli import main
from rlmlab.errors import LLMError
from rlmlab.llm import client_for, runs_in_claude_code
from rlmlab.llm.base import RetryPolicy, estimate_tokens, messages_text
from rlmlab.llm.fakes import FakeAnthropicServer, FakeError


pytestmark = pytest.mark.usefixtures("without_claude_settings")
if CLI_PROBLEM is None:
    from rlmlab.llm.claude_agent import ClaudeAgentClient, render_turns

FAST = RetryPolicy(max_retries=3, base_s=0.001, max_s=0.01)
HELLO = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


def make_client(server, home, model="claude-haiku-4-5", **options):
    options.setdefault("retry", FAST)
    return ClaudeAgentClient(model, env=cli_env(server, home, options.pop("key", KEY)), **options)


# -- the real CLI against the fake server ------------------------------------------------------


@needs_cli
def test_a_completion_with_usage_and_nothing_persisted(cli_home):
    reply = "a reply of some length, long enough to arrive in more than one streamed delta " * 2
    with FakeAnthropicServer([reply]) as server:
        client = make_client(server, cli_home)
        completion = client.complete(HELLO)
        client.close()
    (request,) = server.stats.requests
    assert request.stream and request.model == "claude-haiku-4-5"
    assert {name.lower(): value for name, value in request.headers.items()}["x-api-key"] == KEY
    assert request.messages[0]["role"] == "system" and request.messages[0]["content"].endswith("be brief")
    assert request.last_user.endswith("hello")
    assert completion.text == reply and completion.model == "claude-haiku-4-5" and completion.attempts == 1
    assert completion.usage.input_tokens == estimate_tokens(messages_text(request.messages))
    assert completion.usage.output_tokens == estimate_tokens(reply) and not completion.usage.estimated
    assert client.cost(completion.usage) > 0 and client.reported_cost_usd > 0
    assert not (cli_home / ".claude" / "projects").exists(), "a session transcript was written"


@needs_cli
def test_a_multi_turn_conversation_reaches_the_model_whole(cli_home):
    conversation = [
        {"role": "system", "content": "You drive a REPL."},
        {"role": "user", "content": "question one"},
        {"role": "assistant", "content": "```repl\nprint(1)\n```"},
        {"role": "user", "content": "REPL output: 1"},
    ]

    def script(request):
        seen = request.last_user
        turns = [seen.find(part) for part in ("question one", "print(1)", "REPL output: 1")]
        in_order = -1 not in turns and turns == sorted(turns)
        if request.messages[0]["content"].endswith("You drive a REPL.") and in_order:
            return "FINAL(ok)"
        return FakeError(400, f"the history did not arrive whole: {seen!r}")

    with FakeAnthropicServer(script) as server:
        client = make_client(server, cli_home)
        assert client.complete(conversation).text == "FINAL(ok)"
        client.close()
    assert "<assistant_turn>\n```repl\nprint(1)\n```\n</assistant_turn>" in server.stats.requests[0].last_user


@needs_cli
def test_bare_mode_sends_the_prompt_without_claude_codes_reminders(cli_home):
    with FakeAnthropicServer(["hi", "hi"]) as server:
        plain, bare = make_client(server, cli_home), make_client(server, cli_home, bare=True)
        plain.complete(HELLO), bare.complete(HELLO)
        plain.close(), bare.close()
    with_reminders, verbatim = server.stats.requests
    assert with_reminders.last_user != "hello" and with_reminders.last_user.endswith("hello")
    assert verbatim.last_user == "hello"


@needs_cli
def test_calls_from_many_threads_run_at_once(cli_home):
    calls = 4
    all_in_flight = threading.Barrier(calls, timeout=120)

    def script(request):
        try:
            all_in_flight.wait()  # returns only when every call is at the server together
        except threading.BrokenBarrierError:
            return FakeError(400, "the calls did not run concurrently")
        return "answer to " + request.last_user.rsplit("\n", 1)[-1]

    with FakeAnthropicServer(script) as server:
        client = make_client(server, cli_home, retry=RetryPolicy(max_retries=0))

        def ask(i):
            return client.complete([{"role": "user", "content": f"prompt {i}"}]).text

        with ThreadPoolExecutor(calls) as pool:
            texts = list(pool.map(ask, range(calls)))
        client.close()
    assert texts == [f"answer to prompt {i}" for i in range(calls)]
    assert server.stats.max_in_flight == calls


@needs_cli
def test_a_call_from_a_thread_that_runs_an_event_loop(cli_home):
    """As a Jupyter cell calls it: synchronously, inside the kernel's running loop."""

    async def cell(client):
        return client.complete(HELLO).text

    with FakeAnthropicServer(["from inside a loop"]) as server:
        client = make_client(server, cli_home)
        assert asyncio.run(cell(client)) == "from inside a loop"
        client.close()


@needs_cli
def test_a_call_that_outlives_its_timeout_fails_typed(cli_home):
    with FakeAnthropicServer(["too late"], latency_s=3.0) as server:
        client = make_client(server, cli_home, timeout_s=0.5, retry=RetryPolicy(max_retries=0))
        with pytest.raises(LLMError, match="no result within 0.5 s"):
            client.complete(HELLO)
        client.close()


@needs_cli
def test_transient_failures_are_retried_by_the_client_not_the_cli(cli_home):
    with FakeAnthropicServer(["fine"], fail_first=[503, 429]) as server:
        client = make_client(server, cli_home)
        completion = client.complete(HELLO)
        client.close()
    assert completion.text == "fine" and completion.attempts == 3
    assert server.stats.statuses == [503, 429, 200]


@needs_cli
def test_an_unreachable_api_is_retried_then_fails_typed(cli_home):
    with FakeAnthropicServer() as server:
        client = make_client(server, cli_home, retry=RetryPolicy(max_retries=1, base_s=0.001, max_s=0.01))
    with pytest.raises(LLMError, match="after 2 attempts.*ECONNREFUSED"):  # the server is stopped: nothing listens
        client.complete(HELLO)
    client.close()


@needs_cli
def test_a_system_prompt_too_long_for_a_command_line_arrives_whole(cli_home):
    system = "Rules of this run.\n" + "".join(f"rule {i}: be exact.\n" for i in range(8000))  # about 150 KB
    with FakeAnthropicServer(["ok"]) as server:
        client = make_client(server, cli_home)
        client.complete([{"role": "system", "content": system}, {"role": "user", "content": "go"}])
        client.close()
    assert len(system) > 128 * 1024 and server.stats.requests[0].messages[0]["content"].endswith(system)


@needs_cli
def test_a_rejected_key_fails_typed_at_once_and_never_shows_the_key(cli_home):
    wrong = "sk-ant-api03-the-wrong-key-which-must-stay-secret-987654321"
    with FakeAnthropicServer(["never"], expected_key=KEY) as server:
        client = make_client(server, cli_home, key=wrong)
        with pytest.raises(LLMError) as failed:
            client.complete(HELLO)
        client.close()
    assert failed.value.status == 401 and len(server.stats.requests) == 1
    assert wrong not in str(failed.value) and "[redacted]" in str(failed.value)


@needs_cli
def test_an_rlm_run_with_claude_code_as_root_and_sub(cli_home):
    def script(request):
        if "```repl" not in request.messages[0]["content"]:  # a plain llm_query: no RLM system prompt
            return "PLUM" if "PLUM" in request.last_user else "none"
        if "<assistant_turn>" not in request.last_user:
            return "```repl\nword = llm_query('the code word in: ' + context)\nprint(word)\n```"
        return "FINAL_VAR(word)" if "PLUM" in request.last_user else "FINAL(the sub-call result never came back)"

    with FakeAnthropicServer(script) as server:
        client = make_client(server, cli_home)
        result = RLM(client).completion("line one\nthe code word is PLUM\nline three", "what is the code word?")
        client.close()
    assert (result.answer, result.iterations) == ("PLUM", 2)
    assert result.usage["claude-haiku-4-5"].calls == 3 and result.cost_usd > 0


@needs_cli
def test_rlmlab_ask_with_a_claude_agent_root_needs_no_anthropic_key(cli_home, tmp_path, monkeypatch, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("the code word is PLUM\n")
    with FakeAnthropicServer(["FINAL(PLUM)"]) as server:
        for name, value in cli_env(server, cli_home).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("ANTHROPIC_API_KEY")
        monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", KEY)  # how a gateway token reaches Claude Code
        code = main(["ask", "--context", str(text), "--root", "claude-agent:claude-haiku-4-5", "--json", "code word?"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["answer"] == "PLUM"
    headers = {name.lower(): value for name, value in server.stats.requests[0].headers.items()}
    assert headers["authorization"] == f"Bearer {KEY}" and "x-api-key" not in headers


@needs_cli
def test_a_cli_that_cannot_run_is_a_typed_error():
    client = ClaudeAgentClient("claude-haiku-4-5", cli_path="/bin/false", retry=FAST)
    with pytest.raises(LLMError) as failed:
        client.complete(HELLO)
    client.close()
    assert "claude-agent call failed: " in str(failed.value), "a CLI that exits at once is not worth a retry"
    assert "CLIConnectionError" in str(failed.value) or "ProcessError" in str(failed.value)  # which one wins is a race


# -- no CLI process --------------------------------------------------------------------------


@needs_cli
def test_history_rendering():
    assert render_turns([{"role": "user", "content": "just this"}]) == "just this"
    rendered = render_turns([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    assert rendered.index("<user_turn>\nq\n</user_turn>") < rendered.index("<assistant_turn>\na\n</assistant_turn>")
    with pytest.raises(ValueError, match="no user or assistant turn"):
        render_turns([])
    with pytest.raises(ValueError, match="tool"):
        render_turns([{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}])


@needs_cli
def test_the_model_prefix_and_bad_options():
    assert runs_in_claude_code("claude-agent:sonnet") and runs_in_claude_code("claude-agent")
    assert not runs_in_claude_code("claude-sonnet-4-5")
    named, default = client_for("claude-agent:claude-sonnet-4-5"), client_for("claude-agent")
    assert isinstance(named, ClaudeAgentClient) and named.cli_model == "claude-sonnet-4-5" and named.price is not None
    assert default.cli_model is None and default.model == "claude-agent"
    with pytest.raises(ValueError, match="ANTHROPIC_BASE_URL"):
        client_for("claude-agent:sonnet", base_url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="cli_path"):
        ClaudeAgentClient(cli_path="/no/such/claude")
    with pytest.raises(ValueError, match="'global'"):
        ClaudeAgentClient(setting_sources=["user", "global"])


def test_a_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "claude_agent_sdk", None)  # makes the import fail
    monkeypatch.delitem(sys.modules, "rlmlab.llm.claude_agent", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'rlmlab\[agent\]'"):
        importlib.import_module("rlmlab.llm.claude_agent")


def test_the_fake_server_streams_what_the_anthropic_sdk_expects():
    reply = "x" * 150  # three deltas
    with FakeAnthropicServer([reply]) as server:
        sdk = anthropic.Anthropic(api_key=KEY, base_url=server.url, max_retries=0)
        hi = [{"role": "user", "content": "hi"}]
        with sdk.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=hi) as stream:
            message = stream.get_final_message()
    assert message.content[0].text == reply and message.stop_reason == "end_turn"
    assert message.usage.output_tokens == estimate_tokens(reply)
    assert server.stats.requests[0].stream and server.stats.statuses == [200]


def test_rlmlab_ask_picks_claude_agent_models_without_keys():
    from argparse import Namespace

    from rlmlab.errors import MissingCredentials
    from rlmlab.rlm.commands import NOTHING_SET, choose_models

    def ask(root=None, sub=None):
        return choose_models(Namespace(base_url=None, root=root, sub=sub))

    assert ask("claude-agent:sonnet") == ("claude-agent:sonnet", "claude-agent:sonnet", None)
    assert ask("claude-agent", "claude-agent:haiku") == ("claude-agent", "claude-agent:haiku", None)
    with pytest.raises(MissingCredentials, match="needs ANTHROPIC_API_KEY"):
        ask("claude-agent:sonnet", "claude-haiku-4-5")  # a plain Anthropic sub-model still needs its key
    assert "--root claude-agent:" in NOTHING_SET
