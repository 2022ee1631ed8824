"""Where the root model's code runs: in this process, or in a bubblewrap sandbox.

Both REPLs have one API (`run(code, timeout_s) -> CellOutput`, `lookup`, `variables`,
`close`) and the engine records the same `CellEvent` for either.

In-process (`repl="inprocess"`): fast and a soft boundary only (the code can `import os`).
Several RLMs may run in threads of one process: output is captured per thread by a
stdout/stderr router (no global swap that races), each REPL has its own work dir and
relative `open` resolves there (no `os.chdir`), and a cell past its time limit gets an
asynchronous `CellTimeout` raised in its thread, which leaves the namespace usable.

Isolated (`repl="isolated"`): a subprocess under bubblewrap with no network, a read-only
filesystem except its work dir, and an address-space rlimit. `llm_query` and friends are
proxied to the host over the worker's stdin/stdout. The `context` is decided per type:
a plain `str`/`list`/`dict` is copied in once (pickled; reads are then local), anything
else (an rlmlab `Context`) stays on the host and the sandbox holds a proxy whose `len`,
slicing and public methods run on the host, so storage reads, caches and their trace
events behave as in-process.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import pickle
import queue
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import SandboxUnavailable
from .cells import CappedBuffer, CellTimeout, Namespace

HostFunctions = dict[str, Callable]
TIMEOUT_GRACE_S = 2.0  # how long an interrupted cell gets to unwind before it is abandoned


@dataclass
class CellOutput:
    stdout: str
    stderr: str
    error: str | None
    duration_s: float
    output_chars: int  # everything the cell printed, before any cap
    final: str | None  # set when the cell called FINAL / FINAL_VAR or set answer["ready"]
    timed_out: bool = False


# Per-thread capture buffers, module-wide: a router installed later (say, after a test harness
# swapped sys.stdout again) must still route a thread that registered with an earlier one.
_CAPTURE: dict[str, dict[int, CappedBuffer]] = {"stdout": {}, "stderr": {}}


class _ThreadRouter:
    """Stands in for sys.stdout / sys.stderr: writes from a registered thread go to its buffer."""

    def __init__(self, fallback, buffers: dict[int, CappedBuffer]):
        self.fallback = fallback
        self.buffers = buffers

    def write(self, text):
        buffer = self.buffers.get(threading.get_ident())
        return (buffer or self.fallback).write(text)

    def flush(self):
        if threading.get_ident() not in self.buffers:
            self.fallback.flush()

    def __getattr__(self, name):
        return getattr(self.fallback, name)


_router_lock = threading.Lock()


def _router(name: str) -> _ThreadRouter:
    """The router installed as sys.<name>, (re)installed if someone replaced it since."""
    with _router_lock:
        current = getattr(sys, name)
        if not isinstance(current, _ThreadRouter):
            current = _ThreadRouter(current, _CAPTURE[name])
            setattr(sys, name, current)
        return current


class InProcessREPL:
    def __init__(self, context, host_functions: HostFunctions, *, workdir: str | None = None):
        self._owns_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="rlmlab-repl-")
        self.namespace = Namespace(context, host_functions, self.workdir)
        self._lock = threading.Lock()  # one cell at a time per REPL

    def run(self, code: str, timeout_s: float | None = None) -> CellOutput:
        with self._lock:
            return self._run(code, timeout_s)

    def _run(self, code: str, timeout_s: float | None) -> CellOutput:
        out, err = CappedBuffer(), CappedBuffer()
        _router("stdout"), _router("stderr")
        stdout, stderr = _CAPTURE["stdout"], _CAPTURE["stderr"]
        result: dict[str, Any] = {}

        def cell():
            ident = threading.get_ident()
            stdout[ident], stderr[ident] = out, err
            try:
                result["error"] = self.namespace.execute(code)
            except CellTimeout:  # arrived just after the cell's own code finished
                pass
            finally:
                stdout.pop(ident, None)
                stderr.pop(ident, None)

        start = time.perf_counter()
        worker = threading.Thread(target=cell, name="rlmlab-cell", daemon=True)
        worker.start()
        worker.join(timeout_s)
        timed_out = worker.is_alive()
        if timed_out:
            _interrupt(worker)
        duration = time.perf_counter() - start
        error = result.get("error")
        if timed_out and worker.is_alive():
            error = (
                f"CellTimeout: the cell ran past {timeout_s:.1f} s and is blocked where it cannot be "
                "interrupted (a C call); it was abandoned and may still change variables later"
            )
        elif timed_out:
            error = f"CellTimeout: the cell ran past {timeout_s:.1f} s and was interrupted; variables so far are kept"
        return CellOutput(
            out.getvalue(), err.getvalue(), error, duration, out.total + err.total,
            self.namespace.take_final(), timed_out,
        )

    def lookup(self, name: str) -> tuple[bool, str]:
        return self.namespace.lookup(name)

    def variables(self) -> list[str]:
        return self.namespace.variables()

    def close(self) -> None:
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _interrupt(worker: threading.Thread) -> None:
    """Raise CellTimeout in `worker` until it stops (it may catch one with a bare except)."""
    deadline = time.monotonic() + TIMEOUT_GRACE_S
    while worker.is_alive() and time.monotonic() < deadline:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(CellTimeout))
        worker.join(0.05)


# -- isolated ---------------------------------------------------------------------------------

WORKER = Path(__file__).with_name("sandbox.py")
PLAIN_CONTEXT_TYPES = (str, bytes, list, dict, tuple)
BWRAP_MISSING = (
    "repl='isolated' runs cells under bubblewrap, and `bwrap` is not on PATH. Install it "
    "(Debian/Ubuntu: `apt-get install bubblewrap`) or use repl='inprocess' (no sandbox)."
)


def bwrap_path() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(BWRAP_MISSING)
    return path


def isolation_problem() -> str | None:
    """Why repl='isolated' cannot run here (bwrap missing, or namespaces refused), or None."""
    try:
        bwrap = bwrap_path()
    except SandboxUnavailable as error:
        return str(error)
    probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", "--die-with-parent", "true"],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    if probe.returncode != 0:
        return f"bubblewrap is installed but cannot create a sandbox here: {probe.stderr.strip() or probe.returncode}"
    return None


class IsolatedREPL:
    """A sandboxed worker process per REPL; same API as InProcessREPL."""

    def __init__(
        self,
        context,
        host_functions: HostFunctions,
        *,
        workdir: str | None = None,
        memory_limit_mb: int = 2048,
        startup_timeout_s: float = 30.0,
    ):
        self._bwrap = bwrap_path()
        self._owns_workdir = workdir is None
        self.workdir = os.path.realpath(workdir or tempfile.mkdtemp(prefix="rlmlab-sandbox-"))
        self.memory_limit_mb = memory_limit_mb
        self.startup_timeout_s = startup_timeout_s
        self._context = context
        self._host = host_functions
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._start()

    # -- process ---------------------------------------------------------------------------
    def command(self) -> list[str]:
        return [
            self._bwrap,
            "--ro-bind", "/", "/",
            "--dev", "/dev",
            "--proc", "/proc",
            "--bind", self.workdir, self.workdir,
            "--chdir", self.workdir,
            "--setenv", "HOME", self.workdir,
            "--setenv", "TMPDIR", self.workdir,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            sys.executable, "-I", "-u", str(WORKER),
        ]  # fmt: skip

    def _start(self) -> None:
        limit = self.memory_limit_mb * 1024 * 1024

        def limit_memory():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=limit_memory,
            start_new_session=True,
        )
        self._messages: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(self._process, self._messages), daemon=True).start()
        self._stderr_tail: list[bytes] = []
        self._stderr_reader = threading.Thread(target=self._drain_stderr, args=(self._process,), daemon=True)
        self._stderr_reader.start()
        proxied = not isinstance(self._context, PLAIN_CONTEXT_TYPES)
        with contextlib.suppress(BrokenPipeError):  # a sandbox that failed to start: reported below
            self._send({
                "op": "init",
                "workdir": self.workdir,
                "context": None if proxied else _pack(self._context),
                "context_type": type(self._context).__name__,
                "host_functions": sorted(self._host),
            })  # fmt: skip
        message = self._next(time.monotonic() + self.startup_timeout_s)
        if message is None or message["op"] != "ready":
            self._kill()
            self._stderr_reader.join(1.0)
            detail = b"".join(self._stderr_tail).decode(errors="replace").strip()
            if self._owns_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise SandboxUnavailable(
                f"the bubblewrap sandbox did not start ({self._bwrap}): {detail or message or 'no answer'}"
            )

    @staticmethod
    def _read(process: subprocess.Popen, messages: queue.Queue) -> None:
        for line in process.stdout:
            try:
                messages.put(json.loads(line))
            except json.JSONDecodeError:
                continue  # a protocol line is JSON; anything else is not ours to trust
        messages.put({"op": "exited"})

    def _drain_stderr(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            self._stderr_tail = (self._stderr_tail + [line])[-20:]

    def _send(self, message: dict) -> None:
        self._process.stdin.write((json.dumps(message) + "\n").encode())
        self._process.stdin.flush()

    def _next(self, deadline: float | None) -> dict | None:
        try:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            return self._messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    # -- API -------------------------------------------------------------------------------
    def run(self, code: str, timeout_s: float | None = None) -> CellOutput:
        with self._lock:
            start = time.perf_counter()
            self._send({"op": "run", "code": code, "timeout_s": timeout_s})
            hard_deadline = None if timeout_s is None else time.monotonic() + timeout_s + TIMEOUT_GRACE_S + 1.0
            while True:
                message = self._next(hard_deadline)
                if message is None or message["op"] == "exited":  # it ignored its own timer, or died
                    return self._restart(timeout_s, time.perf_counter() - start, died=message is not None)
                if message["op"] == "call":
                    self._serve(message)
                elif message["op"] == "done":
                    return CellOutput(
                        message["stdout"], message["stderr"], message["error"], time.perf_counter() - start,
                        message["output_chars"], message["final"], message["timed_out"],
                    )  # fmt: skip

    def _serve(self, message: dict) -> None:
        """Run a host call the sandbox asked for; its answer goes back pickled (host → sandbox only)."""
        try:
            args = [self._decode(a) for a in message.get("args", [])]
            kwargs = {k: self._decode(v) for k, v in message.get("kwargs", {}).items()}
            if message["fn"] == "context":
                value = _context_call(self._context, message["method"], args, kwargs)
            elif message["fn"] in self._host:
                value = self._host[message["fn"]](*args, **kwargs)
            else:
                raise NameError(f"no host function {message['fn']!r}")
            reply = {"op": "reply", "id": message["id"], "value": _pack(value)}
        except Exception as error:  # goes back to the cell as an exception of the same name
            reply = {"op": "reply", "id": message["id"], "error": f"{type(error).__name__}: {error}"}
        self._send(reply)

    def _decode(self, value):
        """Arguments from the sandbox are JSON (never unpickled on the host); slices and the context come tagged."""
        if isinstance(value, dict) and set(value) == {"__slice__"}:
            return slice(*value["__slice__"])
        if isinstance(value, dict) and set(value) == {"__context__"}:
            return self._context
        if isinstance(value, list):
            return [self._decode(v) for v in value]
        return value

    def _restart(self, timeout_s, duration: float, *, died: bool) -> CellOutput:
        self._kill()
        self._stderr_reader.join(1.0)
        detail = b"".join(self._stderr_tail).decode(errors="replace").strip()[-2000:]
        self._start()
        if died:
            error = f"SandboxCrashed: the sandbox process exited (variables were lost; it was restarted). {detail}"
        else:
            error = f"CellTimeout: the cell ran past {timeout_s:.1f} s and could not be interrupted; the sandbox was restarted and variables were lost"
        return CellOutput("", "", error, duration, 0, None, not died)

    def lookup(self, name: str) -> tuple[bool, str]:
        return self._ask({"op": "lookup", "name": name}, lambda m: (m["found"], m["value"]))

    def variables(self) -> list[str]:
        return self._ask({"op": "variables"}, lambda m: m["names"])

    def _ask(self, message: dict, unpack):
        with self._lock:
            self._send(message)
            answer = self._next(time.monotonic() + 10.0)
            if answer is None or answer["op"] == "exited":
                raise SandboxUnavailable("the sandbox stopped answering")
            return unpack(answer)

    def close(self) -> None:
        if self._process is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._send({"op": "exit"})
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._kill()
            self._process = None
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


_CONTEXT_DUNDERS = {"__len__", "__getitem__", "__contains__", "__str__", "__repr__"}


def _context_call(context, method: str, args: list, kwargs: dict):
    """A proxied `context` operation, limited to reads: dunders above and public methods."""
    if method in _CONTEXT_DUNDERS:
        return getattr(context, method)(*args, **kwargs)
    if method.startswith("_"):
        raise AttributeError(f"context has no public attribute {method!r}")
    attribute = getattr(context, method)
    if callable(attribute):
        return attribute(*args, **kwargs)
    if args or kwargs:
        raise TypeError(f"context.{method} is not callable")
    return attribute


def _pack(value) -> str:
    return base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode()


REPLS: dict[str, type] = {"inprocess": InProcessREPL, "isolated": IsolatedREPL}


def make_repl(kind: str, context, host_functions: HostFunctions, **options):
    if kind not in REPLS:
        raise ValueError(f"unknown repl {kind!r}; choose one of {sorted(REPLS)}")
    return REPLS[kind](context, host_functions, **options)
