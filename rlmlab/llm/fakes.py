"""Fake OpenAI and Anthropic HTTP servers on 127.0.0.1, so the real SDK code paths run offline.

Tests and benchmarks both use them: scripted replies (a list consumed in order, or a
function of the request), a latency per call, and failures (the first N requests, a
seeded random rate, or a `FakeError` returned by the script). Each server counts its
requests and the most it ever had in flight, which is how concurrency is checked.
The Anthropic fake also answers `"stream": true` with server-sent events, because the
Claude Code CLI (behind `ClaudeAgentClient`) only ever streams, and a script may make it
call a tool (`FakeToolUse`) and read the `tool_result` that comes back, so an agent's
tool loop (rlmlab.rlm.agent) runs offline too.
`ScriptedClient` is the same script without HTTP, for measuring the engine alone.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .base import Completion, LLMClient, Messages, estimate_tokens, estimated_usage, messages_text


@dataclass(frozen=True)
class FakeRequest:
    """What the fake server received; Anthropic's `system` is folded in as a system message."""

    api: str
    model: str
    messages: list[dict]
    headers: dict[str, str]
    stream: bool = False
    tools: tuple[str, ...] = ()  # the names of the tools the request offers the model
    tool_results: tuple[str, ...] = ()  # the text of every tool_result block in the history, oldest first

    @property
    def last_user(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        return _text(users[-1].get("content", "")) if users else ""

    @property
    def is_root(self) -> bool:
        """RLM root calls carry a system prompt; plain sub-calls are a single user message."""
        return any(m.get("role") == "system" for m in self.messages)

    @property
    def step(self) -> int:
        """How many assistant turns the history holds: the root's iteration, without server state."""
        return sum(m.get("role") == "assistant" for m in self.messages)


@dataclass(frozen=True)
class FakeError:
    """A script's way to make one request fail with an HTTP status."""

    status: int
    message: str = "fake failure"


@dataclass(frozen=True)
class FakeToolUse:
    """A script's way to make the model call a tool: a `tool_use` block, after `text` if any."""

    name: str
    input: dict
    text: str = ""


STREAM_CHUNK_CHARS = 64  # streamed replies arrive in deltas of this many characters

Reply = str | FakeToolUse | FakeError
Script = list | Callable[[FakeRequest], Reply] | None


class _Replies:
    """A list is consumed in order (thread-safe); a function is called per request; None echoes."""

    def __init__(self, script: Script):
        self._script = script
        self._lock = threading.Lock()
        self._queue = list(script) if isinstance(script, (list, tuple)) else None

    def __call__(self, request: FakeRequest) -> Reply:
        if self._queue is not None:
            with self._lock:
                if not self._queue:
                    return FakeError(400, "fake server: the scripted replies are exhausted")
                return self._queue.pop(0)
        if self._script is None:
            return f"echo: {request.last_user}"
        return self._script(request)


@dataclass
class ServerStats:
    requests: list[FakeRequest] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0


class _FakeServer:
    api = ""
    scripts_tool_use = False

    def __init__(
        self,
        replies: Script = None,
        *,
        latency_s: float = 0.0,
        fail_first: list[int] | tuple[int, ...] = (),
        failure_rate: float = 0.0,
        failure_status: int = 503,
        retry_after_s: float | None = 0.0,
        include_usage: bool = True,
        expected_key: str | None = None,
        seed: int = 0,
    ):
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be within [0, 1], got {failure_rate}")
        self.replies = _Replies(replies)
        self.latency_s = latency_s
        self.retry_after_s = retry_after_s
        self.failure_rate = failure_rate
        self.failure_status = failure_status
        self.include_usage = include_usage
        self.expected_key = expected_key
        self.stats = ServerStats()
        self._fail_first = list(fail_first)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> _FakeServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def do_POST(self):
                server._handle(self)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256  # a burst of concurrent SDK connections must not hit SYN retries

        self._httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name=f"fake-{self.api}", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake server is not started")
        return self._httpd.server_address[1]

    # -- one request ---------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        try:
            body = json.loads(handler.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            return self._send(handler, 400, self._error_body(400, "body is not JSON"))
        if not self._path_ok(urlsplit(handler.path).path):
            return self._send(handler, 404, self._error_body(404, f"no route {handler.path}"))
        request = self._parse(body, dict(handler.headers))
        with self._lock:
            self.stats.requests.append(request)
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            forced = self._fail_first.pop(0) if self._fail_first else None
            if forced is None and self.failure_rate and self._random.random() < self.failure_rate:
                forced = self.failure_status
        try:
            if self.latency_s:
                time.sleep(self.latency_s)
            key = self._key(handler.headers)
            if self.expected_key is not None and key != self.expected_key:
                return self._send(handler, 401, self._error_body(401, f"Incorrect API key provided: {key}"))
            if forced is not None:
                return self._send(handler, forced, self._error_body(forced, "fake transient failure"))
            reply = self.replies(request)
            if isinstance(reply, FakeToolUse) and not self.scripts_tool_use:
                reply = FakeError(500, f"the fake {self.api} server does not script tool calls")
            if isinstance(reply, FakeError):
                return self._send(handler, reply.status, self._error_body(reply.status, reply.message))
            usage = (estimate_tokens(messages_text(request.messages)), estimate_tokens(_reply_text(reply)))
            usage = usage if self.include_usage else None
            if request.stream:
                return self._send_events(handler, self._stream_events(request, reply, usage))
            self._send(handler, 200, self._success_body(request, reply, usage))
        finally:
            with self._lock:
                self.stats.in_flight -= 1

    def _send(self, handler, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        with self._lock:
            self.stats.statuses.append(status)
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(payload)))
        if status == 429 and self.retry_after_s is not None:
            handler.send_header("retry-after", str(self.retry_after_s))
        handler.end_headers()
        handler.wfile.write(payload)

    def _send_events(self, handler, events: Iterator[tuple[str, dict]]) -> None:
        """A 200 streamed as server-sent events; the connection closes after the last one."""
        with self._lock:
            self.stats.statuses.append(200)
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("connection", "close")
        handler.end_headers()
        handler.close_connection = True
        for name, data in events:
            handler.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        handler.wfile.flush()

    def _path_ok(self, path: str) -> bool:
        raise NotImplementedError

    def _key(self, headers) -> str:
        raise NotImplementedError

    def _parse(self, body: dict, headers: dict) -> FakeRequest:
        raise NotImplementedError

    def _success_body(self, request: FakeRequest, reply: str | FakeToolUse, usage: tuple[int, int] | None) -> dict:
        raise NotImplementedError

    def _stream_events(self, request: FakeRequest, reply: str | FakeToolUse, usage: tuple[int, int] | None):
        raise NotImplementedError

    def _error_body(self, status: int, message: str) -> dict:
        raise NotImplementedError


class FakeOpenAIServer(_FakeServer):
    """POST /v1/chat/completions, as api.openai.com answers it."""

    api = "openai"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _path_ok(self, path: str) -> bool:
        return path.rstrip("/").endswith("/chat/completions")

    def _key(self, headers) -> str:
        return (headers.get("authorization") or "").removeprefix("Bearer ")

    def _parse(self, body: dict, headers: dict) -> FakeRequest:
        messages = [{"role": m.get("role"), "content": _text(m.get("content"))} for m in body.get("messages", [])]
        return FakeRequest("openai", body.get("model", ""), messages, headers)

    def _success_body(self, request, text, usage):
        body = {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        }
        if usage is not None:
            body["usage"] = {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": sum(usage),
                "prompt_tokens_details": {"cached_tokens": 0},
            }
        return body

    def _error_body(self, status, message):
        kind = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "code": kind, "param": None}}


class FakeAnthropicServer(_FakeServer):
    """POST /v1/messages, as api.anthropic.com answers it."""

    api = "anthropic"
    scripts_tool_use = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _path_ok(self, path: str) -> bool:
        return path.rstrip("/").endswith("/v1/messages")

    def _key(self, headers) -> str:
        return headers.get("x-api-key") or ""

    def _parse(self, body: dict, headers: dict) -> FakeRequest:
        system = body.get("system")
        messages = [{"role": "system", "content": _text(system)}] if system else []
        messages += [{"role": m.get("role"), "content": _text(m.get("content"))} for m in body.get("messages", [])]
        results = [
            _text(block.get("content"))
            for m in body.get("messages", []) if isinstance(m.get("content"), list)
            for block in m["content"] if isinstance(block, dict) and block.get("type") == "tool_result"
        ]  # fmt: skip
        tools = tuple(tool.get("name", "") for tool in body.get("tools") or [])
        return FakeRequest("anthropic", body.get("model", ""), messages, headers, stream=bool(body.get("stream")),
                           tools=tools, tool_results=tuple(results))  # fmt: skip

    def _success_body(self, request, reply, usage):
        body = {
            "id": f"msg_fake{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": self._content(reply),
            "stop_reason": "tool_use" if isinstance(reply, FakeToolUse) else "end_turn",
            "stop_sequence": None,
        }
        if usage is not None:
            body["usage"] = {
                "input_tokens": usage[0],
                "output_tokens": usage[1],
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            }
        else:
            body["usage"] = {"input_tokens": 0, "output_tokens": 0}
        return body

    def _content(self, reply: str | FakeToolUse) -> list[dict]:
        if not isinstance(reply, FakeToolUse):
            return [{"type": "text", "text": reply}]
        call = {"type": "tool_use", "id": f"toolu_fake{next(self._ids)}", "name": reply.name, "input": reply.input}
        return ([{"type": "text", "text": reply.text}] if reply.text else []) + [call]

    def _stream_events(self, request, reply, usage):
        """The Messages API's event sequence: text and a tool call's JSON arrive in several deltas, usage at both ends."""
        input_tokens, output_tokens = usage or (0, 0)
        message = self._success_body(request, "", usage) | {"content": [], "stop_reason": None}
        message["usage"] = message["usage"] | {"input_tokens": input_tokens, "output_tokens": min(output_tokens, 1)}
        yield "message_start", {"type": "message_start", "message": message}
        yield "ping", {"type": "ping"}
        for index, block in enumerate(self._content(reply)):
            if block["type"] == "text":  # the text in text_delta events
                text, empty, delta_kind, delta_field = block["text"], block | {"text": ""}, "text_delta", "text"
            else:  # a tool call's input as JSON cut anywhere, in input_json_delta events
                text, empty, delta_kind, delta_field = json.dumps(block["input"]), block | {"input": {}}, "input_json_delta", "partial_json"  # fmt: skip
            yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}
            for start in range(0, len(text), STREAM_CHUNK_CHARS):
                delta = {"type": delta_kind, delta_field: text[start : start + STREAM_CHUNK_CHARS]}
                yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        stop_reason = "tool_use" if isinstance(reply, FakeToolUse) else "end_turn"
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        yield "message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens}}
        yield "message_stop", {"type": "message_stop"}

    def _error_body(self, status, message):
        kind = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}


class ScriptedClient(LLMClient):
    """The fake servers' script with no HTTP at all: the engine's own cost, model time excluded."""

    provider = "scripted"

    def __init__(self, model: str = "scripted", replies: Script = None, **limits):
        super().__init__(model, **limits)
        self.replies = _Replies(replies)
        self.requests: list[FakeRequest] = []

    def _send(self, messages: Messages) -> Completion:
        request = FakeRequest("scripted", self.model, [dict(m) for m in messages], {})
        self.requests.append(request)
        reply = self.replies(request)
        if isinstance(reply, FakeToolUse):
            raise TypeError("ScriptedClient has no tools: script FakeToolUse replies for FakeAnthropicServer")
        if isinstance(reply, FakeError):
            raise _ScriptedFailure(reply.status, reply.message)
        return Completion(reply, self.model, estimated_usage(messages, reply))

    def _classify(self, error: Exception) -> tuple[bool, int | None, float | None]:
        if isinstance(error, _ScriptedFailure):
            return error.status == 429 or error.status >= 500, error.status, 0.0
        return False, None, None


class _ScriptedFailure(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(f"{status}: {message}")


def _reply_text(reply: str | FakeToolUse) -> str:
    """What a reply's output tokens are counted from."""
    return reply if isinstance(reply, str) else reply.text + json.dumps(reply.input)


def _text(content) -> str:
    """Message content as text, whether a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(block.get("text", "") for block in content if isinstance(block, dict))
    return "" if content is None else str(content)
