"""The cassette: a versioned JSONL record of one whole RLM run.

Line 1 is the header (what was asked, of which context, by which models, under which
policies, and whether the replies were scripted); then one line per LLM call and one per
REPL cell, in the order they finished; optionally a closing `final` line with the answer.
JSONL so a run that crashes still leaves every line written before the crash readable,
and so cassettes diff and grep well.

Secrets never reach the file: every free-text field passes through the project's secret
redactor, and configuration keys that name credentials (api_key, authorization, ...) are
dropped. Request hashes are computed on the *unredacted* request, so a replay on the same
context still matches them.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable

from ..errors import RlmlabError
from ..transcripts.redact import redact

FORMAT = "rlmlab.cassette"
VERSION = 1

# Configuration keys whose values are credentials; they are dropped, not redacted.
_CREDENTIAL_KEY = re.compile(r"(api[_-]?key|authorization|auth[_-]?header|secret|password|token$|access[_-]?key)", re.I)
_URI_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/@\s]*@", re.I)


class CassetteError(RlmlabError):
    """A cassette is unreadable: wrong version, malformed line, or inconsistent content."""


def request_hash(*, messages: list[dict] | None = None, prompt: str | None = None) -> str:
    """sha256 of a request's content (not its model): what a replay matches sub-calls by."""
    if (messages is None) == (prompt is None):
        raise ValueError("request_hash needs exactly one of messages= or prompt=")
    body = {"messages": messages} if messages is not None else {"prompt": prompt}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def describe_request(messages: list[dict]) -> tuple[list[dict] | None, str | None, str]:
    """(messages, prompt, hash) of a request: a lone user message is stored as a plain prompt."""
    if len(messages) == 1 and messages[0].get("role") == "user" and isinstance(messages[0].get("content"), str):
        prompt = messages[0]["content"]
        return None, prompt, request_hash(prompt=prompt)
    return messages, None, request_hash(messages=messages)


def cell_digest(stdout: str, stderr: str, error: str | None) -> str:
    """sha256 of what a REPL cell printed and raised: enough to prove a replay reproduced it."""
    canonical = json.dumps([stdout, stderr, error], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def scrub_uri(uri: str | None) -> str | None:
    """A context URI without user:password@ and with secrets redacted."""
    if uri is None:
        return None
    return redact(_URI_USERINFO.sub(r"\1", uri))


def scrub_config(value: Any) -> Any:
    """Drop credential-named keys and redact every string, recursively."""
    if isinstance(value, dict):
        return {str(k): scrub_config(v) for k, v in value.items() if not _CREDENTIAL_KEY.search(str(k))}
    if isinstance(value, (list, tuple)):
        return [scrub_config(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(repr(value))


def _redact_messages(messages: list[dict] | None) -> list[dict] | None:
    if messages is None:
        return None
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            content = redact(content)
        else:
            content = scrub_config(content)
        out.append({**{k: v for k, v in message.items() if k != "content"}, "content": content})
    return out


@dataclass
class Header:
    """Who asked what of which context, with which models and policies."""

    query: str
    context_uri: str | None = None
    manifest_sha256: str | None = None
    context_chars: int | None = None
    root_model: str | None = None
    sub_model: str | None = None
    policies: dict = field(default_factory=dict)
    rlmlab_version: str = ""
    recorded_at: str = ""
    scripted: bool = False
    source: str = "rlmlab"  # "rlmlab", or the importer that produced this cassette
    extra: dict = field(default_factory=dict)


@dataclass
class LLMCall:
    """One model call, root or sub, with what was asked and what came back."""

    seq: int
    role: str  # "root" or "sub"
    depth: int
    model: str
    request_hash: str
    response: str
    messages: list[dict] | None = None  # root calls: the chat messages
    prompt: str | None = None  # sub-calls: the prompt string
    usage: dict = field(default_factory=dict)  # input_tokens, output_tokens, cached_tokens, estimated
    latency_s: float = 0.0
    start_s: float = 0.0  # offsets from the run's start
    end_s: float = 0.0
    batch_id: str | None = None
    batch_index: int | None = None
    iteration: int | None = None  # the root iteration this call belongs to
    cell: int | None = None  # ordinal of the top-level REPL cell a sub-call ran in
    error: str | None = None


@dataclass
class Cell:
    """One REPL cell: the code run and a digest of what it printed."""

    seq: int
    depth: int
    iteration: int
    index: int  # ordinal of the top-level cell (depth 0) this cell is, or ran inside of
    code: str
    duration_s: float
    output_sha256: str
    output_chars: int
    start_s: float = 0.0
    error: str | None = None


@dataclass
class Final:
    """How the run ended."""

    answer: str | None
    iterations: int
    error: str | None = None


_KINDS = {"header": Header, "llm": LLMCall, "cell": Cell, "final": Final}
_TYPE_OF = {cls: name for name, cls in _KINDS.items()}


def _maybe(text: str | None) -> str | None:
    return None if text is None else redact(text)


def _redacted(record: Any) -> Any:
    """A copy of a record with every free-text field passed through the redactor."""
    if isinstance(record, Header):
        return replace(record, query=redact(record.query), context_uri=scrub_uri(record.context_uri),
                       policies=scrub_config(record.policies), extra=scrub_config(record.extra))
    if isinstance(record, LLMCall):
        return replace(record, response=redact(record.response), messages=_redact_messages(record.messages),
                       prompt=_maybe(record.prompt), usage=scrub_config(record.usage), error=_maybe(record.error))
    if isinstance(record, Cell):
        return replace(record, code=redact(record.code), error=_maybe(record.error))
    if isinstance(record, Final):
        return replace(record, answer=_maybe(record.answer), error=_maybe(record.error))
    raise TypeError(f"not a cassette record: {type(record).__name__}")


def _line(record: Any) -> str:
    kind = _TYPE_OF[type(record)]
    stamp = {"format": FORMAT, "version": VERSION} if kind == "header" else {}
    return json.dumps({"type": kind, **stamp, **asdict(_redacted(record))}, ensure_ascii=False) + "\n"


@dataclass
class Cassette:
    """A whole run in memory: header, calls and cells in order, and how it ended."""

    header: Header
    calls: list[LLMCall] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    final: Final | None = None

    @property
    def root_calls(self) -> list[LLMCall]:
        return [c for c in self.calls if c.role == "root" and c.depth == 0]

    @property
    def sub_calls(self) -> list[LLMCall]:
        return [c for c in self.calls if not (c.role == "root" and c.depth == 0)]

    @property
    def top_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.depth == 0]

    def write(self, path: str | Path) -> Path:
        """Write the whole cassette (records in seq order), redacted."""
        path = Path(path)
        records: list[Any] = sorted([*self.calls, *self.cells], key=lambda r: r.seq)
        text = _line(self.header) + "".join(_line(r) for r in records)
        if self.final is not None:
            text += _line(self.final)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


class CassetteWriter:
    """Appends records to a cassette as a run makes them (thread-safe; flushes every line).

    Streaming means a crash mid-run still leaves a readable cassette up to that point.
    """

    def __init__(self, path: str | Path, header: Header):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._seq = 0
        self._file = self.path.open("w", encoding="utf-8")
        self._file.write(_line(header))
        self._file.flush()

    def append(self, record: LLMCall | Cell | Final) -> None:
        """Write one record; calls and cells are numbered (`seq`) here, in the order written."""
        with self._lock:
            if isinstance(record, (LLMCall, Cell)):
                self._seq += 1
                record = replace(record, seq=self._seq)
            self._file.write(_line(record))
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> "CassetteWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_SIMPLE_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def _type_ok(annotation: str, value: Any) -> bool:
    """Plain-typed fields only (str, int, float, bool); JSON's true is not an int here."""
    expected = _SIMPLE_TYPES.get(annotation)
    if expected is None:
        return True
    if isinstance(value, bool) and annotation != "bool":
        return False
    return isinstance(value, expected)


def _build(cls: type, body: dict, where: str) -> Any:
    kind = _TYPE_OF[cls]
    unknown = set(body) - {f.name for f in fields(cls)}
    if unknown:
        raise CassetteError(f"{where}: unknown field(s) {sorted(unknown)} in a {kind!r} line")
    for f in fields(cls):
        if f.name in body and not _type_ok(f.type, body[f.name]):
            raise CassetteError(f"{where}: field {f.name!r} of a {kind!r} line must be {f.type}, got {body[f.name]!r}")
    try:
        return cls(**body)
    except TypeError as exc:
        raise CassetteError(f"{where}: malformed {kind!r} line: {exc}") from None


def parse_lines(lines: Iterable[str], name: str = "<cassette>") -> Cassette:
    """Parse cassette text, validating the format version and naming any bad line."""
    cassette: Cassette | None = None
    for number, raw in enumerate(lines, start=1):
        where = f"{name}, line {number}"
        if not raw.strip():
            continue
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CassetteError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(body, dict) or "type" not in body:
            raise CassetteError(f"{where}: expected a JSON object with a 'type' field")
        kind = body.pop("type")
        if cassette is None:
            if kind != "header":
                raise CassetteError(f"{where}: the first line must be the header, found type {kind!r}")
            fmt, version = body.pop("format", None), body.pop("version", None)
            if fmt != FORMAT:
                raise CassetteError(f"{where}: not an rlmlab cassette (format {fmt!r}, expected {FORMAT!r})")
            if version != VERSION:
                raise CassetteError(f"{where}: cassette version {version!r} is not supported (this rlmlab reads version {VERSION})")
            cassette = Cassette(header=_build(Header, body, where))
            continue
        if kind == "llm":
            cassette.calls.append(_build(LLMCall, body, where))
        elif kind == "cell":
            cassette.cells.append(_build(Cell, body, where))
        elif kind == "final":
            cassette.final = _build(Final, body, where)
        elif kind == "header":
            raise CassetteError(f"{where}: a second header line")
        else:
            raise CassetteError(f"{where}: unknown line type {kind!r} (expected llm, cell or final)")
    if cassette is None:
        raise CassetteError(f"{name}: empty cassette (no header line)")
    return cassette


def read_cassette(path: str | Path) -> Cassette:
    """Read and validate a cassette file."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return parse_lines(f, name=str(path))
    except FileNotFoundError:
        raise CassetteError(f"no cassette at {path}") from None
