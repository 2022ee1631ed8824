"""Dollars per storage request and per byte read, so read policies get a cost next to their time.

A policy that reads 100 MB as 1001 GETs pays 1001 request fees; one that reads it as 7 pays 7.
Each row says where its prices come from and when they were read. The table was written
offline from the figures in the project's guide (section 3), without access to the live
pages: re-check a row against its source before quoting a cost, and fix it here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoragePrice:
    """USD per 1,000 GETs, per 1,000 PUTs, and per GB sent out of the store."""

    get_per_1k: float
    put_per_1k: float
    egress_per_gb: float
    as_of: str
    source: str

    def cost(self, *, gets: int = 0, puts: int = 0, bytes_out: int = 0) -> float:
        return gets * self.get_per_1k / 1000 + puts * self.put_per_1k / 1000 + bytes_out / 1e9 * self.egress_per_gb


_AS_OF = "2026-11 (project guide, not re-checked offline)"

STORAGE_PRICES: dict[str, StoragePrice] = {
    # S3 Standard, read from inside the bucket's region: requests only, no transfer fee
    "s3-in-region": StoragePrice(0.0004, 0.005, 0.0, _AS_OF, "https://aws.amazon.com/s3/pricing/"),
    # S3 Standard, read over the internet (a laptop, another cloud): requests plus egress
    "s3-internet": StoragePrice(0.0004, 0.005, 0.09, _AS_OF, "https://aws.amazon.com/s3/pricing/"),
    # Cloudflare R2: Class B (reads) $0.36 and Class A (writes) $4.50 per million, no egress fee
    "r2": StoragePrice(0.00036, 0.0045, 0.0, _AS_OF, "https://developers.cloudflare.com/r2/pricing/"),
}


def storage_costs(*, gets: int, bytes_out: int, puts: int = 0) -> dict[str, float]:
    """`{"cost_usd_<store>": dollars}` for every priced store: columns for a results row."""
    return {f"cost_usd_{name}": price.cost(gets=gets, puts=puts, bytes_out=bytes_out) for name, price in STORAGE_PRICES.items()}
