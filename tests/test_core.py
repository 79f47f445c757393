"""Pure logic: pricing and receipts (no chain)."""

from __future__ import annotations

import pytest

from flownet.core.pricing import GIB, cost_of, lock_for
from flownet.core.receipts import Order, Receipt
from flownet.errors import ReceiptError

ORDER = Order(
    nonce=7,
    client="0x00000000000000000000000000000000000000c1",
    provider="0x00000000000000000000000000000000000000a1",
    deposit=10**20,
    price_per_gib=2 * 10**18,
    expiry=1_700_086_400,
)


def test_cost_of_rounds_up() -> None:
    assert cost_of(GIB, 3) == 3
    assert cost_of(1, 3) == 1
    assert cost_of(0, 3) == 0
    assert cost_of(GIB + 1, GIB) == GIB + 1
    assert cost_of(GIB // 2, 5) == 3
    with pytest.raises(ValueError, match="non-negative"):
        cost_of(-1, 1)


def test_lock_for_rounds_up() -> None:
    assert lock_for(100, 5_000) == 50
    assert lock_for(3, 5_000) == 2
    assert lock_for(1, 1) == 1
    assert lock_for(0, 10_000) == 0
    with pytest.raises(ValueError, match="lock_bps"):
        lock_for(1, 10_001)


def test_order_id_is_stable_and_binds_every_term() -> None:
    assert ORDER.order_id == Order(**ORDER.__dict__).order_id
    assert len(ORDER.order_id) == 32
    for field, value in [("nonce", 8), ("deposit", 10**20 + 1), ("price_per_gib", 1), ("expiry", 1)]:
        changed = Order(**{**ORDER.__dict__, field: value})
        assert changed.order_id != ORDER.order_id, field


def test_receipt_for_caps_at_deposit() -> None:
    assert ORDER.receipt_for(GIB).cumulative_amount == 2 * 10**18
    assert ORDER.receipt_for(1000 * GIB).cumulative_amount == ORDER.deposit


def test_receipt_checks() -> None:
    ORDER.receipt_for(3 * GIB).check_against(ORDER)
    with pytest.raises(ReceiptError, match="exceeds the deposit"):
        Receipt(ORDER.order_id, 100 * GIB, ORDER.deposit + 1).check_against(ORDER)
    with pytest.raises(ReceiptError, match="more than 1073741824 bytes cost"):
        Receipt(ORDER.order_id, GIB, 2 * 10**18 + 1).check_against(ORDER)
    other = Order(**{**ORDER.__dict__, "nonce": 8})
    with pytest.raises(ReceiptError, match="receipt is for order"):
        other.receipt_for(GIB).check_against(ORDER)
    with pytest.raises(ReceiptError, match="order id must be 32 bytes"):
        Receipt(b"\x01", 0, 0)
    with pytest.raises(ReceiptError, match="non-negative"):
        Receipt(ORDER.order_id, -1, 0)
