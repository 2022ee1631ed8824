"""rlmlab: Recursive Language Models over contexts that live in object storage.

The top-level names are imported on first use, so `import rlmlab` stays fast and a
command that needs only the stores does not pay for the engine or the SDKs.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "open_context": "rlmlab.context",
    "Context": "rlmlab.context",
    "write_context": "rlmlab.layout",
    "write_monocontext": "rlmlab.layout",
    "load_manifest": "rlmlab.layout",
    "Manifest": "rlmlab.layout",
    "open_store": "rlmlab.stores",
    "S3Server": "rlmlab.sim",
    "Trace": "rlmlab.trace",
    "RLM": "rlmlab.rlm.engine",
    "Result": "rlmlab.rlm.engine",
}

# Subpackages reachable as attributes; `rlmlab.replay(cassette, uri)` calls the replay package.
_SUBPACKAGES = {"replay", "sim", "plots", "transcripts", "policies", "trace"}

__all__ = sorted([*_EXPORTS, *_SUBPACKAGES])


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"rlmlab.{name}")
    raise AttributeError(f"module 'rlmlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
