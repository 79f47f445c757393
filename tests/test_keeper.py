"""The provider's order keeper (issue 11, finding 6): idle orders with nothing paid are cancelled.

`IdlePolicy` alone, then `Keeper` against a real deployment and a real local index: a client locks the
provider's stake with an order it never uses; the keeper cancels exactly that order once it has been
idle long enough, refuses the client, and leaves alone every order that carries (or is owed) money.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import PRICE, Market
from ledger_helpers import index_once

from flownet.chain.deploy import TOKEN_UNIT
from flownet.core.cancellation import FOREVER, Cancellation, IdlePolicy, OrderActivity, refusal_end
from flownet.core.pricing import GIB, lock_for
from flownet.errors import ConfigError, TransactionFailed
from flownet.tunnel.book import PaymentBook
from flownet.tunnel.keeper import Keeper
from indexer.store import Ledger

DEPOSIT = 100 * TOKEN_UNIT
DAY = 86_400
IDLE = 600.0


def _activity(**changes: object) -> OrderActivity:
    fields: dict[str, object] = {
        "order_id": b"\x01" * 32,
        "client": "0x" + "c1" * 20,
        "paid": 0,
        "first_seen": 1_000.0,
        "has_receipt": False,
        "in_use": False,
    }
    fields.update(changes)
    return OrderActivity(**fields)  # type: ignore[arg-type]


def test_policy_cancels_only_idle_unpaid_unused_orders() -> None:
    policy = IdlePolicy(IDLE, refuse_for=DAY)
    idle = _activity()
    assert policy.decide(idle, 1_000 + IDLE - 1) is None, "not idle long enough"
    assert policy.decide(idle, 1_000 + IDLE) == Cancellation(idle.order_id, DAY)
    for busy in (_activity(paid=1), _activity(has_receipt=True), _activity(in_use=True)):
        assert policy.decide(busy, 10**9) is None, busy
    assert IdlePolicy(IDLE).decide(idle, 10**6) == Cancellation(idle.order_id, 0), "no refusal"
    assert IdlePolicy(0, refuse_for=DAY).decide(idle, 10**9) is None, "0 turns the keeper off"
    assert refusal_end(1_700_000_000, DAY) == 1_700_000_000 + DAY
    assert refusal_end(1_700_000_000, 0) == 0, "no refusal"
    assert refusal_end(1_700_000_000, FOREVER - 1) == FOREVER, "clamped to the largest uint64"
    with pytest.raises(ConfigError, match="not -1"):
        IdlePolicy(-1)
    with pytest.raises(ConfigError, match="refusal length"):
        IdlePolicy(IDLE, refuse_for=-5)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Index:
    """A fresh local index of the chain on every refresh (the provider's indexer thread, in one call)."""

    def __init__(self, market: Market, directory: Path) -> None:
        self.market = market
        self.directory = directory
        self.count = 0

    def refresh(self) -> Path:
        self.count += 1
        path = self.directory / f"index-{self.count}.db"
        deployment = self.market.deployment
        ledger = Ledger(path, deployment.addresses, deployment.chain_id)
        index_once(self.market.w3, deployment, ledger)
        ledger.close()
        return path


@pytest.mark.parametrize("w3", ["anvil"], indirect=True)
def test_keeper_cancels_the_idle_order_and_nothing_else(
    market: Market, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    provider, client, stranger = market.provider, market.client, market.stranger
    griefer = market.actor()
    idle, _ = griefer.open_order(provider.address, 400 * TOKEN_UNIT, 30 * DAY, PRICE)  # locks 200 FLOW
    booked, _ = client.open_order(provider.address, DEPOSIT, DAY, PRICE)  # served: a receipt in the book
    streaming, _ = stranger.open_order(provider.address, DEPOSIT, DAY, PRICE)  # in use by the tunnel
    accepted, _ = client.open_order(provider.address, DEPOSIT, DAY, PRICE)
    provider.redeem(client.sign_receipt(accepted, GIB))  # accepted: paid on chain
    book = PaymentBook(tmp_path / "payments.sqlite")
    signed = client.sign_receipt(booked, 2 * GIB)
    book.record(booked, signed.receipt, signed.signature)
    index = Index(market, tmp_path)
    clock = Clock(1_000_000.0)
    keeper = Keeper(
        provider, book, index.refresh(), IdlePolicy(IDLE, DAY), busy=lambda oid: oid == streaming.order_id, clock=clock
    )
    locked = provider.staking.functions.stakeOf(provider.address).call()[1]
    assert locked == lock_for(400 * TOKEN_UNIT, 5_000) + 3 * lock_for(DEPOSIT, 5_000)

    assert keeper.check_once() == [], "nothing is idle yet"
    clock.now += IDLE - 1
    assert keeper.check_once() == []
    griefer_before = griefer.balance()
    clock.now += 1
    with caplog.at_level(logging.INFO, logger="flownet.keeper"):
        sent = keeper.check_once()
    assert len(sent) == 1 and sent[0].action == "cancel"
    assert f"cancelled order {idle.nonce} of {griefer.address}, idle 600 s" in caplog.text
    assert griefer.order_state(idle) == (0, 2)
    assert griefer.balance() == griefer_before + 400 * TOKEN_UNIT, "the whole deposit came back"
    assert provider.staking.functions.stakeOf(provider.address).call()[1] == 3 * lock_for(DEPOSIT, 5_000)
    cancel_block = market.w3.eth.get_block(sent[0].block_number)
    # Counted from chain time (the block before the cancel), which the market compares it with.
    assert (
        cancel_block["timestamp"] + DAY - 2
        <= provider.refused_until(griefer.address)
        <= cancel_block["timestamp"] + DAY
    )
    for kept in (booked, streaming, accepted):
        assert client.order_state(kept)[1] == 1, f"order {kept.nonce} was cancelled"

    # The griefer cannot lock the stake again at once.
    with pytest.raises(TransactionFailed) as excinfo:
        griefer.open_order(provider.address, 400 * TOKEN_UNIT, 30 * DAY, PRICE)
    assert excinfo.value.error == "MarketClientRefused"

    # Once the index has the cancel, the keeper forgets the order; later rounds send nothing.
    keeper.index_path = index.refresh()
    clock.now += 10 * IDLE
    assert keeper.check_once() == []
    assert idle.order_id not in keeper.first_seen and booked.order_id in keeper.first_seen
    book.close()


@pytest.mark.parametrize("w3", ["anvil"], indirect=True)
def test_keeper_races(market: Market, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A stream that starts while the keeper decides stops the cancel; an order the provider accepted
    after the index last saw it is refused by the market (the keeper logs it and goes on)."""
    provider, client = market.provider, market.client
    late_stream, _ = client.open_order(provider.address, DEPOSIT, DAY, PRICE)
    stale, _ = client.open_order(provider.address, DEPOSIT, DAY, PRICE)
    index = Index(market, tmp_path)
    path = index.refresh()  # sees both orders with nothing paid
    provider.redeem(client.sign_receipt(stale, GIB))  # accepted after the index was read
    looks: dict[bytes, int] = {}

    def busy(order_id: bytes) -> bool:  # the stream opens between the decision and the last look
        looks[order_id] = looks.get(order_id, 0) + 1
        return order_id == late_stream.order_id and looks[order_id] > 2  # rounds 1 and 2 saw it idle

    book = PaymentBook(tmp_path / "payments.sqlite")
    clock = Clock(5_000.0)
    keeper = Keeper(provider, book, path, IdlePolicy(IDLE), busy=busy, clock=clock)
    assert keeper.check_once() == []
    clock.now += IDLE
    with caplog.at_level(logging.WARNING, logger="flownet.keeper"):
        assert keeper.check_once() == []
    assert f"could not cancel order {stale.nonce}" in caplog.text and "MarketOrderAccepted" in caplog.text
    assert client.order_state(late_stream) == (0, 1), "the order that started streaming stays open"
    assert client.order_state(stale) == (PRICE, 1)
    assert IdlePolicy(0).active is False and Keeper(provider, book, path, IdlePolicy(0)).check_once() == []
    book.close()


@pytest.mark.parametrize("w3", ["anvil"], indirect=True)
def test_keeper_cancels_a_verifiers_idle_order_without_refusing_it(market: Market, tmp_path: Path) -> None:
    """A verifier that could accuse the provider is its auditor: the market ignores refusals of it, and
    the keeper writes none (it still cancels the verifier's unused order, which the verifier rebuys)."""
    from flownet.chain.market import Role

    provider = market.provider
    verifier = market.actor()
    minimum = int(verifier.staking.functions.verifierMinStake().call())
    verifier.stake(Role.VERIFIER, minimum)
    assert provider.can_accuse(verifier.address) and not provider.can_accuse(market.client.address)
    probe, _ = verifier.open_order(provider.address, 10 * TOKEN_UNIT, DAY, PRICE)
    index = Index(market, tmp_path)
    book = PaymentBook(tmp_path / "payments.sqlite")
    clock = Clock(1_000.0)
    keeper = Keeper(provider, book, index.refresh(), IdlePolicy(IDLE, DAY), clock=clock)
    keeper.check_once()
    clock.now += IDLE
    assert len(keeper.check_once()) == 1
    assert verifier.order_state(probe) == (0, 2)
    assert provider.refused_until(verifier.address) == 0, "no refusal written for a verifier"
    provider.refuse(verifier.address, 2**64 - 1)  # by hand: recorded, but the verifier still buys
    again, _ = verifier.open_order(provider.address, 10 * TOKEN_UNIT, DAY, PRICE)
    assert verifier.order_state(again) == (0, 1)
    book.close()
