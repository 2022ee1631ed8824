"""The isolated REPL's worker: runs inside bubblewrap, talks JSON lines over stdin/stdout.

Loaded by path with the standard library only (no package import, so startup is quick).
Host → worker: init, run, lookup, variables, reply, exit. Worker → host: ready, call
(a host function or a context operation), done, and answers to lookup / variables.
Values from the host arrive pickled (the host is trusted); everything the worker sends
is plain JSON, which the host never unpickles.
"""

import base64
import itertools
import json
import os
import pickle
import signal
import sys


def _load_cells():
    """cells.py from beside this file, without putting the package directory on sys.path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rlmlab_cells", os.path.join(os.path.dirname(os.path.abspath(__file__)), "cells.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cells = _load_cells()
CappedBuffer, CellTimeout, Namespace = _cells.CappedBuffer, _cells.CellTimeout, _cells.Namespace

_protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # stray writes to fd 1 (C extensions, subprocesses) must not corrupt the protocol
_protocol_in = sys.stdin
_ids = itertools.count(1)


class HostError(Exception):
    """A host function or context operation failed; the message names the original error."""


def send(message):
    _protocol_out.write(json.dumps(message) + "\n")


def receive():
    line = _protocol_in.readline()
    if not line:
        sys.exit(0)
    return json.loads(line)


def unpack(text):
    return pickle.loads(base64.b64decode(text))


def call_host(fn, args=(), kwargs=None, method=None):
    """Ask the host to run something; replies of calls abandoned by a timeout are skipped."""
    call_id = next(_ids)
    message = {"op": "call", "id": call_id, "fn": fn, "args": [encode(a) for a in args],
               "kwargs": {k: encode(v) for k, v in (kwargs or {}).items()}}
    if method is not None:
        message["method"] = method
    send(message)
    while True:
        reply = receive()
        if reply.get("op") == "reply" and reply.get("id") == call_id:
            break
    if "error" in reply:
        raise HostError(reply["error"])
    return unpack(reply["value"])


def encode(value):
    if isinstance(value, ContextProxy):
        return {"__context__": True}  # the host substitutes its own context object
    if isinstance(value, slice):
        return {"__slice__": [value.start, value.stop, value.step]}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


class ContextProxy:
    """The host's context, read through the host: len, slices and public methods."""

    def __init__(self, type_name):
        self._type_name = type_name

    def __len__(self):
        return call_host("context", [], method="__len__")

    def __getitem__(self, key):
        return call_host("context", [key], method="__getitem__")

    def __contains__(self, item):
        return call_host("context", [item], method="__contains__")

    def __str__(self):
        return call_host("context", [], method="__str__")

    def __repr__(self):
        return f"<{self._type_name} on the host, len={len(self)}>"

    def __iter__(self):
        step = 1 << 16
        for start in range(0, len(self), step):
            yield from self[start:start + step]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: call_host("context", args, kwargs, method=name)


def host_function(name):
    def proxied(*args, **kwargs):
        return call_host(name, args, kwargs)

    proxied.__name__ = name
    return proxied


def on_alarm(signum, frame):
    raise CellTimeout()


def run_cell(namespace, code, timeout_s):
    out, err = CappedBuffer(), CappedBuffer()
    sys.stdout, sys.stderr = out, err  # one cell at a time in this process: a plain swap is safe here
    timed_out = False
    try:
        if timeout_s:
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            error = namespace.execute(code)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except CellTimeout:
        error = None
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    if error and error.startswith("CellTimeout"):
        timed_out = True
        error = f"CellTimeout: the cell ran past {timeout_s:.1f} s and was interrupted; variables so far are kept"
    send({"op": "done", "stdout": out.getvalue(), "stderr": err.getvalue(), "error": error,
          "output_chars": out.total + err.total, "final": namespace.take_final(), "timed_out": timed_out})


def main():
    signal.signal(signal.SIGALRM, on_alarm)
    init = receive()
    if init["context"] is not None:
        context = unpack(init["context"])
    else:
        context = ContextProxy(init["context_type"])
    functions = {name: host_function(name) for name in init["host_functions"]}
    namespace = Namespace(context, functions, init["workdir"])
    send({"op": "ready", "pid": os.getpid()})
    while True:
        message = receive()
        op = message.get("op")
        if op == "run":
            run_cell(namespace, message["code"], message.get("timeout_s"))
        elif op == "lookup":
            found, value = namespace.lookup(message["name"])
            send({"op": "value", "found": found, "value": value})
        elif op == "variables":
            send({"op": "variables", "names": namespace.variables()})
        elif op == "exit":
            return


if __name__ == "__main__":
    main()
