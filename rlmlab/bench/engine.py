"""RLM engine: rlmlab vs the reference library `rlms`, same fake OpenAI server, same scripted run.

Two questions, both engines in one process against one FakeOpenAIServer, through the
official OpenAI SDK:

* batched sub-calls: a cell sends 64 prompts through `llm_query_batched` with 200 ms per
  call and 16 at a time. The floor is 4 waves × 200 ms; the cell times itself, so both
  engines are measured by the same line of code.
* engine overhead per root iteration: a 20-iteration trajectory of small cells with zero
  model latency, root calls timed client-side in each engine. Two figures: the gap between
  one root call's end and the next one's start (what the engine does per iteration: parse,
  run the cell, build the next prompt), median over the run; and the amortised figure,
  (wall time − time in root calls) / iterations, which also charges per-run setup and
  teardown. rlmlab also runs on a `ScriptedClient` (no HTTP at all: the engine alone) and,
  where bubblewrap is installed, with the isolated REPL (what the sandbox costs per cell).
* Claude Code as the root (when claude-agent-sdk and its bundled CLI are installed): the same
  trajectory against a fake Anthropic server, as `AgentRLM` (one CLI process for the run, each
  step a `python` tool call) and as the text loop with `ClaudeAgentClient` (a CLI process per
  root call). Wall time per iteration at zero model latency: what a step costs beyond the model.

Both trajectories end with the newer reference's `answer` dict, which both engines honour.
Every figure is a median over repeats, reported next to its floor or its baseline.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

from ..llm import claude_code_problem
from ..llm.fakes import FakeAnthropicServer, FakeOpenAIServer, FakeToolUse, ScriptedClient
from ..llm.openai import OpenAIClient
from ..rlm.engine import RLM
from ..rlm.repl import isolation_problem
from .common import median, suite_dir, write_results

MODEL = "gpt-5-mini"
CLAUDE_MODEL = "claude-haiku-4-5"
BATCH_PROMPTS, CONCURRENCY, LATENCY_S = 64, 16, 0.200
FLOOR_S = -(-BATCH_PROMPTS // CONCURRENCY) * LATENCY_S
FLOOR_TARGET, OVERHEAD_TARGET_MS = 1.15, 5.0
CONTEXT = "\n".join(f"record {i}: value {i * 7 % 101}" for i in range(2_000))
QUERY = "Summarise the records."

BATCH_TRAJECTORY = [
    "Ask every question at once.\n```repl\nimport time\n_t = time.perf_counter()\n"
    f"results = llm_query_batched([f'question {{i}}: ' + context[i * 10:(i + 1) * 10] for i in range({BATCH_PROMPTS})])\n"
    "batch_s = time.perf_counter() - _t\nprint(len(results), batch_s)\n```",
    "```repl\nanswer['content'] = f'{len(results)} {batch_s}'\nanswer['ready'] = True\n```",
]


def overhead_trajectory(iterations: int) -> list[str]:
    steps = [f"Step {i}.\n```repl\nx{i} = len(context) + {i}\nprint(x{i})\n```" for i in range(iterations - 1)]
    return steps + ["```repl\nanswer['content'] = 'done'\nanswer['ready'] = True\n```"]


def scripted(trajectory: list[str]):
    """Root replies by iteration (the history's assistant turns); sub-calls get a short answer."""

    def reply(request):
        if not request.is_root:
            return "a short sub-answer"
        return trajectory[min(request.step, len(trajectory) - 1)]

    return reply


def add_arguments(parser) -> None:
    parser.add_argument("--repeats", type=int, default=None, help="repeats per engine (default 5, quick 3)")
    parser.add_argument("--iterations", type=int, default=20, help="root iterations of the overhead trajectory")


# -- one run of each engine ---------------------------------------------------------------------
def run_rlmlab(url: str, trajectory_len: int, repl: str = "inprocess") -> dict:
    client = OpenAIClient(MODEL, base_url=url, api_key="sk-fake-bench")
    rlm = RLM(client, max_iterations=trajectory_len + 5, max_concurrency=CONCURRENCY, repl=repl)
    start = time.perf_counter()
    result = rlm.completion(CONTEXT, QUERY)
    wall = time.perf_counter() - start
    client.close()
    return {"wall_s": wall, "answer": result.answer, "root_intervals": _root_intervals(result.trace)}


def run_rlmlab_scripted(trajectory: list[str]) -> dict:
    client = ScriptedClient(MODEL, scripted(trajectory))
    rlm = RLM(client, max_iterations=len(trajectory) + 5, max_concurrency=CONCURRENCY)
    start = time.perf_counter()
    result = rlm.completion(CONTEXT, QUERY)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "answer": result.answer, "root_intervals": _root_intervals(result.trace)}


def _root_intervals(trace) -> list[tuple[float, float]]:
    return sorted((e.start, e.start + e.latency_s) for e in trace["llm"] if e.role == "root")


@contextlib.contextmanager
def _timed_reference_root_calls(log: list[tuple[float, float]]):
    """Time the reference's root calls client-side (its LMHandler calls `completion`)."""
    from rlm.clients.openai import OpenAIClient as ReferenceClient

    original = ReferenceClient.completion

    def timed(self, prompt, model=None):
        start = time.perf_counter()
        try:
            return original(self, prompt, model)
        finally:
            if not isinstance(prompt, str):  # root calls send message lists; plain sub-calls a str
                log.append((start, time.perf_counter()))

    ReferenceClient.completion = timed
    try:
        yield
    finally:
        ReferenceClient.completion = original


def run_reference(url: str, trajectory_len: int) -> dict:
    from rlm import RLM as ReferenceRLM

    reference = ReferenceRLM(
        backend="openai",
        backend_kwargs={"model_name": MODEL, "base_url": url, "api_key": "sk-fake-bench"},
        environment="local",
        max_iterations=trajectory_len + 5,
    )
    root_calls: list[tuple[float, float]] = []
    with _timed_reference_root_calls(root_calls):
        start = time.perf_counter()
        result = reference.completion(CONTEXT, root_prompt=QUERY)
        wall = time.perf_counter() - start
    return {"wall_s": wall, "answer": result.response, "root_intervals": sorted(root_calls)}


def agent_script(iterations: int):
    """The overhead trajectory as tool calls: python steps, then final_answer."""

    def reply(request):
        step = request.step
        if step < iterations - 1:
            return FakeToolUse("mcp__rlm__python", {"code": f"x{step} = len(context) + {step}\nprint(x{step})"})
        return FakeToolUse("mcp__rlm__final_answer", {"answer": "done"})

    return reply


def text_loop_script(trajectory: list[str]):
    """`scripted`, for ClaudeAgentClient, which renders the history into one tagged prompt."""

    def reply(request):
        return trajectory[min(request.last_user.count("<assistant_turn>"), len(trajectory) - 1)]

    return reply


def run_claude_code(kind: str, url: str, home: str, iterations: int) -> dict:
    from ..llm.claude_agent import ClaudeAgentClient
    from ..rlm.agent import AgentRLM

    env = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-ant-fake-bench", "HOME": home,
           "CLAUDE_CONFIG_DIR": str(Path(home) / ".claude")}  # fmt: skip
    sub = ScriptedClient(MODEL, "a short sub-answer")
    if kind == "agent":
        rlm = AgentRLM(sub, model=CLAUDE_MODEL, env=env, max_iterations=iterations + 5)
    else:
        rlm = RLM(ClaudeAgentClient(CLAUDE_MODEL, env=env), sub, max_iterations=iterations + 5)
    start = time.perf_counter()
    result = rlm.completion(CONTEXT, QUERY)
    wall = time.perf_counter() - start
    if result.answer != "done":
        raise RuntimeError(f"Claude Code ({kind}) answered {result.answer!r}, not the scripted 'done'")
    roots = sum(e.role == "root" for e in result.trace["llm"])
    return {"wall_s": wall, "root_calls": roots, "ms_per_iteration": wall / iterations * 1000}


# -- the suite ------------------------------------------------------------------------------------
def run(args) -> dict:
    repeats = args.repeats or (3 if args.quick else 5)
    iterations = args.iterations
    out = suite_dir(args.out, "engine")
    rows: list[dict] = []
    engines = {"rlmlab": run_rlmlab, "reference": run_reference}

    with FakeOpenAIServer(scripted(BATCH_TRAJECTORY), latency_s=LATENCY_S) as server:
        for repeat in range(repeats):
            for engine, runner in engines.items():
                server.stats.max_in_flight = 0
                run_ = runner(server.url, len(BATCH_TRAJECTORY))
                count, batch_s = run_["answer"].split()
                if int(count) != BATCH_PROMPTS:
                    raise RuntimeError(f"{engine} answered {run_['answer']!r}: the batch did not return {BATCH_PROMPTS} answers")
                rows.append({"workload": "batched", "engine": engine, "repeat": repeat, "batch_s": float(batch_s),
                             "max_in_flight": server.stats.max_in_flight, **_row(run_)})  # fmt: skip
                print(f"batched  {engine:9s} repeat {repeat}: {float(batch_s) * 1000:.0f} ms for {BATCH_PROMPTS} sub-calls")

    trajectory = overhead_trajectory(iterations)
    isolated_ok = isolation_problem() is None
    with FakeOpenAIServer(scripted(trajectory)) as server:
        for repeat in range(repeats):
            for engine, runner in engines.items():
                run_ = runner(server.url, iterations)
                rows.append({"workload": "overhead", "engine": engine, "repeat": repeat, **_row(run_)})
            run_ = run_rlmlab_scripted(trajectory)
            rows.append({"workload": "overhead", "engine": "rlmlab-scripted", "repeat": repeat, **_row(run_)})
            extra = 3
            if isolated_ok:
                run_ = run_rlmlab(server.url, iterations, repl="isolated")
                rows.append({"workload": "overhead", "engine": "rlmlab-isolated", "repeat": repeat, **_row(run_)})
                extra = 4
            print(f"overhead repeat {repeat}: " + ", ".join(
                f"{r['engine']} {r['gap_ms']:.2f} ms between root calls" for r in rows[-extra:]))  # fmt: skip

    claude_code = claude_code_problem()
    if claude_code is None:
        with tempfile.TemporaryDirectory(prefix="rlmlab-claude-home-") as home:
            for kind, script in (("agent", agent_script(iterations)), ("text-loop", text_loop_script(trajectory))):
                with FakeAnthropicServer(script) as server:
                    for repeat in range(repeats):
                        run_ = run_claude_code(kind, server.url, home, iterations)
                        rows.append({"workload": "claude_code", "engine": kind, "repeat": repeat, **run_})
                        print(f"claude code {kind:9s} repeat {repeat}: {run_['ms_per_iteration']:.0f} ms per iteration")
    else:
        print(f"claude code: skipped, {claude_code}")

    summary = _summarise(rows, repeats, iterations, args.quick)
    summary["claude_code"] = _summarise_claude_code(rows, iterations) if claude_code is None else {"skipped": claude_code}
    write_results(out, rows, summary)
    return summary


def _row(run_: dict) -> dict:
    intervals = run_["root_intervals"]
    in_calls = sum(end - start for start, end in intervals)
    gaps = [later[0] - earlier[1] for earlier, later in zip(intervals, intervals[1:])]
    return {
        "wall_s": run_["wall_s"],
        "root_calls": len(intervals),
        "root_call_s": in_calls,
        "gap_ms": median(gaps) * 1000,
        "overhead_ms_per_iteration": (run_["wall_s"] - in_calls) / max(len(intervals), 1) * 1000,
    }


def _summarise_claude_code(rows: list[dict], iterations: int) -> dict:
    def med(engine, key):
        return median(r[key] for r in rows if r["workload"] == "claude_code" and r["engine"] == engine)

    openai_ms = median(r["wall_s"] for r in rows if r["workload"] == "overhead" and r["engine"] == "rlmlab") / iterations * 1000
    agent, text_loop = med("agent", "ms_per_iteration"), med("text-loop", "ms_per_iteration")
    return {
        "iterations": iterations,
        "agent_ms_per_iteration": agent,
        "text_loop_ms_per_iteration": text_loop,
        "text_loop_over_agent": text_loop / agent,
        "openai_text_loop_ms_per_iteration": openai_ms,  # the same trajectory through OpenAIClient, for scale
        "agent_root_calls": med("agent", "root_calls"),
        "text_loop_root_calls": med("text-loop", "root_calls"),
    }


def _summarise(rows: list[dict], repeats: int, iterations: int, quick: bool) -> dict:
    def med(workload, engine, key):
        return median(r[key] for r in rows if r["workload"] == workload and r["engine"] == engine)

    ours, theirs = med("batched", "rlmlab", "batch_s"), med("batched", "reference", "batch_s")
    names = ("rlmlab", "reference", "rlmlab-scripted", "rlmlab-isolated")
    gap = {e: med("overhead", e, "gap_ms") for e in names}  # NaN for the isolated REPL without bwrap
    amortised = {e: med("overhead", e, "overhead_ms_per_iteration") for e in names}
    return {
        "quick": quick,
        "repeats": repeats,
        "batched": {
            "sub_calls": BATCH_PROMPTS,
            "concurrency": CONCURRENCY,
            "latency_s": LATENCY_S,
            "floor_s": FLOOR_S,
            "rlmlab_median_s": ours,
            "reference_median_s": theirs,
            "rlmlab_vs_floor": ours / FLOOR_S,
            "reference_vs_floor": theirs / FLOOR_S,
            "rlmlab_vs_reference": ours / theirs,
            "rlmlab_max_in_flight": max(r["max_in_flight"] for r in rows if r["workload"] == "batched" and r["engine"] == "rlmlab"),
            "target_vs_floor": FLOOR_TARGET,
            "meets_floor_target": ours <= FLOOR_TARGET * FLOOR_S,
            "meets_reference_target": ours <= theirs,
        },
        "overhead": {
            "iterations": iterations,
            "rlmlab_ms_between_root_calls": gap["rlmlab"],
            "reference_ms_between_root_calls": gap["reference"],
            "rlmlab_scripted_ms_between_root_calls": gap["rlmlab-scripted"],
            "rlmlab_amortised_ms_per_iteration": amortised["rlmlab"],
            "reference_amortised_ms_per_iteration": amortised["reference"],
            "rlmlab_scripted_amortised_ms_per_iteration": amortised["rlmlab-scripted"],
            "rlmlab_isolated_ms_between_root_calls": gap["rlmlab-isolated"],
            "rlmlab_isolated_amortised_ms_per_iteration": amortised["rlmlab-isolated"],
            "rlmlab_root_call_ms": med("overhead", "rlmlab", "root_call_s") / iterations * 1000,
            "reference_root_call_ms": med("overhead", "reference", "root_call_s") / iterations * 1000,
            "target_ms": OVERHEAD_TARGET_MS,
            "meets_target": gap["rlmlab"] <= OVERHEAD_TARGET_MS and amortised["rlmlab"] <= OVERHEAD_TARGET_MS,
        },
    }
