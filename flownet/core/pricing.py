"""Pricing rules of the bandwidth market, mirroring ``contracts/libraries/Pricing.sol`` exactly."""

from __future__ import annotations

__all__ = ["BPS", "GIB", "cost_of", "lock_for"]

#: Bytes in one GiB, the unit prices are quoted in.
GIB = 1 << 30
#: Basis points in one whole.
BPS = 10_000


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def cost_of(cumulative_bytes: int, price_per_gib: int) -> int:
    """The most a client can owe for `cumulative_bytes` at `price_per_gib`, rounded up.

    >>> cost_of(GIB, 2 * 10**18)
    2000000000000000000
    >>> cost_of(1, 1)
    1
    """
    if cumulative_bytes < 0 or price_per_gib < 0:
        raise ValueError(f"bytes and price must be non-negative (not {cumulative_bytes}, {price_per_gib})")
    return _ceil_div(cumulative_bytes * price_per_gib, GIB)


def lock_for(deposit: int, lock_bps: int) -> int:
    """Provider stake an order of `deposit` locks at `lock_bps` basis points, rounded up."""
    if deposit < 0 or not 0 <= lock_bps <= BPS:
        raise ValueError(f"deposit must be >= 0 and lock_bps in 0..{BPS} (not {deposit}, {lock_bps})")
    return _ceil_div(deposit * lock_bps, BPS)
