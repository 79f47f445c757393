"""`flownet provider`: stake, publish an offer with signed metadata, unstake, withdraw, status; cancel
orders you have not accepted and refuse clients."""

from __future__ import annotations

import time

import click

from flownet.blobs import BlobStore, open_store
from flownet.chain import logs
from flownet.chain.market import FlowNet, Role
from flownet.chain.tx import Sent
from flownet.cli.app import App, pass_app
from flownet.cli.orders import find_order, order_table, when
from flownet.core import eip712
from flownet.core.cancellation import FOREVER
from flownet.core.eip712 import SignatureInvalid
from flownet.core.metadata import ProviderMetadata, parse_endpoint
from flownet.core.pricing import lock_for
from flownet.core.units import format_flow, parse_address, parse_flow
from flownet.errors import ConfigError, FlowNetError

WALLET_HELP = "Wallet to act as (default: FLOWNET_WALLET / config)."


@click.group("provider")
def group() -> None:
    """Sell bandwidth: stake FLOW, publish an offer, manage your stake and your orders."""


def _store(app: App) -> BlobStore:
    return open_store(app.settings)


def _publish(app: App, net: FlowNet, meta: ProviderMetadata) -> str:
    signature = eip712.sign(bytes(net.account.key), meta.digest())
    with app.status("storing metadata"):
        cid = _store(app).put(meta.document(signature))
    app.say(f"metadata {cid}")
    return str(cid)


def _show(app: App, sent: Sent) -> None:
    app.say(f"  {sent.action:<16} tx {sent.tx_hash}  gas {sent.gas_used:,}")


def _ensure_allowance(app: App, net: FlowNet, spender: str, amount: int) -> None:
    if net.token.functions.allowance(net.address, spender).call() < amount:
        with app.status("approving"):
            _show(app, net.approve(spender, amount))


@group.command("register")
@click.option("--wallet", help=WALLET_HELP)
@click.option("--stake", "stake_text", help="FLOW to stake (default: the provider minimum).")
@click.option("--price", "price_text", required=True, help="Price in FLOW per GiB, e.g. 2 or 0.5.")
@click.option("--endpoint", required=True, help="Where clients reach your tunnel, host:port.")
@click.option("--region", default="global", show_default=True, help="Region label, e.g. eu-west.")
@click.option("--capacity", default=100, show_default=True, type=click.IntRange(1), help="Capacity in Mbit/s.")
@pass_app
def register(
    app: App, wallet: str | None, stake_text: str | None, price_text: str, endpoint: str, region: str, capacity: int
) -> None:
    """Stake, publish signed metadata to the blob store and put your offer (price + CID) on chain."""
    price = parse_flow(price_text, "price")
    if price == 0:
        raise ConfigError("invalid price '0': a provider offer needs a price above 0 FLOW per GiB")
    endpoint = parse_endpoint(endpoint)
    net = app.flownet(wallet)
    info = net.stake_of(net.address)
    if info.role != int(Role.NONE):
        raise ConfigError(
            f"{net.address} already stakes as {Role(info.role).name.lower()}; use `flownet provider update`"
        )
    minimum = net.staking.functions.providerMinStake().call()
    stake = parse_flow(stake_text, "stake") if stake_text else minimum
    meta = ProviderMetadata(net.address, endpoint, region, capacity, price, int(time.time()))
    app.say(f"registering {net.address}: stake {format_flow(stake)}, price {format_flow(price)}/GiB")
    _ensure_allowance(app, net, net.staking.address, stake)
    with app.status("staking"):
        _show(app, net.stake(Role.PROVIDER, stake))
    cid = _publish(app, net, meta)
    with app.status("publishing the offer"):
        _show(app, net.set_offer(price, cid))
    app.say(f"provider {net.address} registered")


@group.command("update")
@click.option("--wallet", help=WALLET_HELP)
@click.option("--price", "price_text", help="New price in FLOW per GiB (0 stops taking new orders).")
@click.option("--endpoint", help="New endpoint host:port.")
@click.option("--region", help="New region label.")
@click.option("--capacity", type=click.IntRange(1), help="New capacity in Mbit/s.")
@pass_app
def update(
    app: App, wallet: str | None, price_text: str | None, endpoint: str | None, region: str | None, capacity: int | None
) -> None:
    """Change your price or metadata; the new metadata is re-signed and re-published."""
    if not any((price_text, endpoint, region, capacity)):
        raise ConfigError("nothing to update: give --price, --endpoint, --region or --capacity")
    net = app.flownet(wallet)
    current = _current_metadata(app, net)
    price = parse_flow(price_text, "price") if price_text is not None else current.price_per_gib
    meta = ProviderMetadata(
        net.address,
        parse_endpoint(endpoint) if endpoint else current.endpoint,
        region or current.region,
        capacity or current.capacity_mbps,
        price,
        int(time.time()),
    )
    cid = _publish(app, net, meta)
    with app.status("publishing the offer"):
        _show(app, net.set_offer(price, cid))
    app.say(f"offer updated: {format_flow(price)}/GiB")


def _current_metadata(app: App, net: FlowNet, address: str | None = None) -> ProviderMetadata:
    address = address or net.address
    if not net.stake_of(address).is_provider:
        raise ConfigError(f"{address} is not a registered provider (run `flownet provider register`)")
    cid = net.staking.functions.metadataCid(address).call()
    raw = _store(app).get(cid)
    meta, signature = ProviderMetadata.from_document(raw)
    try:
        signer = meta.signer(signature)
    except SignatureInvalid as exc:
        raise ConfigError(f"metadata {cid} has an invalid {exc}") from None
    if signer != address or meta.provider != address:
        raise ConfigError(f"metadata {cid} is signed by {signer}, not by provider {address}")
    return meta


@group.command("unstake")
@click.argument("amount")
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def unstake(app: App, amount: str, wallet: str | None) -> None:
    """Start thawing AMOUNT FLOW of unlocked stake; withdraw it after the thawing period."""
    value = parse_flow(amount)
    net = app.flownet(wallet)
    with app.status("requesting unstake"):
        sent = net.request_unstake(value)
    _show(app, sent)
    thaw_end = net.stake_of(net.address).thaw_end
    app.say(f"{format_flow(value)} thawing; withdraw after {when(thaw_end)}")


@group.command("withdraw")
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def withdraw(app: App, wallet: str | None) -> None:
    """Send your thawed stake back to your wallet."""
    net = app.flownet(wallet)
    before = net.balance()
    with app.status("withdrawing"):
        sent = net.withdraw()
    _show(app, sent)
    app.say(f"withdrew {format_flow(net.balance() - before)}")


@group.command("status")
@click.argument("address", required=False)
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def status(app: App, address: str | None, wallet: str | None) -> None:
    """Show a provider's stake, offer, metadata and orders (yours, or ADDRESS's)."""
    if address:
        address = parse_address(address, "provider address")
        net = FlowNet.readonly(app.w3, app.deployment, address)
    else:
        net = app.flownet(wallet)
        address = net.address
    stake = net.stake_of(address)
    app.say(f"provider {address}")
    app.say(f"  role      {Role(stake.role).name.lower()}")
    app.say(f"  stake     {format_flow(stake.active)} active, {format_flow(stake.locked)} locked by open orders")
    thawing = f", withdrawable from {when(stake.thaw_end)}" if stake.thawing else ""
    app.say(f"  thawing   {format_flow(stake.thawing)}{thawing}")
    price = stake.price_per_gib
    app.say(f"  offer     {format_flow(price)}/GiB" if price else "  offer     none (not taking orders)")
    if stake.is_provider:
        cid = net.staking.functions.metadataCid(address).call()
        try:
            meta = _current_metadata(app, net, address)
            app.say(f"  metadata  {cid}: {meta.endpoint}, {meta.region}, {meta.capacity_mbps} Mbit/s (signature ok)")
        except FlowNetError as exc:
            app.say(f"  metadata  {cid}: unavailable ({exc})")
    orders = logs.orders(net.w3, net.deployment, provider=address)
    app.say(f"  orders    {len(orders)}")
    if orders:
        cancelled = logs.cancelled(net.w3, net.deployment, provider=address)
        app.console.print(order_table(net, orders, "client", cancelled))


@group.command("sign-close")
@click.argument("order")
@click.option("--final", "final_text", required=True, help="Total FLOW the order pays you in the end.")
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def sign_close(app: App, order: str, final_text: str, wallet: str | None) -> None:
    """Agree that ORDER (number or id) closes with --final paid; prints the signature for the client."""
    final = parse_flow(final_text, "final amount")
    net = app.flownet(wallet)
    found = find_order(net, order, provider=net.address)
    if final > found.deposit:
        raise ConfigError(f"final amount {format_flow(final)} exceeds order {found.nonce}'s deposit")
    app.say(f"0x{net.sign_close(found, final).hex()}")


def _refusal_end(net: FlowNet, text: str) -> int:
    """The unix time a refusal of `text` ('forever', or a duration such as 12h or 7d) ends, from chain time."""
    from flownet.cli.client import parse_duration

    if text.strip().lower() == "forever":
        return FOREVER
    now = int(net.w3.eth.get_block("latest")["timestamp"])
    return min(now + parse_duration(text), FOREVER)


def _refusal_text(until: int) -> str:
    return "for good" if until == FOREVER else f"until {when(until)}"


@group.command("cancel")
@click.argument("order")
@click.option(
    "--refuse-for",
    help="Also refuse the order's client for this long (90s, 30m, 12h, 7d or forever), in the same transaction.",
)
@click.option("--forfeit", is_flag=True, help="Cancel even though your payment book holds a receipt of the order.")
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def cancel(app: App, order: str, refuse_for: str | None, forfeit: bool, wallet: str | None) -> None:
    """Cancel ORDER (number or id), which you have not accepted (you redeemed no receipt of it): the client
    gets its whole deposit back and the stake the order locked is released. `provider serve` does this by
    itself for orders left idle (--cancel-idle)."""
    net = app.flownet(wallet)
    found = find_order(net, order, provider=net.address)
    paid, state = net.order_state(found)
    if state != 1:
        raise ConfigError(f"order {found.nonce} is not open (it was closed, reclaimed or cancelled)")
    if paid:
        raise ConfigError(
            f"order {found.nonce} is accepted: you redeemed {format_flow(paid)} of it, so it can no longer be "
            "cancelled (it ends at expiry plus grace, or earlier with a close you co-sign: `provider sign-close`)"
        )
    book_path = app.settings.home / "provider" / f"{net.address}.payments.sqlite"
    if book_path.exists() and not forfeit:
        from flownet.tunnel.book import PaymentBook

        book = PaymentBook(book_path)
        try:
            stored = book.latest(found.order_id)
        finally:
            book.close()
        if stored is not None:
            raise ConfigError(
                f"your payment book holds a receipt of order {found.nonce} for "
                f"{format_flow(stored.receipt.cumulative_amount)}: a cancel forfeits it (the client gets its whole "
                "deposit back); redeem it instead (that accepts the order), or pass --forfeit"
            )
    until = _refusal_end(net, refuse_for) if refuse_for else 0
    with app.status("cancelling"):
        sent = net.cancel(found, until)
    _show(app, sent)
    lock = lock_for(found.deposit, int(net.market.functions.lockBps().call()))
    app.say(
        f"order {found.nonce} cancelled: {format_flow(found.deposit)} refunded to {found.client}, "
        f"{format_flow(lock)} of your stake unlocked"
    )
    if until:
        app.say(f"{found.client} refused {_refusal_text(until)}")


@group.command("refuse")
@click.argument("client")
@click.option("--for", "duration", default="forever", show_default=True, help="How long: 90s, 30m, 12h, 7d or forever.")
@click.option("--lift", is_flag=True, help="Accept orders from CLIENT again.")
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def refuse(app: App, client: str, duration: str, lift: bool, wallet: str | None) -> None:
    """Refuse new orders from CLIENT (an address) for a while, or --lift a refusal. Open orders stay
    (cancel those you have not accepted with `provider cancel`)."""
    who = parse_address(client, "client address")
    net = app.flownet(wallet)
    until = 0 if lift else _refusal_end(net, duration)
    if not lift and net.can_accuse(who):
        app.say(
            f"note: {who} is a staked verifier that could accuse you; the market lets it buy (probe) orders "
            "while it can, whatever you refuse"
        )
    with app.status("lifting the refusal" if lift else "refusing"):
        sent = net.refuse(who, until)
    _show(app, sent)
    app.say(f"{who} may open orders with you again" if lift else f"{who} refused {_refusal_text(until)}")


COMMANDS = [group]
