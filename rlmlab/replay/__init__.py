"""Record whole RLM runs as cassettes and replay them under other storage policies and latencies.

    from rlmlab.replay import record, replay
    record(rlm, context, "question", "run.jsonl")           # or RLM(..., record_to="run.jsonl")
    result = replay("run.jsonl", "s3://bucket/ctx", fetch="parallel", prefetch="adaptive", latency="zero")
    result.divergences, result.timing()

The package itself is callable too: `import rlmlab.replay; rlmlab.replay(cassette, uri)`.
"""

import sys
import types

from .book import Divergence
from .cassette import Cassette, CassetteError, CassetteWriter, Cell, Final, Header, LLMCall, read_cassette
from .importers import import_rlms_log
from .latency import LATENCY_MODELS, parse_latency
from .record import Recorder, record
from .replay import ReplayResult, replay

__all__ = [
    "LATENCY_MODELS",
    "Cassette",
    "CassetteError",
    "CassetteWriter",
    "Cell",
    "Divergence",
    "Final",
    "Header",
    "LLMCall",
    "Recorder",
    "ReplayResult",
    "import_rlms_log",
    "parse_latency",
    "read_cassette",
    "record",
    "replay",
]


class _CallablePackage(types.ModuleType):
    """Lets `rlmlab.replay(...)` (as the issue spells it) mean `rlmlab.replay.replay(...)`."""

    def __call__(self, *args, **kwargs) -> ReplayResult:
        return replay(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
