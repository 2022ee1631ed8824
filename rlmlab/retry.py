"""Retry timing for transient storage faults: capped exponential backoff with full jitter.

Full jitter (a uniform draw in [0, min(cap, base * 2**n))) spreads the retries of many
parallel readers apart, which is what lets a store that answered 503 SlowDown recover.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # total tries per GET, the first one included
    base_s: float = 0.05
    cap_s: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self):
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError(f"base_s and cap_s must be >= 0, got {self.base_s}, {self.cap_s}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        return self.rng.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))

    @classmethod
    def coerce(cls, retries: "RetryPolicy | int | None") -> "RetryPolicy":
        """`None` -> defaults, an int -> that many attempts, a RetryPolicy -> itself."""
        if retries is None:
            return cls()
        if isinstance(retries, RetryPolicy):
            return retries
        if isinstance(retries, int) and not isinstance(retries, bool):
            return cls(attempts=retries)
        raise TypeError(f"retries must be a RetryPolicy, an int or None, not {type(retries).__name__}")
