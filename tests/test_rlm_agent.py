"""AgentRLM: a Claude agent root driving the REPL through tools, with the real Agent SDK and its
bundled Claude Code CLI against the fake Anthropic server (which scripts tool calls and sees
the tool results come back), sub-calls through the engine's gate to a fake OpenAI server.

Each run starts one CLI process (about 0.4 s of CPU and 250 MB), so the runs are few and
each checks several things.
"""

import json

import pytest
from claude_code_cli import CLI_PROBLEM, cli_env, needs_cli

from rlmlab.cli import main
from rlmlab.context import open_context
from rlmlab.errors import BudgetExceeded, LLMError, RunTimedOut
from rlmlab.layout import write_context
from rlmlab.llm.base import CallGate, RetryPolicy
from rlmlab.llm.fakes import FakeAnthropicServer, FakeOpenAIServer, FakeToolUse
from rlmlab.llm.openai import OpenAIClient
from rlmlab.rlm import prompts
from rlmlab.rlm.engine import _Progress
from rlmlab.rlm.repl import make_repl
from rlmlab.trace import Trace

pytestmark = pytest.mark.usefixtures("without_claude_settings")
if CLI_PROBLEM is None:
    from rlmlab.rlm.agent import EXTRA_TURNS, FINAL_TOOL, PYTHON_TOOL, AgentRLM, _AgentRun

SECRET = "the vault code is 7-4-1-9"  # far past the description's preview: the root must never see it
LINES = [f"record {i}: {fruit}" for i, fruit in enumerate(["apple", "pear", "plum"] * 40)]
TEXT = "\n".join(LINES[:60] + [SECRET] + LINES[60:])
ROOT_MODEL = "claude-haiku-4-5"


@pytest.fixture
def context(request):
    """A fresh Context per test: its trace is the run's, and holds that run's events only."""
    uri = f"mem://agent-rlm-{request.node.name}"
    write_context(TEXT, uri, segment_bytes=512, progress=False)
    with open_context(uri) as ctx:
        yield ctx


def sub_client(server):
    return OpenAIClient("gpt-5-mini", base_url=server.url, api_key="sk-test", retry=RetryPolicy(max_retries=0))


def agent(server, home, sub, **settings):
    return AgentRLM(sub, model=ROOT_MODEL, env=cli_env(server, home), **settings)


def root_requests(server):
    return [r for r in server.stats.requests if PYTHON_TOOL in r.tools]


# -- the real CLI against the fake server ------------------------------------------------------


@needs_cli
def test_an_agent_run_inspects_the_context_queries_subs_and_answers_with_a_variable(cli_home, context):
    printed = f"{len(TEXT)}\n" + "x" * 1000 + "\n"  # cut to output_chars=300 in the tool result
    steps = [
        ("python", {"code": "parts = context.split('\\n')\nprint(len(context))\nprint('x' * 1000)"}),
        ("python", {"code": "fruits = llm_query_batched(['fruit of: ' + p for p in parts[:3]])\n"
                            "summary = ', '.join(fruits)\nprint(fruits)"}),  # fmt: skip
        ("final_answer", {"variable": "no_such_name"}),
        ("final_answer", {"variable": "summary"}),
    ]
    expected_result = [
        None,  # the first turn sees no tool result yet
        f"{printed[:300]}\n[... {len(printed) - 300:,} of {len(printed):,} characters cut",
        "['apple', 'pear', 'plum']",
        "final_answer names `no_such_name`, which is no variable in the REPL",
    ]

    def root(request):
        step = request.step
        if step >= len(steps):
            return f"PROBLEM: a model turn after the final answer (step {step})"
        wanted = expected_result[step]
        if wanted is not None and wanted not in request.tool_results[-1]:
            return f"PROBLEM at step {step}: {request.tool_results[-1]!r}"
        name, arguments = steps[step]
        return FakeToolUse(f"mcp__rlm__{name}", arguments, text=f"step {step}")

    with FakeAnthropicServer(root) as server, FakeOpenAIServer(lambda r: r.last_user.rsplit(": ", 1)[-1]) as subs:
        rlm = agent(server, cli_home, sub_client(subs), output_chars=300)
        result = rlm.completion(context, "which fruits come first?")

    assert (result.answer, result.ended_by, result.iterations) == ("apple, pear, plum", "final", 2)
    requests = root_requests(server)
    assert len(requests) == 4 and len(server.stats.requests) == 4, "no model turn after final_answer"
    assert set(requests[0].tools) == {PYTHON_TOOL, FINAL_TOOL}, "no built-in tools"
    assert all(SECRET not in message["content"] for r in requests for message in r.messages)
    assert all(SECRET not in text for r in requests for text in r.tool_results)
    assert "a Context of length" in requests[0].messages[0]["content"]  # the system prompt describes it
    assert "which fruits come first?" in requests[0].last_user
    assert sorted(r.last_user for r in subs.stats.requests) == sorted(f"fruit of: {line}" for line in LINES[:3])

    events = result.trace.events
    cells, calls = events["cell"], events["llm"]
    assert [c.iteration for c in cells] == [1, 2] and "llm_query_batched" in cells[1].code
    roots = [c for c in calls if c.role == "root"]
    sub_calls = [c for c in calls if c.role == "sub"]
    assert len(roots) == 4 and all(c.model == ROOT_MODEL and c.depth == 0 for c in roots)
    assert all(c.input_tokens > 0 and c.output_tokens > 0 and c.cost_usd > 0 for c in roots)
    assert len(sub_calls) == 3 and len({c.batch_id for c in sub_calls}) == 1 and all(c.depth == 1 for c in sub_calls)
    assert result.usage[ROOT_MODEL].calls == 4 and result.usage["gpt-5-mini"].calls == 3
    assert result.cost_usd == pytest.approx(sum(c.cost_usd for c in calls))
    # per-turn usage is the streamed one: the final output count, not message_start's placeholder
    assert result.usage[ROOT_MODEL].output_tokens == sum(c.output_tokens for c in roots) > 4


@needs_cli
def test_a_budget_the_roots_own_turn_spends_stops_the_run_with_a_partial_answer(cli_home, context):
    first = FakeToolUse(PYTHON_TOOL, {"code": "print(len(context))"}, text="my guess so far: plum")
    with FakeAnthropicServer([first, "PROBLEM: a second turn"]) as server, FakeOpenAIServer() as subs:
        rlm = agent(server, cli_home, sub_client(subs), budget_usd=0.0001)
        trace = Trace()
        with pytest.raises(BudgetExceeded) as stopped:
            rlm.completion(context, "which fruit?", trace=trace)
    assert stopped.value.partial_answer == "my guess so far: plum"
    assert stopped.value.spent_usd >= 0.0001 and len(server.stats.requests) == 1 and not subs.stats.requests
    (root,) = [c for c in trace.events["llm"] if c.role == "root"]
    assert root.cost_usd == stopped.value.spent_usd and root.input_tokens > 0


@needs_cli
def test_an_agent_that_never_answers_gets_its_best_reply_at_the_turn_backstop(cli_home, context):
    def root(request):
        return FakeToolUse(PYTHON_TOOL, {"code": f"print({request.step})"}, text=f"best guess {request.step}")

    with FakeAnthropicServer(root) as server, FakeOpenAIServer() as subs:
        result = agent(server, cli_home, sub_client(subs), max_iterations=1).completion(context, "which fruit?")
    turns = len(server.stats.requests)
    assert turns == 1 + EXTRA_TURNS and result.iterations == 1, "python ran once, then was refused"
    assert (result.answer, result.ended_by) == (f"best guess {turns - 1}", "max_iterations")
    assert prompts.AGENT_LAST_CALL.format(max_iterations=1) in server.stats.requests[-1].tool_results[-1]
    assert len(result.trace.events["cell"]) == 1 and result.usage[ROOT_MODEL].calls == turns


@needs_cli
def test_a_run_past_its_time_limit_stops_typed(cli_home, context):
    with FakeAnthropicServer(["never in time"], latency_s=2.0) as server, FakeOpenAIServer() as subs:
        rlm = agent(server, cli_home, sub_client(subs), timeout_s=1.0)
        with pytest.raises(RunTimedOut) as stopped:
            rlm.completion(context, "which fruit?")
    assert stopped.value.timeout_s == 1.0 and stopped.value.elapsed_s >= 1.0


@needs_cli
def test_a_rejected_key_fails_typed_and_never_shows_the_key(cli_home, context):
    wrong = "sk-ant-api03-the-wrong-key-which-must-stay-secret-987654321"
    with FakeAnthropicServer(["never"], expected_key="sk-ant-api03-the-right-one") as server, FakeOpenAIServer() as subs:
        env = cli_env(server, cli_home, key=wrong) | {"CLAUDE_CODE_MAX_RETRIES": "0"}  # Claude Code retries a 401 too
        rlm = AgentRLM(sub_client(subs), model=ROOT_MODEL, env=env)
        with pytest.raises(LLMError) as failed:
            rlm.completion(context, "which fruit?")
    assert failed.value.status == 401 and len(server.stats.requests) == 1
    assert wrong not in str(failed.value) and "[redacted]" in str(failed.value)
    (root,) = context.trace.events["llm"]
    assert root.role == "root" and wrong not in root.error


@needs_cli
def test_rlmlab_ask_with_the_agent_engine(cli_home, tmp_path, monkeypatch, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\nthe code word is PLUM\nline three\n")
    script = [FakeToolUse(PYTHON_TOOL, {"code": "word = context.split()[-3]\nprint(word)"}),
              FakeToolUse(FINAL_TOOL, {"variable": "word"})]  # fmt: skip
    with FakeAnthropicServer(script) as server:
        for name, value in cli_env(server, cli_home).items():
            monkeypatch.setenv(name, value)
        code = main(["ask", "--context", str(notes), "--engine", "agent", "--root", f"claude-agent:{ROOT_MODEL}",
                     "--json", "what is the code word?"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert (out["answer"], out["ended_by"], out["iterations"]) == ("PLUM", "final", 1)
    assert out["usage"][ROOT_MODEL]["calls"] == 2 and server.stats.requests[0].tools


def test_rlmlab_ask_with_the_agent_engine_needs_a_claude_agent_root(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert main(["ask", "--context", str(notes), "--engine", "agent", "--root", "gpt-5", "q"]) == 2
    assert "--engine agent runs the root in Claude Code" in capsys.readouterr().err


# -- the tools without a CLI ------------------------------------------------------------------


@needs_cli
def test_the_python_tool_cuts_output_counts_iterations_and_final_answer_checks_variables():
    rlm = AgentRLM(model=ROOT_MODEL, output_chars=50, max_iterations=2)
    gate = CallGate(Trace())
    progress = _Progress()
    repl = make_repl("inprocess", "some context", rlm._host_functions(gate, 0, progress))
    run = _AgentRun(rlm, gate, repl, progress)
    try:
        shown = run.python("total = len(context)\nprint('y' * 120)")
        assert shown == ("y" * 50 + "\n[... 71 of 121 characters cut; print less, e.g. a slice or a summary]"
                         "\n\nREPL variables: total")  # fmt: skip
        assert "ZeroDivisionError" in run.python("1 / 0") and progress.iteration == 2
        assert run.python("print('never')") == prompts.AGENT_LAST_CALL.format(max_iterations=2)
        assert [c.iteration for c in gate.trace.events["cell"]] == [1, 2]
        assert "exactly one of" in run.final_answer(None, None)
        assert "`nothing`, which is no variable" in run.final_answer(None, "nothing") and run.answer is None
        assert run.final_answer(None, "total") == "Final answer recorded; the run ends." and run.answer == "12"
    finally:
        repl.close()


@needs_cli
def test_settings_a_text_loop_would_need_are_refused():
    with pytest.raises(ValueError, match="record_to"):
        AgentRLM(model=ROOT_MODEL, record_to="/tmp/run.jsonl")
    with pytest.raises(ValueError, match="budget_usd needs a price"):
        AgentRLM(budget_usd=1.0)  # Claude Code's default model has no rlmlab price
    with pytest.raises(ValueError, match="cli_path"):
        AgentRLM(cli_path="/no/such/claude")


# -- what the agent builds on, without a CLI ----------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_the_fake_server_scripts_a_tool_call_and_sees_its_result(stream):
    import anthropic

    call = FakeToolUse("lookup", {"query": "x" * 100}, text="let me look")  # the input arrives in several deltas
    with FakeAnthropicServer([call, "done"]) as server:
        client = anthropic.Anthropic(api_key="sk-ant-test", base_url=server.url, max_retries=0)
        ask = dict(model=ROOT_MODEL, max_tokens=64, tools=[{"name": "lookup", "input_schema": {"type": "object"}}])
        history = [{"role": "user", "content": "find x"}]
        if stream:
            with client.messages.stream(messages=history, **ask) as replies:
                message = replies.get_final_message()
        else:
            message = client.messages.create(messages=history, **ask)
        text, use = message.content
        assert (text.text, use.name, use.input, message.stop_reason) == ("let me look", "lookup", call.input, "tool_use")
        result = {"type": "tool_result", "tool_use_id": use.id, "content": [{"type": "text", "text": "found it"}]}
        history += [{"role": "assistant", "content": message.content}, {"role": "user", "content": [result]}]
        assert client.messages.create(messages=history, **ask).content[0].text == "done"
    first, second = server.stats.requests
    assert first.tools == ("lookup",) and first.tool_results == () and second.tool_results == ("found it",)
    assert second.step == 1


def test_a_call_made_elsewhere_is_priced_counted_traced_and_observed():
    from rlmlab.llm.base import Usage

    seen = []

    class Observer:
        def on_llm_call(self, record):
            seen.append(record)

    client = OpenAIClient("gpt-5-mini", base_url="http://127.0.0.1:1/v1", api_key="sk-test")
    gate = CallGate(Trace(), budget_usd=0.001, observers=[Observer()])
    start = gate.trace.now()
    cost = gate.record_call(client, Usage(1_000_000, 0), start, role="root", depth=0, iteration=3, response="hi")
    assert cost == client.cost(Usage(1_000_000, 0)) > 0.001 and gate.spent_usd == cost
    assert gate.usage["gpt-5-mini"].calls == 1 and gate.usage["gpt-5-mini"].input_tokens == 1_000_000
    (event,) = gate.trace.events["llm"]
    assert (event.role, event.cost_usd, event.start) == ("root", cost, start)
    assert (seen[0].iteration, seen[0].response, seen[0].messages) == (3, "hi", [])
    with pytest.raises(BudgetExceeded):
        gate.check()
