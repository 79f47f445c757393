"""Tunnel metering: counts, credit window, receipt acceptance and signature shape checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flownet.core.pricing import GIB, cost_of
from flownet.core.receipts import Order, Receipt
from flownet.errors import ReceiptError
from flownet.tunnel.meter import SECP256K1_N, OrderMeter, has_valid_v, is_low_s

FAST = settings(max_examples=300, deadline=200)
CLIENT = "0x" + "11" * 20
PROVIDER = "0x" + "22" * 20
PRICE = 2 * 10**18  # 2 FLOW per GiB
ORDER = Order(nonce=1, client=CLIENT, provider=PROVIDER, deposit=10 * 10**18, price_per_gib=PRICE, expiry=10**9)
OTHER = Order(nonce=2, client=CLIENT, provider=PROVIDER, deposit=10 * 10**18, price_per_gib=PRICE, expiry=10**9)


def sig(s: int, v: int = 27, r: int = 1) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,))


# --- signature shape ----------------------------------------------------------------------------


def test_low_s_boundaries() -> None:
    half = SECP256K1_N // 2
    assert is_low_s(sig(1))
    assert is_low_s(sig(half))
    assert not is_low_s(sig(half + 1))
    assert not is_low_s(sig(SECP256K1_N - 1))
    assert not is_low_s(sig(0))
    assert not is_low_s(sig(1)[:64])
    assert not is_low_s(sig(1) + b"\x00")


@pytest.mark.parametrize(("v", "ok"), [(27, True), (28, True), (0, False), (1, False), (29, False), (255, False)])
def test_v_values(v: int, ok: bool) -> None:
    assert has_valid_v(sig(1, v)) is ok


def test_v_needs_65_bytes() -> None:
    assert not has_valid_v(b"\x1b")
    assert not has_valid_v(sig(1) + b"\x1b")


@FAST
@given(s=st.integers(0, (1 << 256) - 1), v=st.integers(0, 255))
def test_signature_shape_properties(s: int, v: int) -> None:
    raw = sig(s, v)
    assert is_low_s(raw) == (s > 0 and 2 * s < SECP256K1_N)
    assert has_valid_v(raw) == (v in (27, 28))


# --- counting and credit ------------------------------------------------------------------------


def test_fresh_meter() -> None:
    meter = OrderMeter.for_order(ORDER)
    assert meter.order_id == ORDER.order_id
    assert (meter.bytes_up, meter.bytes_down, meter.total_bytes, meter.unpaid_bytes) == (0, 0, 0, 0)
    assert meter.owed_amount(PRICE) == 0
    assert meter.accepted is None
    assert not meter.should_pause(1)
    assert meter.should_pause(0)


def test_counts_are_immutable_updates() -> None:
    meter = OrderMeter.for_order(ORDER)
    after = meter.add_up(100).add_down(400)
    assert meter.total_bytes == 0
    assert (after.bytes_up, after.bytes_down, after.total_bytes, after.unpaid_bytes) == (100, 400, 500, 500)
    assert after.owed_amount(PRICE) == cost_of(500, PRICE)
    assert after.owed_amount(GIB) == 500


def test_invalid_counts() -> None:
    meter = OrderMeter.for_order(ORDER)
    with pytest.raises(ValueError):
        meter.add_up(-1)
    with pytest.raises(ValueError):
        meter.add_down(-1)
    with pytest.raises(ValueError):
        meter.should_pause(-1)
    with pytest.raises(ValueError):
        OrderMeter(b"short")


def test_credit_window() -> None:
    meter = OrderMeter.for_order(ORDER).add_down(999)
    assert not meter.should_pause(1000)
    assert meter.add_up(1).should_pause(1000)
    paid = meter.add_up(1).accept_receipt(ORDER.receipt_for(600), ORDER)
    assert paid.unpaid_bytes == 400
    assert not paid.should_pause(1000)
    assert paid.owed_amount(PRICE) == cost_of(1000, PRICE) - cost_of(600, PRICE)


# --- receipts -----------------------------------------------------------------------------------


def test_accept_receipts_in_order() -> None:
    meter = OrderMeter.for_order(ORDER).add_down(GIB)
    first = meter.accept_receipt(ORDER.receipt_for(GIB // 2), ORDER)
    assert first.paid_amount == PRICE // 2 and first.paid_bytes == GIB // 2
    second = first.accept_receipt(ORDER.receipt_for(GIB), ORDER)
    assert second.paid_amount == PRICE
    assert second.unpaid_bytes == 0 and second.owed_amount(PRICE) == 0


def test_receipt_over_bytes_metered_is_accepted() -> None:
    # A client may acknowledge more than the provider counted (e.g. bytes in flight): never negative.
    meter = OrderMeter.for_order(ORDER).add_down(10).accept_receipt(ORDER.receipt_for(GIB), ORDER)
    assert meter.unpaid_bytes == 0 and meter.owed_amount(PRICE) == 0


@pytest.mark.parametrize(
    ("receipt", "order", "text"),
    [
        (OTHER.receipt_for(GIB), OTHER, "not this meter's order"),
        (OTHER.receipt_for(GIB), ORDER, "receipt is for order"),
        (Receipt(ORDER.order_id, GIB, PRICE + 1), ORDER, "more than"),
        (Receipt(ORDER.order_id, 1, cost_of(1, PRICE) + 1), ORDER, "more than"),
        (Receipt(ORDER.order_id, 100 * GIB, ORDER.deposit + 1), ORDER, "exceeds the deposit"),
        (Receipt(ORDER.order_id, GIB, 0), ORDER, "not more than the 0"),
    ],
)
def test_receipt_refused(receipt: Receipt, order: Order, text: str) -> None:
    with pytest.raises(ReceiptError, match=text):
        OrderMeter.for_order(ORDER).accept_receipt(receipt, order)


def test_receipt_rounding_rule() -> None:
    # amount <= ceil(bytes * price / 2**30): one byte at 1 unit per GiB may cost 1, not 2.
    cheap = Order(nonce=3, client=CLIENT, provider=PROVIDER, deposit=100, price_per_gib=1, expiry=1)
    meter = OrderMeter.for_order(cheap)
    assert meter.accept_receipt(Receipt(cheap.order_id, 1, 1), cheap).paid_amount == 1
    with pytest.raises(ReceiptError):
        meter.accept_receipt(Receipt(cheap.order_id, 1, 2), cheap)


def test_receipts_must_grow() -> None:
    meter = OrderMeter.for_order(ORDER).accept_receipt(ORDER.receipt_for(GIB), ORDER)
    with pytest.raises(ReceiptError, match="not more than"):
        meter.accept_receipt(ORDER.receipt_for(GIB), ORDER)
    with pytest.raises(ReceiptError, match="not more than"):
        meter.accept_receipt(ORDER.receipt_for(GIB // 2), ORDER)
    # An under-priced receipt for many bytes, then a larger amount for fewer bytes: bytes went backwards.
    cheap = OrderMeter.for_order(ORDER).accept_receipt(Receipt(ORDER.order_id, GIB, 1), ORDER)
    with pytest.raises(ReceiptError, match="fewer than"):
        cheap.accept_receipt(Receipt(ORDER.order_id, GIB // 2, 2), ORDER)


@FAST
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 4 * GIB), st.integers(0, 4 * GIB), st.integers(0, 12 * GIB), st.integers(0, 20)),
        max_size=12,
    ),
    window=st.integers(0, 8 * GIB),
)
def test_meter_invariants(steps: list[tuple[int, int, int, int]], window: int) -> None:
    meter = OrderMeter.for_order(ORDER)
    for up, down, ack_bytes, shave in steps:
        meter = meter.add_up(up).add_down(down)
        receipt = Receipt(ORDER.order_id, ack_bytes, max(0, ORDER.max_amount(ack_bytes) - shave))
        before = meter
        try:
            meter = meter.accept_receipt(receipt, ORDER)
        except ReceiptError:
            assert meter == before
        else:
            # Accepted receipts follow the contract's rules and only ever grow.
            assert receipt.cumulative_amount > before.paid_amount
            assert receipt.cumulative_bytes >= before.paid_bytes
            assert receipt.cumulative_amount <= min(ORDER.deposit, cost_of(receipt.cumulative_bytes, PRICE))
        assert meter.unpaid_bytes == max(0, meter.total_bytes - meter.paid_bytes)
        assert meter.owed_amount(PRICE) >= 0
        assert meter.should_pause(window) == (meter.unpaid_bytes >= window)
        assert meter.paid_amount <= ORDER.deposit
