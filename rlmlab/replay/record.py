"""Record a whole RLM run as a cassette: an observer of the engine, no change to the loop.

The engine tells its observers about every model call (`on_llm_call`, with the messages,
the reply, usage, timing, batch id and position) and every REPL cell (`on_cell`, with
the code and its output). `Recorder` turns each into a cassette line as it happens, so
a run that dies half-way still leaves a readable cassette. A sub-call is filed under the
top-level cell it was asked from, which is what replay matches positions within.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from pathlib import Path

from .. import __version__
from .cassette import CassetteWriter, Cell, Final, Header, LLMCall, cell_digest, describe_request


def manifest_sha256(context) -> str | None:
    """A hash of a Context's layout (segments and totals; not its creation time), else None."""
    manifest = getattr(context, "manifest", None)
    if manifest is None:
        return None
    body = json.loads(manifest.to_json())
    body.pop("created_at", None)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def context_policies(context) -> dict:
    """Names of a Context's read policies (fetch, cache, prefetch); {} for a plain str."""
    reader = getattr(context, "reader", None)
    if reader is None:
        return {}
    return {kind: str(getattr(getattr(reader, kind), "name", type(getattr(reader, kind)).__name__))
            for kind in ("fetch", "cache", "prefetch")}


def engine_settings(rlm) -> dict:
    """The engine settings a replay must reuse to follow the same path."""
    return {
        "max_iterations": rlm.max_iterations,
        "max_depth": rlm.max_depth,
        "max_concurrency": rlm.max_concurrency,
        "output_chars": rlm.output_chars,
        "cell_timeout_s": rlm.cell_timeout_s,
        "repl": rlm.repl,
        "sub_call_cache": rlm.cache is not None,
    }


class Recorder:
    """An engine observer that writes each model call and REPL cell to a cassette."""

    def __init__(self, path: str | Path, header: Header, *, origin_s: float = 0.0):
        self.writer = CassetteWriter(path, header)
        self.origin_s = origin_s  # the trace time the run started at: offsets are from there
        self._lock = threading.Lock()
        self._top_cells = 0
        self.root_calls = 0
        self.calls = 0
        self.cells = 0

    @property
    def path(self) -> Path:
        return self.writer.path

    def on_llm_call(self, record) -> None:
        messages, prompt, digest = describe_request(record.messages)
        top_root = record.role == "root" and record.depth == 0
        with self._lock:
            cell = None if top_root else self._top_cells
            self.root_calls += top_root
            self.calls += 1
        self.writer.append(
            LLMCall(
                seq=0,  # numbered by the writer
                role=record.role,
                depth=record.depth,
                model=record.model,
                request_hash=digest,
                response=record.response or "",
                messages=messages,
                prompt=prompt,
                usage={"input_tokens": record.usage.input_tokens, "output_tokens": record.usage.output_tokens,
                       "cached_tokens": record.usage.cached_tokens, "estimated": record.usage.estimated},
                latency_s=record.end_s - record.start_s,
                start_s=record.start_s - self.origin_s,
                end_s=record.end_s - self.origin_s,
                batch_id=record.batch_id,
                batch_index=record.batch_index,
                iteration=record.iteration,
                cell=cell,
                error=record.error,
            )
        )

    def on_cell(self, record) -> None:
        output = record.output
        with self._lock:
            index = self._top_cells
            if record.depth == 0:
                self._top_cells += 1
            self.cells += 1
        self.writer.append(
            Cell(
                seq=0,  # numbered by the writer
                depth=record.depth,
                iteration=record.iteration,
                index=index,
                code=record.code,
                duration_s=output.duration_s,
                output_sha256=cell_digest(output.stdout, output.stderr, output.error),
                output_chars=output.output_chars,
                start_s=record.start_s - self.origin_s,
                error=output.error,
            )
        )

    def finish(self, answer: str | None, iterations: int, error: str | None = None) -> None:
        self.writer.append(Final(answer=answer, iterations=iterations, error=error))
        self.writer.close()


def header_for(rlm, context, query: str, *, scripted: bool = False, context_uri: str | None = None, extra: dict | None = None) -> Header:
    """The cassette header of a run of `rlm` on `context`."""
    return Header(
        query=query,
        context_uri=context_uri or getattr(context, "source", None) or None,
        manifest_sha256=manifest_sha256(context),
        context_chars=len(context) if hasattr(context, "__len__") else None,
        root_model=rlm.root.model,
        sub_model=rlm.sub.model,
        policies=context_policies(context),
        rlmlab_version=__version__,
        recorded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        scripted=scripted,
        source="rlmlab",
        extra={"engine": engine_settings(rlm), **(extra or {})},
    )


def record(rlm, context, query: str, path: str | Path, *, scripted: bool = False, context_uri: str | None = None,
           extra: dict | None = None, trace=None):
    """Run `rlm.completion(context, query)` and write the whole run to a cassette at `path`.

    The RLM itself is not changed: a copy of it carries the recorder as one more observer,
    so the same RLM can run unrecorded elsewhere at the same time. (`RLM(record_to=PATH)`
    comes here.) Returns the engine's Result.
    """
    from ..trace import Trace

    if trace is None:
        own = getattr(context, "trace", None)
        trace = own if isinstance(own, Trace) else Trace()
    recorder = Recorder(path, header_for(rlm, context, query, scripted=scripted, context_uri=context_uri, extra=extra),
                        origin_s=trace.now())
    recording = copy.copy(rlm)
    recording.observers = [*rlm.observers, recorder]
    recording.record_to = None
    try:
        result = recording.completion(context, query, trace=trace)
    except Exception as error:
        recorder.finish(getattr(error, "partial_answer", None), recorder.root_calls, f"{type(error).__name__}: {error}")
        raise
    recorder.finish(result.answer, result.iterations)
    return result
