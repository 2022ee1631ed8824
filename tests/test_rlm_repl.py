"""The REPLs: persistence, per-thread capture, timeouts, and the bubblewrap sandbox."""

import os
import socket
import threading

import pytest

from rlmlab.errors import SandboxUnavailable
from rlmlab.rlm import repl as repl_module
from rlmlab.rlm.repl import InProcessREPL, IsolatedREPL, isolation_problem

HOST = {
    "llm_query": lambda prompt, model=None: f"answer to {prompt}",
    "llm_query_batched": lambda prompts, model=None: [f"answer to {p}" for p in prompts],
}
ISOLATION_PROBLEM = isolation_problem()
needs_bwrap = pytest.mark.skipif(ISOLATION_PROBLEM is not None, reason=f"isolated REPL unavailable: {ISOLATION_PROBLEM}")
KINDS = [InProcessREPL, pytest.param(IsolatedREPL, marks=needs_bwrap)]


@pytest.fixture(params=KINDS, ids=["inprocess", "isolated"])
def repl(request):
    instance = request.param("the context text", HOST)
    yield instance
    instance.close()


def test_variables_persist_and_output_is_captured(repl):
    assert repl.run("x = 40").error is None
    out = repl.run("print(x + 2)\nx * 2")
    assert out.stdout == "42\n80\n"
    assert "x" in repl.variables()
    assert repl.lookup("x") == (True, "40")
    assert repl.lookup("nope") == (False, "")


def test_exception_comes_back_as_text(repl):
    out = repl.run("def f():\n    return 1 / 0\nf()")
    assert "ZeroDivisionError" in out.error and "<cell" in out.error
    assert repl.run("print('still alive')").stdout == "still alive\n"


def test_context_and_host_functions_are_there(repl):
    out = repl.run("print(context[:3]); print(llm_query_batched(['a', 'b']))")
    assert out.stdout == "the\n['answer to a', 'answer to b']\n"
    repl.run("context = 'overwritten'")
    assert repl.run("print(context[:3])").stdout == "the\n"  # scaffolding names do not stick


def test_infinite_loop_times_out_and_leaves_repl_usable(repl):
    repl.run("kept = 7")
    out = repl.run("while True:\n    pass", timeout_s=0.3)
    assert out.timed_out and "CellTimeout" in out.error
    assert repl.run("print(kept)").stdout == "7\n"


def test_bare_except_cannot_swallow_the_timeout(repl):
    out = repl.run("while True:\n    try:\n        pass\n    except:\n        pass", timeout_s=0.3)
    assert out.timed_out
    assert repl.run("print(1)").stdout == "1\n"


def test_final_forms(repl):
    assert repl.run("FINAL(6 * 7)").final == "42"
    out = repl.run("FINAL_VAR('missing')")
    assert out.final is None and "no variable named 'missing'" in out.stderr
    assert repl.run("total = 5\nFINAL_VAR('total')").final == "5"
    assert repl.run("answer['content'] = 'done'\nanswer['ready'] = True").final == "done"


def test_output_size_is_counted_beyond_what_is_kept(repl):
    out = repl.run("print('x' * 2_000_000)")
    assert out.output_chars == 2_000_001
    assert len(out.stdout) == 1_000_000


def test_threads_do_not_leak_output_into_each_other():
    repls = [InProcessREPL(f"ctx{i}", HOST) for i in range(4)]
    outputs = {}

    def work(i):
        outputs[i] = repls[i].run(f"for n in range(300):\n    print('repl{i}', n)").stdout

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        lines = outputs[i].splitlines()
        assert lines == [f"repl{i} {n}" for n in range(300)]
        repls[i].close()


def test_each_repl_writes_relative_files_in_its_own_workdir():
    cwd = os.getcwd()
    a, b = InProcessREPL("", HOST), InProcessREPL("", HOST)
    try:
        a.run("open('note.txt', 'w').write('A')")
        b.run("open('note.txt', 'w').write('B')")
        assert open(os.path.join(a.workdir, "note.txt")).read() == "A"
        assert open(os.path.join(b.workdir, "note.txt")).read() == "B"
        assert os.getcwd() == cwd
    finally:
        a.close(), b.close()


def test_isolated_without_bwrap_says_how_to_install(monkeypatch):
    monkeypatch.setattr(repl_module.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        IsolatedREPL("", HOST)


@needs_bwrap
def test_isolated_refuses_network_that_the_host_reaches():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
    try:
        assert InProcessREPL("", HOST).run(code).stdout == "connected\n"
        sandbox = IsolatedREPL("", HOST)
        out = sandbox.run(code)
        sandbox.close()
        assert out.error is not None and ("ConnectionRefused" in out.error or "Network is unreachable" in out.error)
        assert "connected" not in out.stdout
    finally:
        listener.close()


@needs_bwrap
def test_isolated_cannot_write_outside_its_workdir(tmp_path):
    sandbox = IsolatedREPL("", HOST)
    target = tmp_path / "escape.txt"
    try:
        out = sandbox.run(f"open({str(target)!r}, 'w').write('x')")
        assert "Read-only file system" in out.error
        assert not target.exists()
        inside = sandbox.run("open('inside.txt', 'w').write('ok'); print(open('inside.txt').read())")
        assert inside.stdout == "ok\n"
    finally:
        sandbox.close()


@needs_bwrap
def test_isolated_memory_limit():
    sandbox = IsolatedREPL("", HOST, memory_limit_mb=512)
    try:
        assert "MemoryError" in sandbox.run("block = bytearray(1024 ** 3)").error
        assert sandbox.run("print('ok')").stdout == "ok\n"
    finally:
        sandbox.close()


class RemoteText:
    """A str-like object that is not a builtin: the sandbox must read it through the host."""

    def __init__(self, text):
        self.text = text
        self.reads = 0

    def __len__(self):
        return len(self.text)

    def __getitem__(self, key):
        self.reads += 1
        return self.text[key]

    def find(self, needle):
        return self.text.find(needle)


@needs_bwrap
def test_isolated_context_that_is_not_builtin_is_proxied_to_the_host():
    context = RemoteText("alpha beta gamma")
    sandbox = IsolatedREPL(context, {**HOST, "echo": lambda value: f"{type(value).__name__} of {len(value)}"})
    try:
        out = sandbox.run("print(len(context), context[6:10], context.find('gamma'))")
        assert out.stdout == "16 beta 11\n"
        assert context.reads == 1
        assert "AttributeError" in sandbox.run("context._private").error
        assert sandbox.run("print(echo(context))").stdout == "RemoteText of 16\n"  # passed back as the host's object
    finally:
        sandbox.close()


@needs_bwrap
def test_isolated_worker_that_dies_is_restarted_and_says_so():
    sandbox = IsolatedREPL("", HOST)
    try:
        sandbox.run("kept = 1")
        out = sandbox.run("import os\nos._exit(3)")
        assert out.error.startswith("SandboxCrashed") and "variables were lost" in out.error
        assert sandbox.run("print('back')").stdout == "back\n"
        assert sandbox.lookup("kept") == (False, "")
    finally:
        sandbox.close()


def test_a_bwrap_that_refuses_is_reported_with_its_message(tmp_path, monkeypatch):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(repl_module.shutil, "which", lambda name: str(fake))
    with pytest.raises(SandboxUnavailable, match="No permissions to creating new namespace"):
        IsolatedREPL("", HOST)
