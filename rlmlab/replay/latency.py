"""How long each replayed model call takes: recorded, zero, scaled, or fitted.

A replay answers model calls from the cassette, so their latency is a choice: what the
call took when recorded (`recorded`), nothing (`zero`, to measure the engine and storage
alone), a multiple (`scale:K`, "what if the model were twice as fast"), or a fresh sample
from a per-model lognormal fitted to the recorded calls (`fitted` or `fitted:SEED`).
Each model is a small class registered by name, parsed from the CLI string.
"""

from __future__ import annotations

import math
import random
import statistics

from .cassette import Cassette, LLMCall

_MIN_LATENCY_S = 1e-4  # log() needs a positive number; a recorded 0 means "faster than measured"


class LatencyModel:
    """Maps a recorded call to the seconds its replay should take."""

    name: str = ""

    def delay(self, call: LLMCall) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Recorded(LatencyModel):
    """Each call takes what it took when it was recorded."""

    name = "recorded"

    def delay(self, call: LLMCall) -> float:
        return max(call.latency_s, 0.0)


class Zero(LatencyModel):
    """No model time at all: what is left is engine, REPL and storage time."""

    name = "zero"

    def delay(self, call: LLMCall) -> float:
        return 0.0


class Scaled(LatencyModel):
    """Recorded latency times a factor K."""

    name = "scale"

    def __init__(self, factor: float):
        if not (factor >= 0 and math.isfinite(factor)):
            raise ValueError(f"latency scale factor must be a finite number >= 0, got {factor!r}")
        self.factor = factor

    def delay(self, call: LLMCall) -> float:
        return max(call.latency_s, 0.0) * self.factor

    def __repr__(self) -> str:
        return f"Scaled({self.factor})"


class Fitted(LatencyModel):
    """Per model, a lognormal fitted to that model's recorded latencies, sampled with a seed.

    Each call's sample is drawn from an RNG seeded by (seed, call seq), so a replay is
    reproducible even when a batch's calls arrive in a different order.
    """

    name = "fitted"

    def __init__(self, cassette: Cassette, seed: int = 0):
        self.seed = seed
        self.params: dict[str, tuple[float, float]] = {}
        by_model: dict[str, list[float]] = {}
        for call in cassette.calls:
            by_model.setdefault(call.model, []).append(math.log(max(call.latency_s, _MIN_LATENCY_S)))
        for model, logs in by_model.items():
            sigma = statistics.pstdev(logs) if len(logs) > 1 else 0.0
            self.params[model] = (statistics.fmean(logs), sigma)

    def delay(self, call: LLMCall) -> float:
        params = self.params.get(call.model)
        if params is None:
            raise KeyError(f"no recorded calls of model {call.model!r} to fit a latency to")
        mu, sigma = params
        return random.Random(f"{self.seed}:{call.seq}").lognormvariate(mu, sigma)

    def __repr__(self) -> str:
        return f"Fitted(seed={self.seed}, models={sorted(self.params)})"


LATENCY_MODELS: dict[str, type[LatencyModel]] = {m.name: m for m in (Recorded, Zero, Scaled, Fitted)}


def parse_latency(spec: str | LatencyModel, cassette: Cassette) -> LatencyModel:
    """Build a latency model from its CLI string: recorded | zero | scale:K | fitted[:SEED]."""
    if isinstance(spec, LatencyModel):
        return spec
    name, _, arg = spec.strip().partition(":")
    known = "recorded, zero, scale:K, fitted or fitted:SEED"
    if name not in LATENCY_MODELS:
        raise ValueError(f"unknown latency model {spec!r}; expected {known}")
    if name in ("recorded", "zero"):
        if arg:
            raise ValueError(f"latency model {name!r} takes no argument (got {spec!r})")
        return LATENCY_MODELS[name]()
    if name == "scale":
        try:
            factor = float(arg)
        except ValueError:
            raise ValueError(f"latency model {spec!r}: K in scale:K must be a number, e.g. scale:0.5") from None
        return Scaled(factor)
    try:
        seed = int(arg) if arg else 0
    except ValueError:
        raise ValueError(f"latency model {spec!r}: SEED in fitted:SEED must be an integer") from None
    return Fitted(cassette, seed=seed)
