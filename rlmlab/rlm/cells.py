"""Running one REPL cell in a persistent namespace: shared by the in-process and sandboxed REPLs.

Standard library only: the sandbox worker loads this file directly, without the package.
What a cell may do beyond plain Python is here: `FINAL(answer)`, `FINAL_VAR(name)`, the
newer reference's `answer = {"content": ..., "ready": True}`, `SHOW_VARS()`, and a last
expression echoed like a notebook. Tracebacks are trimmed to the cell's own frames.
"""

from __future__ import annotations

import ast
import builtins
import linecache
import os
import traceback

OUTPUT_CAP_CHARS = 1_000_000  # kept per cell; the root sees far less, and a print loop must not fill memory
HOST_NAMES = ("context", "llm_query", "llm_query_batched", "rlm_query", "rlm_query_batched")


class CellTimeout(BaseException):
    """Raised inside a cell that ran past its time limit (BaseException: `except Exception` won't eat it)."""


class CappedBuffer:
    """A text stream that keeps the first OUTPUT_CAP_CHARS and counts everything written."""

    def __init__(self, cap: int = OUTPUT_CAP_CHARS):
        self.cap, self.total, self._parts, self._kept = cap, 0, [], 0

    def write(self, text: str) -> int:
        text = str(text)
        self.total += len(text)
        if self._kept < self.cap:
            piece = text[: self.cap - self._kept]
            self._parts.append(piece)
            self._kept += len(piece)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> str:
        return "".join(self._parts)


class Namespace:
    """Variables that persist across cells, plus the functions a cell can call."""

    def __init__(self, context, host_functions: dict, workdir: str):
        self.workdir = workdir
        self.final: str | None = None
        self.cells = 0
        self._host = {"context": context, **host_functions}
        self.globals: dict = {"__name__": "__repl__", "__builtins__": builtins}
        self.globals.update(
            FINAL=self._final_answer,
            FINAL_VAR=self._final_var,
            SHOW_VARS=self.variables,
            open=self._open,
            answer={"content": "", "ready": False},
        )
        self.globals.update(self._host)

    # -- what a cell can call ------------------------------------------------------------
    def _final_answer(self, value) -> None:
        self.final = str(value)

    def _final_var(self, name) -> None:
        name = str(name).strip().strip("'\"`")
        if name not in self.globals:
            print(f"FINAL_VAR: no variable named {name!r} exists; assign it first, then call FINAL_VAR again.",
                  file=_stderr())
            return
        self.final = str(self.globals[name])

    def _open(self, file, *args, **kwargs):
        """`open` with relative paths inside this REPL's work dir: no process-wide chdir, no races."""
        if isinstance(file, (str, bytes, os.PathLike)) and not os.path.isabs(os.fsdecode(file)):
            file = os.path.join(self.workdir, os.fsdecode(file))
        return open(file, *args, **kwargs)

    def variables(self) -> list[str]:
        hidden = {"FINAL", "FINAL_VAR", "SHOW_VARS", "open", "__name__", "__builtins__", *HOST_NAMES}
        if self.globals.get("answer") == {"content": "", "ready": False}:
            hidden.add("answer")  # the untouched protocol dict is scaffolding, not the model's variable
        return sorted(name for name in self.globals if name not in hidden and not name.startswith("_"))

    def lookup(self, name: str) -> tuple[bool, str]:
        """(found, str(value)) for FINAL_VAR written in the reply's prose."""
        if name in self.globals and name not in self._host:
            return True, str(self.globals[name])
        return False, ""

    # -- running a cell ------------------------------------------------------------------
    def execute(self, code: str) -> str | None:
        """Run `code`; print its last expression's value; return the error text, if any.

        Output goes to whatever sys.stdout / sys.stderr mean for the calling thread.
        """
        self.cells += 1
        filename = f"<cell {self.cells}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        try:
            tree = ast.parse(code, filename, "exec")
            echo = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, filename, "exec"), self.globals)
            if echo is not None:
                value = eval(compile(ast.Expression(echo.value), filename, "eval"), self.globals)
                if value is not None:
                    print(repr(value))
            error = None
        except CellTimeout:
            error = "CellTimeout: the cell ran past its time limit and was interrupted"
        except BaseException as exc:  # everything the model's code raises goes back to it as text
            error = _format_error(exc, filename)
        finally:
            self.globals.update(self._host)  # `context = ...` or `llm_query = ...` must not stick
        self._check_answer_dict()
        return error

    def _check_answer_dict(self) -> None:
        answer = self.globals.get("answer")
        if self.final is None and isinstance(answer, dict) and answer.get("ready"):
            self.final = str(answer.get("content", ""))
            answer["ready"] = False  # consumed: one signal ends one run

    def take_final(self) -> str | None:
        final, self.final = self.final, None
        return final


def _stderr():
    import sys

    return sys.stderr


def _format_error(exc: BaseException, filename: str) -> str:
    """The traceback from the cell's first frame on: the REPL's own frames tell the model nothing."""
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
