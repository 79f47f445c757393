"""A market round on eth-tester and on anvil, with receipts signed in Python (eth-account EIP-712)."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import PRICE, Market
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from flownet.chain.deploy import TOKEN_UNIT
from flownet.chain.market import FlowNet, SignedReceipt, sign_receipt
from flownet.core.pricing import GIB, lock_for
from flownet.core.receipts import MarketDomain, Receipt
from flownet.errors import ConfigError, ReceiptError, TransactionFailed

DEPOSIT = 100 * TOKEN_UNIT
DAY = 24 * 3600


def test_python_digest_matches_contract(market: Market) -> None:
    order, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    receipt = order.receipt_for(5 * GIB)
    ours = encode_typed_data(full_message=receipt.typed_data(market.client.domain))
    digest_onchain = market.client.market.functions.receiptDigest(
        receipt.order_id, receipt.cumulative_bytes, receipt.cumulative_amount
    ).call()
    assert _hash_eip191_message(ours) == bytes(digest_onchain)


def test_market_round(market: Market) -> None:
    provider, client = market.provider, market.client
    client_before, provider_before = client.balance(), provider.balance()
    order, sent = client.open_order(provider.address, DEPOSIT, DAY, 3 * TOKEN_UNIT)
    assert order.price_per_gib == PRICE and order.deposit == DEPOSIT and order.client == client.address
    assert sent.gas_used > 0 and sent.tx_hash.startswith("0x")
    assert provider.staking.functions.stakeOf(provider.address).call()[1] == lock_for(DEPOSIT, 5_000)

    first = client.sign_receipt(order, 3 * GIB)
    second = client.sign_receipt(order, 7 * GIB)
    provider.redeem(first)
    provider.redeem(second)
    assert provider.balance() - provider_before == 14 * TOKEN_UNIT
    assert client.order_state(order) == (14 * TOKEN_UNIT, 1)

    client.close(order, 14 * TOKEN_UNIT, provider.sign_close(order, 14 * TOKEN_UNIT))
    assert client.order_state(order) == (14 * TOKEN_UNIT, 2)
    assert client_before - client.balance() == 14 * TOKEN_UNIT
    assert client.balance(client.market.address) == 0
    assert provider.staking.functions.stakeOf(provider.address).call()[1] == 0


def test_redeem_many_settles_several_orders(market: Market) -> None:
    provider, client = market.provider, market.client
    orders = [client.open_order(provider.address, DEPOSIT, DAY, PRICE)[0] for _ in range(3)]
    before = provider.balance()
    provider.redeem_many([client.sign_receipt(o, GIB) for o in orders])  # the provider accepts all three
    receipts = [client.sign_receipt(o, (i + 2) * GIB) for i, o in enumerate(orders)]
    market.stranger.redeem_many(receipts)  # later receipts anyone may submit; the provider is paid
    assert provider.balance() - before == (2 + 3 + 4) * PRICE
    assert [client.order_state(o)[0] for o in orders] == [2 * PRICE, 3 * PRICE, 4 * PRICE]


def test_payout_goes_to_provider_not_submitter(market: Market) -> None:
    order, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    market.provider.redeem(market.client.sign_receipt(order, GIB))
    stranger_before, provider_before = market.stranger.balance(), market.provider.balance()
    market.stranger.redeem(market.client.sign_receipt(order, 2 * GIB))
    assert market.stranger.balance() == stranger_before
    assert market.provider.balance() - provider_before == PRICE


def test_first_receipt_only_by_provider(market: Market) -> None:
    """The first redemption is the provider's acceptance: nobody else (the client's puppet included)
    can make an order uncancellable by paying a unit of it."""
    order, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    pin = market.client.sign_receipt(order, 1, 1)
    for who in (market.stranger, market.client):
        with pytest.raises(TransactionFailed) as excinfo:
            who.redeem(pin)
        assert excinfo.value.error == "MarketOrderNotAccepted"
        assert "only its provider" in str(excinfo.value) and who.address in str(excinfo.value)
    assert market.client.order_state(order) == (0, 1)
    market.provider.cancel(order)
    assert market.client.order_state(order) == (0, 2)


def test_cancel_refunds_deposit_and_unlocks_stake(market: Market) -> None:
    provider, client = market.provider, market.client
    client_before, provider_before = client.balance(), provider.balance()
    order, _ = client.open_order(provider.address, DEPOSIT, DAY, PRICE)
    assert provider.staking.functions.stakeOf(provider.address).call()[1] == lock_for(DEPOSIT, 5_000)
    until = market.w3.eth.get_block("latest")["timestamp"] + DAY
    sent = provider.cancel(order, refuse_until=until)
    assert sent.gas_used > 0
    assert client.order_state(order) == (0, 2)
    assert client.balance() == client_before, "the whole deposit came back"
    assert provider.balance() == provider_before, "the provider kept nothing"
    assert provider.staking.functions.stakeOf(provider.address).call()[1] == 0
    assert provider.refused_until(client.address) == until
    with pytest.raises(TransactionFailed) as excinfo:
        client.open_order(provider.address, DEPOSIT, DAY, PRICE)
    assert excinfo.value.error == "MarketClientRefused"
    assert f"refuses orders from {client.address}" in str(excinfo.value)
    provider.refuse(client.address, 0)
    assert provider.refused_until(client.address) == 0
    again, _ = client.open_order(provider.address, DEPOSIT, DAY, PRICE)
    provider.redeem(client.sign_receipt(again, GIB))
    with pytest.raises(TransactionFailed) as excinfo:
        provider.cancel(again)
    assert excinfo.value.error == "MarketOrderAccepted"
    with pytest.raises(TransactionFailed, match="MarketOrderNotOpen"):
        provider.cancel(order)
    with pytest.raises(ConfigError, match="only the order's provider"):
        client.cancel(again)


def _revert_reason(excinfo: pytest.ExceptionInfo[TransactionFailed]) -> str:
    return excinfo.value.reason


def test_forged_receipt_rejected(market: Market) -> None:
    order, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    forger = Account.create()
    forged = sign_receipt(forger, market.client.domain, order, order.receipt_for(GIB))
    with pytest.raises(TransactionFailed) as excinfo:
        market.provider.redeem(forged)
    assert _revert_reason(excinfo).startswith("MarketInvalidReceiptSignature(")
    # A genuine signature over different values does not verify either.
    genuine = market.client.sign_receipt(order, GIB)
    tampered = SignedReceipt(order, Receipt(order.order_id, 2 * GIB, 2 * PRICE), genuine.signature)
    with pytest.raises(TransactionFailed) as excinfo:
        market.provider.redeem(tampered)
    assert _revert_reason(excinfo).startswith("MarketInvalidReceiptSignature(")
    assert market.client.order_state(order) == (0, 1)


def test_replayed_receipt_rejected(market: Market) -> None:
    order, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    signed = market.client.sign_receipt(order, 2 * GIB)
    market.provider.redeem(signed)
    with pytest.raises(TransactionFailed) as excinfo:
        market.provider.redeem(signed)
    assert _revert_reason(excinfo).startswith("MarketReceiptNotNewer(")
    older = market.client.sign_receipt(order, GIB)
    with pytest.raises(TransactionFailed, match="MarketReceiptNotNewer"):
        market.provider.redeem(older)
    assert market.client.order_state(order)[0] == 2 * PRICE


def test_cross_order_receipt_rejected(market: Market) -> None:
    order_a, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    order_b, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    signed_a = market.client.sign_receipt(order_a, GIB)
    # A's signature presented as a receipt for B: the digest includes B's id, so it does not verify.
    as_b = SignedReceipt(order_b, dataclasses.replace(signed_a.receipt, order_id=order_b.order_id), signed_a.signature)
    with pytest.raises(TransactionFailed, match="MarketInvalidReceiptSignature"):
        market.provider.redeem(as_b)
    # A's id with B's terms: the terms do not hash to the id.
    mixed = SignedReceipt(order_b, signed_a.receipt, signed_a.signature)
    with pytest.raises(TransactionFailed, match="MarketTermsMismatch"):
        market.provider.redeem(mixed)
    assert market.client.order_state(order_b)[0] == 0


def test_receipt_for_other_domain_rejected(market: Market) -> None:
    order, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    receipt = order.receipt_for(GIB)
    for domain in (
        MarketDomain(market.client.domain.chain_id + 1, market.client.domain.market),
        MarketDomain(market.client.domain.chain_id, market.provider.token.address),
    ):
        signed = sign_receipt(market.client.account, domain, order, receipt)
        with pytest.raises(TransactionFailed, match="MarketInvalidReceiptSignature"):
            market.provider.redeem(signed)


def test_overpriced_receipt_rejected(market: Market) -> None:
    order, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    greedy = Receipt(order.order_id, GIB, PRICE + 1)
    with pytest.raises(ReceiptError, match="more than"):  # the SDK refuses to sign it
        sign_receipt(market.client.account, market.client.domain, order, greedy)
    # Signed anyway (bypassing the SDK), the contract refuses it too.
    raw = market.client.account.sign_message(encode_typed_data(full_message=greedy.typed_data(market.client.domain)))
    with pytest.raises(TransactionFailed) as excinfo:
        market.provider.redeem(SignedReceipt(order, greedy, bytes(raw.signature)))
    assert excinfo.value.error == "MarketAmountAbovePrice"
    assert excinfo.value.reason.endswith("amount=2000000000000000001, maxAmount=2000000000000000000)")
    assert str(excinfo.value).startswith("redeem failed: Market: amount 2.000000000000000001 FLOW for order 0x")
    assert str(excinfo.value).endswith("is more than the bytes cost (2 FLOW) [MarketAmountAbovePrice]")
    market.provider.redeem(market.client.sign_receipt(order, GIB))
    assert market.client.order_state(order)[0] == PRICE


def test_price_above_client_max_rejected(market: Market) -> None:
    with pytest.raises(TransactionFailed) as excinfo:
        market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE - 1)
    assert _revert_reason(excinfo) == (
        f"MarketPriceAboveMax(provider={market.provider.address}, price={PRICE}, maxPrice={PRICE - 1})"
    )


def test_open_order_with_permit(market: Market) -> None:
    newcomer = market.actor()
    newcomer.approve(newcomer.market.address, 0)
    deadline = market.w3.eth.get_block("latest")["timestamp"] + 3600
    order, sent = newcomer.open_order_with_permit(market.provider.address, DEPOSIT, DAY, PRICE, deadline)
    assert newcomer.order_state(order) == (0, 1)
    assert newcomer.balance(newcomer.market.address) == DEPOSIT
    assert sent.gas_used > 0


def test_sign_receipt_refuses_non_client(market: Market) -> None:
    order, _ = market.client.open_order(market.provider.address, DEPOSIT, DAY, PRICE)
    provider: FlowNet = market.provider
    with pytest.raises(Exception, match="only the order's client"):
        provider.sign_receipt(order, GIB)
