"""Import trajectories written by the reference library's `RLMLogger` (`rlms`) as cassettes.

An RLMLogger file is JSONL: a `metadata` line (root model, backends, limits), sometimes a
`run_context` line (the root prompt), then one `iteration` line per root turn with the
whole message history sent (`prompt`), the reply (`response`), the code blocks run with
their stdout/stderr, time and sub-calls (`rlm_calls`), and `final_answer`. Two eras end a
run differently: the paper era's `FINAL(...)` / `FINAL_VAR(...)` in the reply, and the
newer `answer = {"content": ..., "ready": True}` dict set by code. rlmlab's engine honours
both, so either era replays here; the header records which one (`extra["termination"]`).

The logger keeps no per-call root latency, only each iteration's total: the root call is
given what the iteration took beyond its code blocks. Root usage is not logged either,
so it is estimated from the text and marked `estimated`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .. import __version__
from ..llm.base import estimate_tokens
from .cassette import Cassette, CassetteError, Cell, Final, Header, LLMCall, cell_digest, describe_request

_FINAL_CALL = re.compile(r"^\s*FINAL(?:_VAR)?\s*\(", re.M)
_ANSWER_DICT = re.compile(r"\banswer\s*\[\s*['\"]ready['\"]\s*\]|\banswer\s*=\s*\{")
_QUERY_NEW = re.compile(r"^Answer the following: (.*?)\n\n", re.S)
_QUERY_OLD = re.compile(r'answer the original prompt: "(.*?)"\.', re.S)


def import_rlms_log(path: str | Path, *, context_uri: str | None = None, query: str | None = None) -> Cassette:
    """Read an RLMLogger JSONL file and return the run as a cassette (not yet written)."""
    path = Path(path)
    metadata: dict[str, Any] = {}
    root_prompt: str | None = None
    iterations: list[dict] = []
    with path.open(encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise CassetteError(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
            kind = entry.get("type") if isinstance(entry, dict) else None
            if kind == "metadata":
                metadata = entry
            elif kind == "run_context":
                root_prompt = entry.get("root_prompt")
            elif kind == "iteration":
                for needed in ("prompt", "response"):
                    if needed not in entry:
                        raise CassetteError(f"{path}, line {number}: iteration line without {needed!r}")
                iterations.append(entry)
            else:
                raise CassetteError(f"{path}, line {number}: not an RLMLogger line (type {kind!r}; expected metadata, run_context or iteration)")
    if not iterations:
        raise CassetteError(f"{path}: no iteration lines: not an RLMLogger trajectory, or the run logged nothing")

    root_model = _model_name(metadata.get("backend_kwargs")) or metadata.get("root_model") or "unknown"
    sub_model = _sub_model(metadata, iterations) or root_model
    first_messages = _as_messages(iterations[0]["prompt"])
    header = Header(
        query=query if query is not None else (root_prompt or _find_query(first_messages) or ""),
        context_uri=context_uri,
        root_model=root_model,
        sub_model=sub_model,
        policies={},
        rlmlab_version=__version__,
        recorded_at=str(metadata.get("timestamp") or iterations[0].get("timestamp") or ""),
        scripted=False,
        source="rlms-import",
        extra={
            "termination": _termination_era(iterations),
            "imported_from": path.name,
            "max_depth": metadata.get("max_depth"),
            "max_iterations": metadata.get("max_iterations"),
            "backend": metadata.get("backend"),
            "environment_type": metadata.get("environment_type"),
        },
    )
    cassette = Cassette(header=header)
    seq = 0
    clock = 0.0
    cell_index = 0
    for number, entry in enumerate(iterations):
        blocks = entry.get("code_blocks") or []
        code_time = sum(float(_result(b).get("execution_time") or 0.0) for b in blocks)
        root_latency = max(float(entry.get("iteration_time") or 0.0) - code_time, 0.0)
        messages = _as_messages(entry["prompt"])
        seq += 1
        cassette.calls.append(
            LLMCall(
                seq=seq,
                role="root",
                depth=0,
                model=root_model,
                messages=messages,
                request_hash=describe_request(messages)[2],
                response=str(entry["response"]),
                usage={
                    "input_tokens": estimate_tokens("".join(str(m.get("content", "")) for m in messages)),
                    "output_tokens": estimate_tokens(str(entry["response"])),
                    "cached_tokens": 0,
                    "estimated": True,
                },
                latency_s=root_latency,
                start_s=clock,
                end_s=clock + root_latency,
                iteration=number,
            )
        )
        clock += root_latency
        for block in blocks:
            result = _result(block)
            duration = float(result.get("execution_time") or 0.0)
            cell_start, sub_clock = clock, clock
            for sub in result.get("rlm_calls") or []:
                seq += 1
                cassette.calls.append(_sub_call(sub, seq, number, cell_index, sub_clock, sub_model))
                sub_clock = cassette.calls[-1].end_s
            stdout, stderr = result.get("stdout") or "", result.get("stderr") or ""
            seq += 1
            cassette.cells.append(
                Cell(
                    seq=seq,
                    depth=0,
                    iteration=number,
                    index=cell_index,
                    code=str(block.get("code", "")),
                    duration_s=duration,
                    output_sha256=cell_digest(stdout, stderr, None),
                    output_chars=len(stdout) + len(stderr),
                    start_s=cell_start,
                    error=stderr or None,
                )
            )
            clock = max(clock + duration, sub_clock)
            cell_index += 1
    final = next((e.get("final_answer") for e in reversed(iterations) if e.get("final_answer") is not None), None)
    cassette.final = Final(answer=None if final is None else _answer_text(final), iterations=len(iterations))
    return cassette


def _result(block: dict) -> dict:
    return block.get("result") or {}


def _as_messages(prompt: Any) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, dict):
        return [prompt] if "role" in prompt else [{"role": "user", "content": json.dumps(prompt)}]
    if isinstance(prompt, list):
        return [m if isinstance(m, dict) else {"role": "user", "content": str(m)} for m in prompt]
    return [{"role": "user", "content": str(prompt)}]


def _answer_text(final: Any) -> str:
    """Paper-era loggers sometimes kept FINAL's parse as a (kind, value) pair."""
    if isinstance(final, (list, tuple)) and len(final) == 2 and final[0] in ("FINAL", "FINAL_VAR"):
        return str(final[1])
    return final if isinstance(final, str) else json.dumps(final)


def _model_name(kwargs: Any) -> str | None:
    if isinstance(kwargs, dict):
        return kwargs.get("model_name") or kwargs.get("model")
    return None


def _sub_model(metadata: dict, iterations: list[dict]) -> str | None:
    for kwargs in metadata.get("other_backend_kwargs") or []:
        if _model_name(kwargs):
            return _model_name(kwargs)
    for entry in iterations:
        for block in entry.get("code_blocks") or []:
            for sub in _result(block).get("rlm_calls") or []:
                if sub.get("root_model"):
                    return sub["root_model"]
    return None


def _find_query(messages: list[dict]) -> str | None:
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str):
            continue
        for pattern in (_QUERY_NEW, _QUERY_OLD):
            found = pattern.search(content)
            if found:
                return found.group(1)
    return None


def _termination_era(iterations: list[dict]) -> str:
    """'final' (FINAL/FINAL_VAR in a reply) or 'answer-dict' (answer["ready"] set by code)."""
    for entry in reversed(iterations):
        codes = " ".join(str(b.get("code", "")) for b in entry.get("code_blocks") or [])
        if _ANSWER_DICT.search(codes):
            return "answer-dict"
        if _FINAL_CALL.search(str(entry.get("response", ""))):
            return "final"
    return "unknown"


def _sub_call(sub: dict, seq: int, iteration: int, cell: int, start: float, default_model: str) -> LLMCall:
    prompt = sub.get("prompt")
    messages, text, digest = describe_request(_as_messages(prompt))
    tokens_in = tokens_out = 0
    summaries = (sub.get("usage_summary") or {}).get("model_usage_summaries") or {}
    for usage in summaries.values():
        tokens_in += int(usage.get("total_input_tokens") or 0)
        tokens_out += int(usage.get("total_output_tokens") or 0)
    latency = float(sub.get("execution_time") or 0.0)
    return LLMCall(
        seq=seq,
        role="sub",
        depth=1,
        model=sub.get("root_model") or default_model,
        messages=messages,
        prompt=text,
        request_hash=digest,
        response=str(sub.get("response") or ""),
        usage={"input_tokens": tokens_in, "output_tokens": tokens_out, "cached_tokens": 0, "estimated": not summaries},
        latency_s=latency,
        start_s=start,
        end_s=start + latency,
        iteration=iteration,
        cell=cell,
        error=sub.get("error"),
    )
