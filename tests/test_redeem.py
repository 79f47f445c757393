"""The provider's payment book and batch redeemer against a real deployment (eth-tester)."""

from __future__ import annotations

from pathlib import Path

from conftest import PRICE, Market

from flownet.chain.deploy import TOKEN_UNIT
from flownet.core.pricing import GIB
from flownet.core.receipts import Receipt
from flownet.tunnel.book import PaymentBook
from flownet.tunnel.payment import ReceiptSigner, domain_separator, recover_signer
from flownet.tunnel.redeem import Redeemer

DEPOSIT = 100 * TOKEN_UNIT
DAY = 86_400


def _signed(market: Market, order: object, gib: int) -> tuple[Receipt, bytes]:
    signer = ReceiptSigner(bytes(market.client.account.key), market.client.domain)
    receipt = order.receipt_for(gib * GIB)  # type: ignore[attr-defined]
    return receipt, signer.sign(receipt)


def test_tunnel_signatures_equal_the_sdk_and_recover_the_client(market: Market) -> None:
    order, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    receipt, signature = _signed(market, order, 3)
    assert signature == market.client.sign_receipt(order, 3 * GIB).signature
    assert recover_signer(domain_separator(market.client.domain), receipt, signature) == market.client.address


def test_redeemer_batches_due_receipts_and_skips_small_ones(market: Market, tmp_path: Path) -> None:
    provider, client = market.provider, market.client
    orders = [client.open_order(provider.address, DEPOSIT, DAY, PRICE)[0] for _ in range(3)]
    book = PaymentBook(tmp_path / "payments.sqlite")
    for order, gib in zip(orders, (2, 3, 0), strict=True):
        if gib:
            book.record(order, *_signed(market, order, gib))
    small, _ = client.open_order(provider.address, DEPOSIT, DAY, PRICE)
    book.record(small, *_signed(market, small, 1))  # 1 GiB = 2 FLOW: below the 3 FLOW threshold

    redeemer = Redeemer(book, provider, threshold=3 * TOKEN_UNIT)
    assert {s.order.nonce for s in redeemer.due()} == {orders[0].nonce, orders[1].nonce}  # 4 and 6 FLOW
    before = provider.balance()
    assert redeemer.redeem() == 5 * PRICE
    assert redeemer.transactions == 1  # one redeemMany for both
    assert provider.balance() - before == 5 * PRICE
    assert [client.order_state(o)[0] for o in orders[:2]] == [2 * PRICE, 3 * PRICE]
    assert [s.order.nonce for s in book.outstanding()] == [small.nonce]
    assert redeemer.redeem() == 0  # nothing new is due

    # Shutdown redeems everything outstanding, however small; a later receipt adds only its increase.
    assert redeemer.redeem(force=True) == PRICE
    book.record(orders[0], *_signed(market, orders[0], 4))
    assert redeemer.redeem(force=True) == 2 * PRICE
    assert client.order_state(orders[0])[0] == 4 * PRICE
    book.close()

    reopened = PaymentBook(tmp_path / "payments.sqlite")  # the book survives a restart
    latest = reopened.latest(orders[0].order_id)
    assert latest is not None and latest.receipt.cumulative_amount == 4 * PRICE and latest.outstanding == 0
    reopened.close()


def test_an_ending_order_is_redeemed_below_the_threshold(market: Market, tmp_path: Path) -> None:
    order, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    book = PaymentBook(tmp_path / "payments.sqlite")
    book.record(order, *_signed(market, order, 1))
    far = Redeemer(book, market.provider, threshold=50 * TOKEN_UNIT)
    assert far.due() == []
    near = Redeemer(book, market.provider, threshold=50 * TOKEN_UNIT, clock=lambda: order.expiry - 60.0)
    assert [s.order.nonce for s in near.due()] == [order.nonce]  # expires within the 600 s margin
    assert near.redeem() == PRICE


def test_a_dead_receipt_is_settled_from_the_chain_not_retried_forever(market: Market, tmp_path: Path) -> None:
    provider, client = market.provider, market.client
    good, _ = client.open_order(provider.address, DEPOSIT, DAY, PRICE)
    dead, _ = client.open_order(provider.address, DEPOSIT, DAY, PRICE)
    book = PaymentBook(tmp_path / "payments.sqlite")
    book.record(good, *_signed(market, good, 2))
    book.record(dead, *_signed(market, dead, 2))
    client.close(dead, 0, provider.sign_close(dead, 0))  # closed by agreement: the receipt can no longer pay
    redeemer = Redeemer(book, provider, threshold=0)
    assert redeemer.redeem() == 2 * PRICE  # the batch reverts; one by one, the good one pays
    assert client.order_state(good)[0] == 2 * PRICE
    assert book.outstanding() == []  # the dead one is marked settled after reading its state
