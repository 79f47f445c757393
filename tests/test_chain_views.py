"""flownet.chain.views: struct views built by field name; flownet.chain.logs on the indexer's decoder."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import PRICE, Market

from flownet.chain import logs
from flownet.chain.artifacts import load_artifact
from flownet.chain.deploy import TOKEN_UNIT
from flownet.chain.registry import CertificateStatus
from flownet.chain.views import (
    Dispute,
    OrderState,
    SlashingConfig,
    Stake,
    build,
    order_state,
    stake_of,
    struct_fields,
)
from flownet.core.pricing import lock_for
from flownet.errors import ChainError

VIEWS = [
    (Stake, "Staking", "stakeOf"),
    (OrderState, "BandwidthMarket", "orderState"),
    (SlashingConfig, "SlashingManager", "config"),
    (Dispute, "SlashingManager", "disputeOf"),
    (CertificateStatus, "CertificateRegistry", "status"),
]


@pytest.mark.parametrize(("cls", "contract", "function"), VIEWS)
def test_every_view_has_exactly_its_structs_fields(cls: type, contract: str, function: str) -> None:
    fields = struct_fields(load_artifact(contract).abi, function)
    assert [f.name for f in dataclasses.fields(cls)] == [name for name, _ in fields]


def test_a_struct_that_changed_is_refused_by_name() -> None:
    fields = (("active", "uint96"), ("locked", "uint96"))
    with pytest.raises(ChainError, match=r"answers fields \['active', 'locked'\], but Stake has"):
        build(Stake, fields, (1, 2), "stakeOf")


def test_views_and_logs_on_a_market(market: Market) -> None:
    provider, client = market.provider, market.client
    order, _ = client.open_order(provider.address, 100 * TOKEN_UNIT, 24 * 3600, PRICE)
    stake = stake_of(provider.staking, provider.address.lower())
    assert stake == provider.stake_of()
    assert stake.is_provider and not stake.is_verifier
    assert stake.active == 10_000 * TOKEN_UNIT and stake.price_per_gib == PRICE
    assert stake.locked == lock_for(100 * TOKEN_UNIT, 5_000)
    assert order_state(client.market, order.order_id) == OrderState(0, 1) == client.order_status(order)
    assert client.order_state(order) == (0, 1)
    provider.cancel(order)
    assert order_state(client.market, order.order_id).status == 2


@pytest.mark.parametrize("w3", ["anvil"], indirect=True)  # raw eth_getLogs needs a JSON-RPC node
def test_logs_decode_with_the_indexers_decoder(market: Market) -> None:
    provider, client = market.provider, market.client
    order, _ = client.open_order(provider.address, 100 * TOKEN_UNIT, 24 * 3600, PRICE)
    (opened,) = logs.fetch(market.w3, market.deployment, "BandwidthMarket", "OrderOpened")
    assert opened.contract == "BandwidthMarket" and opened.name == "OrderOpened"
    assert opened.args["orderId"] == "0x" + order.order_id.hex() and opened.args["client"] == client.address
    assert logs.orders(market.w3, market.deployment, client=client.address) == [order]
    assert logs.orders(market.w3, market.deployment, provider=client.address) == []
    assert logs.cancelled(market.w3, market.deployment, provider=provider.address) == set()
    provider.cancel(order)
    assert logs.cancelled(market.w3, market.deployment, provider=provider.address) == {order.order_id}
