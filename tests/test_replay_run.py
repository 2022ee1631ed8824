"""Record a run against the fake provider, then replay it: same context, other segment sizes, other text."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from rlmlab.context import open_context
from rlmlab.layout import write_context
from rlmlab.llm.fakes import FakeError, FakeOpenAIServer
from rlmlab.llm.openai import OpenAIClient
from rlmlab.replay import import_rlms_log, read_cassette
from rlmlab.replay.record import record
from rlmlab.replay.replay import replay
from rlmlab.replay.scripted import REGEX_READS, STRATEGIES, service_log, sub_reply

RECORDINGS = Path(__file__).resolve().parents[1] / "data" / "recordings"
API_KEY = "sk-proj-" + "Zq8Wn3Lx5Rt1" * 3 + "T3BlbkFJ" + "Pm4Kv7Hs2Dy9" * 3

ROOT_REPLIES = [
    "```repl\nprint(len(context))\nprint(context[:120])\n```",
    # A batch whose second prompt fails at the provider: the failure is text in its slot.
    "```repl\nn = len(context)\nparts = llm_query_batched([f'Summarise part 1 of 2 of a service log.\\n\\n{context[:n // 2]}',"
    " 'please fail', f'Summarise part 2 of 2 of a service log.\\n\\n{context[n // 2:]}'])\nfor p in parts:\n    print(p[:200])\n```",
    "```repl\nhit = context.find('release passphrase')\nline = context[context.rfind('\\n', 0, hit) + 1:context.find('\\n', hit)]\n"
    "verdict = llm_query('Quote the release passphrase from this text exactly, nothing else.\\n' + line)\nprint(verdict)\n```",
    "FINAL_VAR(verdict)",
]


def _sub_script(request):
    if request.last_user == "please fail":
        return FakeError(400, "the fake provider refuses this prompt")
    return sub_reply(request.last_user)


def _mem_context(text: str, segment_bytes: int) -> str:
    uri = f"mem://replay-test-{uuid.uuid4().hex[:8]}"
    write_context(text, uri, segment_bytes=segment_bytes, progress=False)
    return uri


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One run recorded through the real OpenAI SDK against the fake servers."""
    text = service_log(1500)
    uri = _mem_context(text, 20_000)
    path = tmp_path_factory.mktemp("cassettes") / "run.jsonl"
    with FakeOpenAIServer(list(ROOT_REPLIES), latency_s=0.01) as root_server, \
            FakeOpenAIServer(_sub_script, latency_s=0.01) as sub_server, open_context(uri) as context:  # fmt: skip
        root = OpenAIClient("gpt-5", base_url=root_server.url, api_key=API_KEY)
        sub = OpenAIClient("gpt-5-mini", base_url=sub_server.url, api_key=API_KEY)
        from rlmlab.rlm.engine import RLM

        result = record(RLM(root, sub), context, "What is the release passphrase?", path)
        sent_headers = [r.headers for r in root_server.stats.requests + sub_server.stats.requests]
    return {"text": text, "uri": uri, "path": path, "result": result, "headers": sent_headers}


def test_cassette_holds_the_whole_run_and_no_key(recorded):
    raw = recorded["path"].read_text()
    assert any(API_KEY in str(h.values()) for h in recorded["headers"])  # the key really was used
    assert API_KEY not in raw and "Bearer" not in raw and "T3BlbkFJ" not in raw
    cassette = read_cassette(recorded["path"])
    assert cassette.header.scripted is False and cassette.header.source == "rlmlab"
    assert cassette.header.context_chars == len(recorded["text"])
    assert cassette.header.manifest_sha256 and cassette.header.policies["prefetch"] == "adaptive"
    assert [c.iteration for c in cassette.root_calls] == [1, 2, 3, 4]
    subs = cassette.sub_calls
    assert sorted(c.batch_index for c in subs if c.batch_id) == [0, 1, 2]
    assert sorted(c.cell for c in subs) == [1, 1, 1, 2]
    failed = [c for c in subs if c.error]
    assert len(failed) == 1 and "refuses" in failed[0].error and failed[0].prompt == "please fail"
    assert len(cassette.cells) == 3 and all(c.output_sha256 for c in cassette.cells)
    assert all(0 <= c.start_s <= c.end_s for c in cassette.calls)
    assert cassette.final.answer == recorded["result"].answer
    assert "amber-falcon-42" in cassette.final.answer


def test_replay_on_the_same_context_is_identical(recorded):
    result = replay(recorded["path"], recorded["uri"], latency="zero")
    assert result.error is None
    assert result.divergences == []
    assert result.identical
    assert result.answer == recorded["result"].answer
    assert result.cells_run == result.cells_matched == 3
    assert result.model_delay_s == 0.0
    # The storage reads were real, and traced.
    assert result.trace.summary()["accesses"] > 0


def test_replay_at_another_segment_size_lists_divergences_instead_of_failing(recorded):
    # Same text, other layout: the code reads the same characters, so nothing diverges.
    other_layout = _mem_context(recorded["text"], 3_000)
    result = replay(recorded["path"], other_layout, fetch="sequential", cache="none", prefetch="none", latency="zero")
    assert result.identical and result.answer == recorded["result"].answer
    # Other text at another segment size: the prompts change, answers come by position, all listed.
    other_text = _mem_context(service_log(900, seed=99), 7_000)
    result = replay(recorded["path"], other_text, latency="zero")
    assert result.error is None
    kinds = result.divergence_counts()
    assert kinds.get("sub_by_position", 0) >= 1 and kinds.get("root_request", 0) >= 1
    assert kinds.get("cell_output", 0) >= 1
    assert not result.identical
    assert all(d.detail for d in result.divergences)


def test_latency_models_drive_the_replayed_model_time(recorded):
    cassette = read_cassette(recorded["path"])
    result = replay(cassette, recorded["uri"], latency="scale:0.5")
    expected = 0.5 * sum(c.latency_s for c in cassette.calls)
    assert result.model_delay_s == pytest.approx(expected)
    assert result.identical
    timing = result.timing()
    assert set(timing) == {"end_to_end_s", "model_s", "repl_s", "storage_stall_s", "engine_s"}
    assert timing["model_s"] >= 0.5 * sum(c.latency_s for c in cassette.root_calls)
    fitted = [replay(cassette, recorded["uri"], latency="fitted:5").model_delay_s for _ in range(2)]
    assert fitted[0] == pytest.approx(fitted[1]) and fitted[0] > 0


def test_a_failed_run_still_leaves_a_readable_cassette(tmp_path):
    from rlmlab.llm.fakes import ScriptedClient
    from rlmlab.rlm.engine import RLM

    uri = _mem_context(service_log(200), 8_000)
    root = ScriptedClient("gpt-5", ["```repl\nprint(len(context))\n```"])  # then the script runs dry: a 400
    with open_context(uri) as context, pytest.raises(Exception):
        record(RLM(root, ScriptedClient("gpt-5-mini")), context, "q", tmp_path / "dead.jsonl")
    cassette = read_cassette(tmp_path / "dead.jsonl")
    assert len(cassette.cells) == 1 and "exhausted" in cassette.final.error
    assert [bool(c.error) for c in cassette.root_calls] == [False, True] and cassette.final.iterations == 2
    # Replayed, the run fails at the same call with the same error.
    result = replay(cassette, uri, latency="zero")
    assert result.error and "exhausted" in result.error and result.cells_matched == 1


def test_an_imported_rlms_run_replays_here(tmp_path):
    from test_replay_importers import answer_dict_era_log

    cassette = import_rlms_log(answer_dict_era_log(tmp_path))
    result = replay(cassette, _mem_context("x" * 1200 + "\n", 500), latency="zero")
    assert result.error is None and result.answer == "7"
    assert result.cells_matched == 2 and result.divergences == []


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_shipped_recordings_replay_on_any_layout(name):
    from rlmlab.replay.scripted import CORPORA, corpus_text

    path = RECORDINGS / f"{name}.jsonl"
    cassette = read_cassette(path)
    assert cassette.header.scripted is True and cassette.header.extra["strategy"] == name
    text = corpus_text(cassette.header)
    for segment_bytes in (5_000, 250_000):
        result = replay(cassette, _mem_context(text, segment_bytes), latency="zero")
        assert result.identical, (segment_bytes, result.divergences[:3])
        assert result.answer == cassette.final.answer
    other = CORPORA["session_store" if STRATEGIES[name].corpus == "service_log" else "service_log"]()
    result = replay(cassette, _mem_context(other, 30_000), latency="zero")
    assert result.error is None and result.divergences


def test_cli_replays_a_shipped_recording(capsys):
    from rlmlab.cli import main

    assert main(["replay", str(RECORDINGS / f"{REGEX_READS.name}.jsonl"), "--latency", "zero",
                 "--segment-bytes", "40000", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["identical"] is True and summary["divergences"] == {}
    assert summary["timing"]["end_to_end_s"] > 0
    assert main(["replay", str(RECORDINGS / "bisection.jsonl"), "--latency", "slow"]) == 2
    assert "unknown latency model 'slow'" in capsys.readouterr().err
    assert main(["record", "--scripted", "nonsense", "-o", "unused"]) == 2


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_scripted_recordings_are_reproducible(tmp_path, name):
    from rlmlab.replay.scripted import record_scripted

    kwargs = {"n_lines": 600} if STRATEGIES[name].corpus == "service_log" else {"n_sessions": 10}
    path = tmp_path / f"{name}.jsonl"
    result = record_scripted(name, path, root_latency_s=0.0, sub_latency_s=0.0, segment_bytes=4_000, corpus_kwargs=kwargs)
    cassette = read_cassette(path)
    assert cassette.header.scripted and kwargs.items() <= cassette.header.extra["corpus"]["kwargs"].items()
    assert "seed" in cassette.header.extra["corpus"]["kwargs"]
    assert cassette.final.answer == result.answer and result.ended_by == "final"
    from rlmlab.replay.scripted import corpus_text

    assert replay(cassette, _mem_context(corpus_text(cassette.header), 9_000), latency="zero").identical


def test_cli_imports_an_rlms_log(tmp_path, capsys):
    from test_replay_importers import answer_dict_era_log

    from rlmlab.cli import main

    out = tmp_path / "imported.jsonl"
    assert main(["record", "--import-rlms", answer_dict_era_log(tmp_path), "-o", str(out)]) == 0
    assert "2 root calls, 2 sub-calls" in capsys.readouterr().out
    assert read_cassette(out).header.source == "rlms-import"
    assert main(["record", "-o", str(out)]) == 2


def test_child_rlm_runs_are_recorded_and_replayed(tmp_path):
    from rlmlab.llm.fakes import ScriptedClient
    from rlmlab.rlm.engine import RLM

    def sub_model(request):
        if request.is_root:  # a child RLM's own root turn
            return "```repl\nprint(len(context))\n```" if request.step == 0 else "FINAL(child saw the slice)"
        return "plain"

    root = ScriptedClient("gpt-5", ["```repl\nr = rlm_query('how long is it?', context=context[:500])\nprint(r)\n```",
                                    "FINAL_VAR(r)"])
    uri = _mem_context(service_log(300), 6_000)
    with open_context(uri) as context:
        result = record(RLM(root, ScriptedClient("gpt-5-mini", sub_model), max_depth=2), context, "q", tmp_path / "c.jsonl")
    assert result.answer == "child saw the slice"
    cassette = read_cassette(tmp_path / "c.jsonl")
    child_roots = [c for c in cassette.sub_calls if c.role == "root"]
    assert [c.depth for c in child_roots] == [1, 1] and all(c.cell == 0 for c in child_roots)
    assert sorted(c.depth for c in cassette.cells) == [0, 1]
    replayed = replay(cassette, uri, latency="zero")
    assert replayed.identical and replayed.answer == result.answer


def test_cli_records_a_live_run_without_writing_the_key(tmp_path, monkeypatch, capsys):
    from rlmlab.cli import main

    def model(request):
        if request.is_root:
            return ROOT_REPLIES[request.step]  # the root's turn number, from its own history
        return _sub_script(request)

    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    uri = _mem_context(service_log(400), 10_000)
    out = tmp_path / "live.jsonl"
    with FakeOpenAIServer(model, expected_key=API_KEY) as server:
        code = main(["record", "What is the release passphrase?", "--context", uri, "--base-url", server.url,
                     "--root", "gpt-5", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "amber-falcon-42" in capsys.readouterr().out
    assert API_KEY not in out.read_text()
    cassette = read_cassette(out)
    assert cassette.header.context_uri == uri and len(cassette.root_calls) == 4
    assert replay(cassette, uri, latency="zero").identical


def test_rlm_record_to_writes_a_cassette(tmp_path):
    from rlmlab.llm.fakes import ScriptedClient
    from rlmlab.rlm.engine import RLM

    uri = _mem_context(service_log(300), 6_000)
    rlm = RLM(ScriptedClient("gpt-5", ["```repl\nn = len(context)\n```", "FINAL_VAR(n)"]), record_to=str(tmp_path / "r.jsonl"))
    with open_context(uri) as context:
        result = rlm.completion(context, "how long?")
    cassette = read_cassette(tmp_path / "r.jsonl")
    assert cassette.final.answer == result.answer == str(len(service_log(300)))
    assert rlm.record_to and rlm.observers == []  # the RLM itself is unchanged
    assert replay(cassette, uri, latency="zero").identical


def test_the_package_is_callable_as_rlmlab_replay(recorded):
    import rlmlab.replay

    assert rlmlab.replay(recorded["path"], recorded["uri"], latency="zero").identical
