"""`flownet client`: buy bandwidth (one permit transaction), list your orders, close them."""

from __future__ import annotations

import re
import time

import click

from flownet.chain import logs
from flownet.chain.market import FlowNet
from flownet.cli.app import App, pass_app
from flownet.cli.orders import find_order, order_table, when
from flownet.core.units import format_flow, parse_address, parse_flow
from flownet.errors import ConfigError

WALLET_HELP = "Wallet to act as (default: FLOWNET_WALLET / config)."
_DURATION_RE = re.compile(r"^([0-9]+)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """'90s', '30m', '12h', '7d' or plain seconds."""
    match = _DURATION_RE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"invalid duration {text!r}: expected a positive number with s, m, h or d, e.g. 1d")
    return int(match.group(1)) * _UNITS[match.group(2)]


@click.group("client")
def group() -> None:
    """Buy bandwidth: open orders with providers, list them, close them."""


@group.command("buy")
@click.option("--provider", "provider_text", required=True, help="Provider address.")
@click.option("--deposit", "deposit_text", required=True, help="FLOW to escrow; the most the order can cost.")
@click.option("--max-price", "max_price_text", help="Highest FLOW per GiB you accept (default: the current offer).")
@click.option("--duration", default="1d", show_default=True, help="How long the order runs: 90s, 30m, 12h, 7d.")
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def buy(
    app: App, provider_text: str, deposit_text: str, max_price_text: str | None, duration: str, wallet: str | None
) -> None:
    """Open an order with a provider in one transaction (EIP-2612 permit, no separate approve)."""
    provider = parse_address(provider_text, "provider address")
    deposit = parse_flow(deposit_text, "deposit")
    if deposit == 0:
        raise ConfigError("invalid deposit '0': an order needs a deposit above 0 FLOW")
    seconds = parse_duration(duration)
    net = app.flownet(wallet)
    price = net.stake_of(provider).price_per_gib
    if price == 0:
        raise ConfigError(f"provider {provider} has no offer (not registered, or not taking orders)")
    max_price = parse_flow(max_price_text, "max price") if max_price_text else price
    balance = net.balance()
    if balance < deposit:
        raise ConfigError(
            f"wallet {net.address} holds {format_flow(balance)}, less than the deposit {format_flow(deposit)}"
        )
    deadline = int(time.time()) + 3600
    with app.status("opening the order"):
        order, sent = net.open_order_with_permit(provider, deposit, seconds, max_price, deadline)
    app.say(f"  {sent.action:<20} tx {sent.tx_hash}  gas {sent.gas_used:,}")
    app.say(f"order {order.nonce} (id 0x{order.order_id.hex()}) with {provider}")
    terms = f"deposit {format_flow(order.deposit)} at {format_flow(order.price_per_gib)}/GiB"
    app.say(f"  {terms}, expires {when(order.expiry)}")


@group.command("orders")
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def orders(app: App, wallet: str | None) -> None:
    """List your orders with what each has paid and whether it is open."""
    name = app.wallet_name(wallet)
    address = app.address(name)
    net = FlowNet.readonly(app.w3, app.deployment, address)
    found = logs.orders(net.w3, net.deployment, client=address)
    if not found:
        app.say(f"no orders for {name} ({address})")
        return
    app.console.print(order_table(net, found, "provider", logs.cancelled(net.w3, net.deployment, client=address)))


@group.command("close")
@click.argument("order")
@click.option("--final", "final_text", help="Total FLOW the provider agreed to (with --provider-signature).")
@click.option("--provider-signature", help="The provider's `flownet provider sign-close` output.")
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def close(app: App, order: str, final_text: str | None, provider_signature: str | None, wallet: str | None) -> None:
    """Close ORDER (number or id): now with the provider's signature, or alone after expiry + grace."""
    net = app.flownet(wallet)
    found = find_order(net, order, client=net.address)
    _, status = net.order_state(found)
    if status != 1:
        raise ConfigError(f"order {found.nonce} is already closed")
    before = net.balance()
    if provider_signature or final_text:
        if not (provider_signature and final_text):
            raise ConfigError("a cooperative close needs both --final and --provider-signature")
        final = parse_flow(final_text, "final amount")
        try:
            signature = bytes.fromhex(provider_signature.removeprefix("0x"))
        except ValueError:
            raise ConfigError(f"invalid --provider-signature {provider_signature!r}: expected 0x and hex") from None
        with app.status("closing"):
            sent = net.close(found, final, signature)
    else:
        grace = net.market.functions.gracePeriod().call()
        reclaimable = found.expiry + grace
        if net.w3.eth.get_block("latest")["timestamp"] < reclaimable:
            raise ConfigError(
                f"order {found.nonce} can be closed alone from {when(reclaimable)}; to close now, ask the provider "
                f"to run `flownet provider sign-close {found.nonce} --final AMOUNT` and pass --final and "
                "--provider-signature"
            )
        with app.status("reclaiming"):
            sent = net.reclaim(found)
    app.say(f"  {sent.action:<10} tx {sent.tx_hash}  gas {sent.gas_used:,}")
    app.say(f"order {found.nonce} closed; {format_flow(net.balance() - before)} returned to you")


COMMANDS = [group]
