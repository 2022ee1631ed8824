"""Dollars per million tokens, per model, with where and when each price was read.

Costs in a trace are only as good as this table, so every row carries its source and
`as_of`, the date the provider published that price (the model's launch or its last price
change known when the table was written). The table was written offline, without access
to the live pages: prices change, so re-check a row against its source before quoting a
cost, and fix an outdated row here, in one place.

Usage → dollars: uncached input at `input`, cached input at `cached_input`, output at
`output`. Anthropic's cache *writes* (billed at 1.25× input) are counted as plain input.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """USD per million tokens for one model."""

    input: float
    output: float
    cached_input: float
    as_of: str
    source: str

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        uncached = max(input_tokens - cached_tokens, 0)
        return (uncached * self.input + cached_tokens * self.cached_input + output_tokens * self.output) / 1e6


OPENAI_PRICES = "https://openai.com/api/pricing/"
ANTHROPIC_PRICES = "https://docs.anthropic.com/en/docs/about-claude/pricing"

PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00, 0.125, "2025-08-07", OPENAI_PRICES),
    "gpt-5-mini": Price(0.25, 2.00, 0.025, "2025-08-07", OPENAI_PRICES),
    "gpt-5-nano": Price(0.05, 0.40, 0.005, "2025-08-07", OPENAI_PRICES),
    "gpt-4.1": Price(2.00, 8.00, 0.50, "2025-04-14", OPENAI_PRICES),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10, "2025-04-14", OPENAI_PRICES),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025, "2025-04-14", OPENAI_PRICES),
    "gpt-4o": Price(2.50, 10.00, 1.25, "2024-10-01", OPENAI_PRICES),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075, "2024-10-01", OPENAI_PRICES),
    "claude-opus-4-5": Price(5.00, 25.00, 0.50, "2025-11-24", ANTHROPIC_PRICES),
    "claude-opus-4-1": Price(15.00, 75.00, 1.50, "2025-08-05", ANTHROPIC_PRICES),
    "claude-sonnet-4-5": Price(3.00, 15.00, 0.30, "2025-09-29", ANTHROPIC_PRICES),
    "claude-sonnet-4": Price(3.00, 15.00, 0.30, "2025-05-22", ANTHROPIC_PRICES),
    "claude-haiku-4-5": Price(1.00, 5.00, 0.10, "2025-10-15", ANTHROPIC_PRICES),
    "claude-3-5-haiku": Price(0.80, 4.00, 0.08, "2024-11-04", ANTHROPIC_PRICES),
}


def price_for(model: str) -> Price | None:
    """The price of `model`, matching dated or prefixed names to the longest known key.

    "gpt-5-mini-2025-08-07" → gpt-5-mini; "openai/gpt-5" → gpt-5. None when unknown.
    """
    name = model.rsplit("/", 1)[-1].lower()
    matches = [key for key in PRICES if name == key or name.startswith(key + "-")]
    return PRICES[max(matches, key=len)] if matches else None
