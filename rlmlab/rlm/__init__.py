"""The RLM engine: the loop, its REPLs, and how replies are read. `from rlmlab.rlm import RLM`."""

from __future__ import annotations


def __getattr__(name: str):
    if name in ("RLM", "Result", "CellRecord"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'rlmlab.rlm' has no attribute {name!r}")
