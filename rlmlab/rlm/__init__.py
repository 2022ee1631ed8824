"""The RLM engine: the loop, its REPLs, and how replies are read. `from rlmlab.rlm import RLM` (or `AgentRLM`)."""

from __future__ import annotations


def __getattr__(name: str):
    if name in ("RLM", "Result", "CellRecord"):
        from . import engine

        return getattr(engine, name)
    if name == "AgentRLM":  # needs the Claude Agent SDK: pip install 'rlmlab[agent]'
        from .agent import AgentRLM

        return AgentRLM
    raise AttributeError(f"module 'rlmlab.rlm' has no attribute {name!r}")
