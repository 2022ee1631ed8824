"""The RLM loop: termination, limits, sub-calls, children, and one trace for the whole run."""

import threading
import time

import pytest

from rlmlab import RLM
from rlmlab.errors import BudgetExceeded, RunTimedOut
from rlmlab.llm.base import RetryPolicy, SubCallCache
from rlmlab.llm.fakes import FakeError, FakeOpenAIServer, ScriptedClient
from rlmlab.llm.openai import OpenAIClient
from rlmlab.llm.pricing import Price
from rlmlab.rlm.repl import isolation_problem
from rlmlab.trace import Trace

ISOLATION_PROBLEM = isolation_problem()
needs_bwrap = pytest.mark.skipif(ISOLATION_PROBLEM is not None, reason=f"isolated REPL unavailable: {ISOLATION_PROBLEM}")
FAST_RETRY = RetryPolicy(max_retries=2, base_s=0.001, max_s=0.01)


def root_script(*replies, sub=lambda request: f"sub:{request.last_user}"):
    """Root replies by iteration; plain sub-calls answered by `sub`."""

    def script(request):
        if not request.is_root:
            return sub(request)
        return replies[min(request.step, len(replies) - 1)]

    return script


def scripted(*replies, **kwargs):
    return ScriptedClient("gpt-5-mini", root_script(*replies, **kwargs), retry=FAST_RETRY)


def test_final_in_prose_ends_the_run():
    client = scripted("I have looked enough. The answer is FINAL(Paris) in my view.")
    result = RLM(client).completion("some text", "capital?")
    assert (result.answer, result.iterations, result.ended_by) == ("Paris", 1, "final")


def test_code_runs_before_a_final_after_it():
    client = scripted("```repl\nfound = context.upper()\n```\nSo: FINAL_VAR(found)")
    result = RLM(client).completion("abc", "shout it")
    assert result.answer == "ABC"
    assert len(result.trace["cell"]) == 1


def test_final_with_nested_parentheses():
    result = RLM(scripted("FINAL(f(x) = (x + (1)))")).completion("c", "q")
    assert result.answer == "f(x) = (x + (1))"


def test_final_var_of_missing_variable_tells_the_model_and_continues():
    client = scripted("FINAL_VAR(result)", "```repl\nresult = 41 + 1\n```", "FINAL_VAR(result)")
    result = RLM(client).completion("c", "q")
    assert result.answer == "42" and result.iterations == 3
    told = client.requests[1].messages[-1]["content"]
    assert "FINAL_VAR(result) names no variable" in told


def test_final_called_in_code_stops_remaining_blocks():
    client = scripted("```repl\nFINAL('early')\n```\n```repl\nprint('never')\n```")
    result = RLM(client).completion("c", "q")
    assert result.answer == "early" and len(result.trace["cell"]) == 1


def test_answer_dict_protocol_of_the_newer_reference():
    client = scripted("```repl\nanswer['content'] = len(context)\nanswer['ready'] = True\n```")
    assert RLM(client).completion("12345", "length?").answer == "5"


def test_max_iterations_asks_once_more_for_the_best_answer():
    client = scripted("```repl\nprint(1)\n```", "```repl\nprint(2)\n```", "FINAL(best guess)")
    result = RLM(client, max_iterations=2).completion("c", "q")
    assert (result.answer, result.iterations, result.ended_by) == ("best guess", 2, "max_iterations")
    assert "used every iteration" in client.requests[-1].messages[-1]["content"]


def test_root_sees_metadata_not_the_context():
    secret_text = "x" * 5000 + "NEEDLE"
    client = scripted("FINAL(done)")
    RLM(client).completion(secret_text, "find it")
    prompt = "\n".join(m["content"] for m in client.requests[0].messages)
    assert "NEEDLE" not in prompt and "5,006 characters" in prompt


def test_long_cell_output_is_cut_with_a_note():
    client = scripted("```repl\nprint('y' * 50_000)\n```", "FINAL(ok)")
    RLM(client, output_chars=1000).completion("c", "q")
    feedback = client.requests[1].messages[-1]["content"]
    assert "49,001 of 50,001 characters cut" in feedback
    assert len(feedback) < 2000


def test_list_and_dict_contexts():
    client = scripted("```repl\nFINAL(sum(len(v) for v in context))\n```")
    assert RLM(client).completion(["ab", "cde"], "q").answer == "5"
    client = scripted("```repl\nFINAL(context['k'])\n```")
    assert RLM(client).completion({"k": "v"}, "q").answer == "v"


def test_batched_sub_calls_run_concurrently_under_the_limit():
    code = "```repl\nout = llm_query_batched([f'p{i}' for i in range(12)])\n```\nFINAL_VAR(out)"
    with FakeOpenAIServer(root_script(code), latency_s=0.15) as server:
        client = OpenAIClient("gpt-5-mini", base_url=server.url, api_key="sk-test", retry=FAST_RETRY)
        result = RLM(client, max_concurrency=4).completion("c", "q")
    assert result.answer == str([f"sub:p{i}" for i in range(12)])
    assert server.stats.max_in_flight == 4
    subs = [e for e in result.trace["llm"] if e.role == "sub"]
    assert len(subs) == 12 and len({e.batch_id for e in subs}) == 1


def test_a_failed_sub_call_comes_back_as_text_in_its_slot():
    code = "```repl\nout = llm_query_batched(['ok1', 'boom', 'ok2'])\n```\nFINAL_VAR(out)"

    def sub(request):
        return FakeError(400, "this prompt is refused") if request.last_user == "boom" else f"sub:{request.last_user}"

    with FakeOpenAIServer(root_script(code, sub=sub)) as server:
        client = OpenAIClient("gpt-5-mini", base_url=server.url, api_key="sk-test", retry=FAST_RETRY)
        result = RLM(client).completion("c", "q")
    slots = eval(result.answer)
    assert slots[0] == "sub:ok1" and slots[2] == "sub:ok2"
    assert slots[1].startswith("Error:") and "this prompt is refused" in slots[1]
    assert [e.error is not None for e in result.trace["llm"] if e.role == "sub"].count(True) == 1


def test_budget_counts_sub_calls_and_stops_the_run():
    free = Price(input=0.0, output=0.0, cached_input=0.0, as_of="test", source="test")
    costly = Price(input=1000.0, output=1000.0, cached_input=0.0, as_of="test", source="test")
    loop = "```repl\nnotes = llm_query_batched(['a'] * 4)\n```"
    root = ScriptedClient("root-model", root_script(loop), price=free)
    sub = ScriptedClient("sub-model", lambda request: "a sub answer", price=costly)
    with pytest.raises(BudgetExceeded) as stopped:
        RLM(root, sub, budget_usd=0.05, max_iterations=50).completion("c", "q")
    error = stopped.value
    assert error.spent_usd >= 0.05 and error.partial_answer == loop
    assert 1 <= len(root.requests) < 50  # stopped by the sub-calls' cost, not by max_iterations
    assert len(sub.requests) >= 4


def test_budget_needs_a_price():
    with pytest.raises(ValueError, match="needs a price"):
        RLM(ScriptedClient("unknown-model"), budget_usd=1.0)


def test_timeout_raises_with_partial_answer():
    client = scripted("```repl\nwhile True:\n    pass\n```")
    with pytest.raises(RunTimedOut) as stopped:
        RLM(client, timeout_s=0.3).completion("c", "q")
    assert stopped.value.partial_answer.startswith("```repl")


def test_child_rlm_with_its_own_repl():
    def script(request):
        if not request.is_root:
            return "leaf"
        if "Query: top" in request.messages[1]["content"]:
            return ["```repl\nkids = rlm_query_batched(['count', 'count'], contexts=['aaa', 'bbbbb'])\n```", "FINAL_VAR(kids)"][request.step]
        return ["```repl\nn = len(context)\nleaf = llm_query('x')\n```", "FINAL_VAR(n)"][request.step]

    client = ScriptedClient("gpt-5-mini", script)
    result = RLM(client, max_depth=2).completion("root context", "top")
    assert result.answer == "['3', '5']"
    depths = sorted({(e.role, e.depth) for e in result.trace["llm"]})
    assert depths == [("root", 0), ("root", 1), ("sub", 2)]
    assert {e.depth for e in result.trace["cell"]} == {0, 1}


def test_concurrency_limit_is_shared_by_every_depth():
    def script(request):
        if not request.is_root:
            return "leaf"
        if "Query: top" in request.messages[1]["content"]:
            return ["```repl\nkids = rlm_query_batched(['go'] * 4, contexts=['a', 'b', 'c', 'd'])\n```", "FINAL_VAR(kids)"][request.step]
        return ["```repl\nleaves = llm_query_batched(['x'] * 6)\n```", "FINAL(done)"][request.step]

    with FakeOpenAIServer(script, latency_s=0.05) as server:
        client = OpenAIClient("gpt-5-mini", base_url=server.url, api_key="sk-test", retry=FAST_RETRY)
        result = RLM(client, max_depth=2, max_concurrency=3).completion("c", "top")
    assert result.answer == str(["done"] * 4)
    assert server.stats.max_in_flight == 3
    assert len(server.stats.requests) == 2 + 4 * 2 + 4 * 6


def test_rlm_query_at_max_depth_is_a_plain_call():
    client = scripted("```repl\nr = rlm_query('hello')\n```\nFINAL_VAR(r)")
    assert RLM(client, max_depth=1).completion("c", "q").answer == "sub:hello"


def test_unknown_model_comes_back_as_text():
    client = scripted("```repl\nr = llm_query('x', model='nope')\n```\nFINAL_VAR(r)")
    answer = RLM(client).completion("c", "q").answer
    assert answer.startswith("Error:") and "no client for model 'nope'" in answer


def test_context_trace_is_the_run_trace():
    class TracedText(str):
        trace = Trace()

    context = TracedText("hello")
    result = RLM(scripted("```repl\nx = context[:2]\n```\nFINAL_VAR(x)")).completion(context, "q")
    assert result.trace is TracedText.trace and len(TracedText.trace["llm"]) == 1


def test_sub_call_cache_answers_repeated_questions():
    code = "```repl\na = llm_query('same')\nb = llm_query('same')\n```\nFINAL(ok)"
    client = scripted(code)
    cache = SubCallCache()
    RLM(client, cache=cache).completion("c", "q")
    assert cache.hits == 1 and sum(not r.is_root for r in client.requests) == 1


def test_rlms_in_threads_keep_their_output_and_answers_apart():
    clients = [scripted(f"```repl\nfor n in range(200):\n    print('run{i}')\nx = context\n```", "FINAL_VAR(x)") for i in range(6)]
    answers = {}

    def run(i):
        answers[i] = RLM(clients[i]).completion(f"ctx{i}", "q").answer

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {i: f"ctx{i}" for i in range(6)}
    for i, client in enumerate(clients):
        feedback = client.requests[1].messages[-1]["content"]
        printed = [line for line in feedback.splitlines() if line.startswith("run")]
        assert printed == [f"run{i}"] * 200


def test_api_key_never_reaches_the_trace_or_observers():
    key = "sk-proj-SECRETSECRETSECRET1234567890"
    seen, trace = [], Trace()

    class Observer:
        def on_llm_call(self, record):
            seen.append(repr(record))

    with FakeOpenAIServer(root_script("FINAL(x)"), expected_key="another-key") as server:
        client = OpenAIClient("gpt-5-mini", base_url=server.url, api_key=key, retry=FAST_RETRY)
        with pytest.raises(Exception) as failed:
            RLM(client, observers=[Observer()]).completion("c", "q", trace=trace)
    assert "Incorrect API key" in str(failed.value) and len(trace["llm"]) == 1
    everything = repr(failed.value) + repr(seen) + repr(trace.events) + trace.to_pandas("llm").to_csv()
    assert key not in everything and "SECRETSECRET" not in everything



@needs_bwrap
def test_isolated_run_has_the_same_api_and_trace_events():
    code = "```repl\nimport os\nparts = llm_query_batched([context[:3], context[3:]])\nwhere = os.getcwd()\n```\nFINAL_VAR(parts)"
    client = scripted(code)
    result = RLM(client, repl="isolated").completion("abcdef", "q")
    assert result.answer == "['sub:abc', 'sub:def']"
    assert [(e.role, e.depth) for e in result.trace["llm"]] == [("root", 0), ("sub", 1), ("sub", 1)]
    assert len(result.trace["cell"]) == 1 and result.trace["cell"][0].error is None


@pytest.mark.parametrize("repl", ["inprocess", pytest.param("isolated", marks=needs_bwrap)])
def test_rlmlab_context_is_read_in_the_repl_and_shares_the_trace(repl):
    context_module = pytest.importorskip("rlmlab.context")
    from rlmlab.layout import write_context

    text = "".join(f"line {i}: {'needle' if i == 777 else 'hay'}\n" for i in range(2000))
    write_context(text, f"mem://engine-test-{repl}", segment_bytes=4096, progress=False)
    context = context_module.open_context(f"mem://engine-test-{repl}")
    code = "```repl\nat = context.find('needle')\nline = context[at - 10:at + 6]\n```\nFINAL_VAR(line)"
    result = RLM(scripted(code), repl=repl).completion(context, "where is the needle?")
    assert result.answer == "line 777: needle"
    assert result.trace is context.trace
    assert len(result.trace["access"]) >= 2 and len(result.trace["llm"]) == 1


def test_cell_waiting_on_a_slow_batch_is_interrupted_not_abandoned():
    outputs = []

    class Observer:
        def on_cell(self, record):
            outputs.append(record.output)

    root = scripted("```repl\nslow = llm_query_batched(['a', 'b'])\n```", "FINAL(gave up)")
    slow_sub = ScriptedClient("slow", lambda request: time.sleep(1.5) or "late")
    result = RLM(root, slow_sub, cell_timeout_s=0.3, observers=[Observer()]).completion("c", "q")
    assert result.answer == "gave up"
    assert outputs[0].timed_out and "was interrupted" in outputs[0].error


def test_an_error_after_long_output_stays_visible():
    client = scripted("```repl\nprint('z' * 50_000)\nraise ValueError('the part that matters')\n```", "FINAL(ok)")
    RLM(client, output_chars=1000).completion("c", "q")
    feedback = client.requests[1].messages[-1]["content"]
    assert "characters cut" in feedback and "ValueError: the part that matters" in feedback
