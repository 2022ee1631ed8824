"""Importing the reference library's RLMLogger trajectories (both eras) into cassettes."""

from __future__ import annotations

import json

import pytest
from rlm.core.types import CodeBlock, ModelUsageSummary, REPLResult, RLMChatCompletion, RLMIteration, RLMMetadata, UsageSummary
from rlm.logger.rlm_logger import RLMLogger

from rlmlab.replay import import_rlms_log, read_cassette
from rlmlab.replay.cassette import CassetteError, cell_digest, request_hash

SECRET_KEY = "sk-proj-" + "a1B2c3D4e5" * 2 + "T3BlbkFJ" + "z9Y8x7W6v5" * 2


FIRST_CODE = 'parts = llm_query_batched(["count errors in A", "count errors in B"])\nprint(parts)'


def _sub(prompt: str, response: str, seconds: float) -> RLMChatCompletion:
    usage = UsageSummary({"gpt-5-mini": ModelUsageSummary(total_calls=1, total_input_tokens=11, total_output_tokens=3)})
    return RLMChatCompletion(root_model="gpt-5-mini", prompt=prompt, response=response, usage_summary=usage, execution_time=seconds)


def answer_dict_era_log(tmp_path) -> str:
    """A trajectory written by the real RLMLogger of the installed `rlms` (the answer-dict era)."""
    logger = RLMLogger(log_dir=str(tmp_path))
    logger.log_metadata(RLMMetadata(root_model="gpt-5", max_depth=1, max_iterations=30, backend="openai",
                                    backend_kwargs={"model_name": "gpt-5", "api_key": SECRET_KEY},
                                    environment_type="local", environment_kwargs={}))
    system = {"role": "system", "content": "You are an RLM."}
    meta = {"role": "user", "content": "Answer the following: How many ERROR lines?\n\nYour context is a str of 1200 chars."}
    history = [system, meta, {"role": "user", "content": "Turn 1/30:"}]
    first = RLMIteration(
        prompt=list(history),
        response=f"```repl\n{FIRST_CODE}\n```",
        code_blocks=[CodeBlock(FIRST_CODE,
                               REPLResult(stdout="['3', '4']\n", stderr="", locals={}, execution_time=0.5,
                                          rlm_calls=[_sub("count errors in A", "3", 0.2), _sub("count errors in B", "4", 0.25)]))],
        iteration_time=2.5,
    )
    logger.log(first)
    history += [{"role": "assistant", "content": first.response}, {"role": "user", "content": "REPL output:\n['3', '4']"},
                {"role": "user", "content": "Turn 2/30:"}]
    second = RLMIteration(
        prompt=list(history),
        response='```repl\nanswer["content"] = "7"\nanswer["ready"] = True\n```',
        code_blocks=[CodeBlock('answer["content"] = "7"\nanswer["ready"] = True',
                               REPLResult(stdout="", stderr="", locals={}, execution_time=0.01, final_answer="7"))],
        final_answer="7",
        iteration_time=1.0,
    )
    logger.log(second)
    return logger.log_file_path


def _final_era_log(tmp_path) -> str:
    """A paper-era trajectory: run_context line, FINAL_VAR in the reply, hand-written like the old logger."""
    lines = [
        {"type": "metadata", "timestamp": "2025-10-01T10:00:00", "root_model": "gpt-5", "max_depth": 1, "max_iterations": 20,
         "backend": "openai", "backend_kwargs": {"model_name": "gpt-5"}, "environment_type": "local", "environment_kwargs": {},
         "other_backends": None},
        {"type": "run_context", "prompt": "ignored", "root_prompt": "Find the needle", "environment_type": "local"},
        {"type": "iteration", "iteration": 1, "prompt": [{"role": "user", "content": 'answer the original prompt: "Find the needle".'}],
         "response": "```repl\nhit = context.find('needle')\nprint(hit)\n```",
         "code_blocks": [{"code": "hit = context.find('needle')\nprint(hit)",
                          "result": {"stdout": "512\n", "stderr": "", "locals": {"hit": 512}, "execution_time": 0.02, "rlm_calls": []}}],
         "final_answer": None, "iteration_time": 1.2},
        {"type": "iteration", "iteration": 2, "prompt": [{"role": "user", "content": "next"}],
         "response": "I found it.\nFINAL_VAR(hit)", "code_blocks": [], "final_answer": "512", "iteration_time": 0.8},
    ]
    path = tmp_path / "old.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def test_answer_dict_era_round_trip(tmp_path):
    cassette = import_rlms_log(answer_dict_era_log(tmp_path), context_uri="mem://logs")
    header = cassette.header
    assert header.source == "rlms-import" and header.scripted is False
    assert header.query == "How many ERROR lines?"
    assert (header.root_model, header.sub_model, header.context_uri) == ("gpt-5", "gpt-5-mini", "mem://logs")
    assert header.extra["termination"] == "answer-dict"
    roots, subs = cassette.root_calls, cassette.sub_calls
    assert [r.iteration for r in roots] == [0, 1]
    assert roots[0].request_hash == request_hash(messages=roots[0].messages)
    assert roots[0].latency_s == pytest.approx(2.0)  # iteration time minus its code's time
    assert [(s.prompt, s.response, s.cell, s.depth) for s in subs] == [("count errors in A", "3", 0, 1), ("count errors in B", "4", 0, 1)]
    assert subs[0].usage["input_tokens"] == 11 and subs[0].usage["estimated"] is False
    assert subs[0].request_hash == request_hash(prompt="count errors in A")
    assert subs[1].start_s == pytest.approx(subs[0].end_s)
    assert [c.index for c in cassette.cells] == [0, 1]
    assert cassette.cells[0].output_sha256 == cell_digest("['3', '4']\n", "", None)
    assert cassette.final.answer == "7" and cassette.final.iterations == 2
    # Round trip through the file; the logged API key never lands in it.
    path = cassette.write(tmp_path / "imported.jsonl")
    assert read_cassette(path) == cassette
    assert SECRET_KEY not in path.read_text()


def test_final_era(tmp_path):
    cassette = import_rlms_log(_final_era_log(tmp_path))
    assert cassette.header.query == "Find the needle"
    assert cassette.header.extra["termination"] == "final"
    assert cassette.final.answer == "512"
    assert [c.code for c in cassette.cells] == ["hit = context.find('needle')\nprint(hit)"]
    assert cassette.sub_calls == []
    assert read_cassette(cassette.write(tmp_path / "c.jsonl")) == cassette


def test_query_found_in_old_prompt_without_run_context(tmp_path):
    path = tmp_path / "x.jsonl"
    lines = [json.loads(l) for l in open(_final_era_log(tmp_path))]
    path.write_text("".join(json.dumps(l) + "\n" for l in lines if l["type"] != "run_context"))
    assert import_rlms_log(path).header.query == "Find the needle"
    assert import_rlms_log(path, query="override").header.query == "override"


def test_bad_logger_files_are_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type": "metadata"}\n{oops\n')
    with pytest.raises(CassetteError, match="bad.jsonl, line 2: not valid JSON"):
        import_rlms_log(path)
    path.write_text('{"type": "metadata"}\n{"type": "header"}\n')
    with pytest.raises(CassetteError, match="line 2: not an RLMLogger line"):
        import_rlms_log(path)
    path.write_text('{"type": "metadata"}\n')
    with pytest.raises(CassetteError, match="no iteration lines"):
        import_rlms_log(path)
    path.write_text('{"type": "iteration", "response": "x"}\n')
    with pytest.raises(CassetteError, match="line 1: iteration line without 'prompt'"):
        import_rlms_log(path)


def test_a_run_of_the_reference_library_imports_and_replays_here(tmp_path):
    """The real `rlms` RLM, logging with its RLMLogger against the fake OpenAI server."""
    import threading
    import uuid

    from rlm import RLM as ReferenceRLM

    from rlmlab.layout import write_context
    from rlmlab.llm.fakes import FakeOpenAIServer
    from rlmlab.replay.replay import replay

    text = "".join(f"{i:04d} INFO ok\n" if i % 7 else f"{i:04d} ERROR disk full\n" for i in range(300))
    root_replies = [
        '```repl\nparts = llm_query_batched(["Count ERROR lines in part 1.", "Count ERROR lines in part 2."])\nprint(parts)\n```',
        '```repl\nanswer["content"] = " + ".join(parts)\nanswer["ready"] = True\n```',
    ]
    lock = threading.Lock()

    def model(request):
        if request.is_root:
            with lock:
                return root_replies.pop(0)
        return "21" if "part 1" in request.last_user else "22"

    with FakeOpenAIServer(model) as server:
        reference = ReferenceRLM(backend="openai", logger=RLMLogger(log_dir=str(tmp_path)), environment="local",
                                 backend_kwargs={"model_name": "gpt-5", "base_url": server.url, "api_key": SECRET_KEY})
        answer = reference.completion(text, root_prompt="How many ERROR lines?").response
    log = next(tmp_path.glob("*.jsonl"))
    cassette = import_rlms_log(log)
    assert cassette.header.query == "How many ERROR lines?" and cassette.header.extra["termination"] == "answer-dict"
    assert cassette.final.answer == answer == "21 + 22"
    assert sorted(c.prompt for c in cassette.sub_calls) == ["Count ERROR lines in part 1.", "Count ERROR lines in part 2."]
    assert SECRET_KEY not in cassette.write(tmp_path / "imported.jsonl").read_text()
    uri = f"mem://rlms-import-{uuid.uuid4().hex[:8]}"
    write_context(text, uri, segment_bytes=1_000, progress=False)
    result = replay(cassette, uri, latency="zero")
    assert result.error is None and result.answer == answer
    assert result.cells_matched == 2 and result.divergences == []
