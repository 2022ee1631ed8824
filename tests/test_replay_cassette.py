"""The cassette format: round trip, validation with line numbers, secrets kept out, latency models."""

from __future__ import annotations

import json
import math

import pytest

from rlmlab.replay.cassette import (
    Cassette,
    CassetteError,
    CassetteWriter,
    Cell,
    Final,
    Header,
    LLMCall,
    describe_request,
    cell_digest,
    read_cassette,
    request_hash,
)
from rlmlab.replay.latency import Fitted, Recorded, Scaled, Zero, parse_latency

ANTHROPIC_KEY = "sk-ant-api03-" + "Ab3_xY9-" * 11 + "QrstuAA"
OPENAI_KEY = "sk-proj-" + "a1B2c3D4e5" * 2 + "T3BlbkFJ" + "z9Y8x7W6v5" * 2


def _cassette() -> Cassette:
    header = Header(query="how many errors?", context_uri="mem://ctx", root_model="gpt-5", sub_model="gpt-5-mini", scripted=True)
    root_messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "go"}]
    calls = [
        LLMCall(seq=1, role="root", depth=0, model="gpt-5", messages=root_messages, request_hash=request_hash(messages=root_messages),
                response="```repl\nprint(len(context))\n```", latency_s=1.5, start_s=0.0, end_s=1.5, iteration=0),
        LLMCall(seq=2, role="sub", depth=1, model="gpt-5-mini", prompt="summarise", request_hash=request_hash(prompt="summarise"),
                response="ok", latency_s=0.2, start_s=1.6, end_s=1.8, batch_id="b1", batch_index=0, iteration=0, cell=0,
                usage={"input_tokens": 3, "output_tokens": 1, "cached_tokens": 0, "estimated": False}),
    ]
    cells = [Cell(seq=3, depth=0, iteration=0, index=0, code="print(len(context))", duration_s=0.3,
                  output_sha256=cell_digest("42\n", "", None), output_chars=3, start_s=1.5)]
    return Cassette(header=header, calls=calls, cells=cells, final=Final(answer="42", iterations=1))


def test_round_trip(tmp_path):
    original = _cassette()
    path = original.write(tmp_path / "run.jsonl")
    loaded = read_cassette(path)
    assert loaded == original
    assert [c.role for c in loaded.root_calls] == ["root"]
    assert [c.seq for c in loaded.sub_calls] == [2]
    first = json.loads(path.read_text().splitlines()[0])
    assert first["type"] == "header" and first["format"] == "rlmlab.cassette" and first["version"] == 1
    assert first["scripted"] is True


def test_streaming_writer_matches_whole_write(tmp_path):
    original = _cassette()
    with CassetteWriter(tmp_path / "stream.jsonl", original.header) as writer:
        for record in sorted([*original.calls, *original.cells], key=lambda r: r.seq):
            writer.append(record)
        writer.append(original.final)
    assert read_cassette(tmp_path / "stream.jsonl") == original


def test_unsupported_version_is_named(tmp_path):
    path = _cassette().write(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["version"] = 99
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(CassetteError, match=r"line 1: cassette version 99 is not supported"):
        read_cassette(path)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{not json", r"line 3: not valid JSON"),
        ('{"type": "tape"}', r"line 3: unknown line type 'tape'"),
        ('{"type": "cell", "seq": 9}', r"line 3: malformed 'cell' line"),
        ('{"type": "cell", "seq": "x", "depth": 0, "iteration": 0, "index": 0, "code": "", "duration_s": 0,'
         ' "output_sha256": "", "output_chars": 0}', r"line 3: field 'seq' of a 'cell' line must be int"),
        ('{"type": "final", "answer": "a", "iterations": 1, "colour": "red"}', r"line 3: unknown field\(s\) \['colour'\]"),
        ('[1, 2]', r"line 3: expected a JSON object"),
    ],
)
def test_malformed_line_names_its_number(tmp_path, bad, message):
    path = _cassette().write(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines()
    lines.insert(2, bad)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CassetteError, match=message):
        read_cassette(path)


def test_first_line_must_be_header(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"type": "final", "answer": null, "iterations": 0}\n')
    with pytest.raises(CassetteError, match="line 1: the first line must be the header"):
        read_cassette(path)
    path.write_text('{"type": "header", "format": "something-else", "version": 1}\n')
    with pytest.raises(CassetteError, match="not an rlmlab cassette"):
        read_cassette(path)
    with pytest.raises(CassetteError, match="no cassette at"):
        read_cassette(tmp_path / "missing.jsonl")


def test_secrets_never_reach_the_file(tmp_path):
    cassette = _cassette()
    cassette.header.policies = {"fetch": "parallel", "client": {"api_key": ANTHROPIC_KEY, "Authorization": f"Bearer {OPENAI_KEY}"}}
    cassette.header.context_uri = "s3://AKIAEXAMPLE:hunter2@bucket/prefix"
    cassette.calls[1].prompt = f"my key is {OPENAI_KEY} please"
    cassette.calls[0].response = f"use {ANTHROPIC_KEY}"
    text = cassette.write(tmp_path / "run.jsonl").read_text()
    assert ANTHROPIC_KEY not in text and OPENAI_KEY not in text
    assert "hunter2" not in text and "Authorization" not in text and "api_key" not in text
    loaded = read_cassette(tmp_path / "run.jsonl")
    assert loaded.header.policies == {"fetch": "parallel", "client": {}}
    assert loaded.header.context_uri == "s3://bucket/prefix"
    # The hash was taken before redaction, so a replay of the real request still matches it.
    assert loaded.calls[1].request_hash == request_hash(prompt="summarise")


def test_describe_request_uses_prompt_form_for_one_user_message():
    messages, prompt, digest = describe_request([{"role": "user", "content": "hi"}])
    assert (messages, prompt, digest) == (None, "hi", request_hash(prompt="hi"))
    chat = [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]
    assert describe_request(chat) == (chat, None, request_hash(messages=chat))
    assert request_hash(prompt="a") != request_hash(prompt="b")
    with pytest.raises(ValueError):
        request_hash()


def test_latency_models():
    cassette = _cassette()
    root, sub = cassette.calls
    assert isinstance(parse_latency("recorded", cassette), Recorded)
    assert parse_latency("recorded", cassette).delay(root) == 1.5
    assert parse_latency("zero", cassette).delay(root) == 0.0
    assert parse_latency("scale:0.5", cassette).delay(root) == pytest.approx(0.75)
    assert isinstance(parse_latency("zero", cassette), Zero) and isinstance(parse_latency("scale:2", cassette), Scaled)
    for bad, message in [("fast", "unknown latency model"), ("scale:x", "must be a number"), ("scale:-1", ">= 0"),
                         ("zero:1", "takes no argument"), ("fitted:abc", "must be an integer")]:
        with pytest.raises(ValueError, match=message):
            parse_latency(bad, cassette)


def test_fitted_latency_is_seeded_per_call_and_fits_each_model():
    cassette = _cassette()
    extra = [LLMCall(seq=10 + i, role="sub", depth=1, model="gpt-5-mini", prompt=str(i), request_hash=request_hash(prompt=str(i)),
                     response="", latency_s=latency) for i, latency in enumerate([0.1, 0.2, 0.4, 0.8])]
    cassette.calls.extend(extra)
    fitted = parse_latency("fitted:7", cassette)
    assert isinstance(fitted, Fitted)
    mu, sigma = fitted.params["gpt-5-mini"]
    logs = [math.log(x) for x in (0.2, 0.1, 0.2, 0.4, 0.8)]
    assert mu == pytest.approx(sum(logs) / len(logs))
    assert sigma > 0
    assert fitted.params["gpt-5"] == (pytest.approx(math.log(1.5)), 0.0)
    assert fitted.delay(cassette.calls[0]) == pytest.approx(1.5)  # one call: no spread
    samples = [fitted.delay(c) for c in extra]
    assert samples == [parse_latency("fitted:7", cassette).delay(c) for c in reversed(extra)][::-1]
    assert samples != [parse_latency("fitted:8", cassette).delay(c) for c in extra]
    assert all(s > 0 for s in samples)
