"""Storage costs: request fees and egress add up as the price table says."""

from __future__ import annotations

import pytest

from rlmlab.storage_pricing import STORAGE_PRICES, storage_costs


def test_a_thousand_gets_cost_the_listed_price():
    assert STORAGE_PRICES["s3-in-region"].cost(gets=1000) == pytest.approx(0.0004)
    assert STORAGE_PRICES["r2"].cost(gets=1_000_000) == pytest.approx(0.36)
    assert STORAGE_PRICES["r2"].cost(puts=1_000_000) == pytest.approx(4.50)


def test_egress_is_charged_only_where_the_store_charges_it():
    costs = storage_costs(gets=0, bytes_out=2_000_000_000)
    assert costs["cost_usd_s3-internet"] == pytest.approx(0.18)
    assert costs["cost_usd_s3-in-region"] == 0 and costs["cost_usd_r2"] == 0


def test_every_price_says_where_and_when_it_was_read():
    for price in STORAGE_PRICES.values():
        assert price.source.startswith("https://") and price.as_of
