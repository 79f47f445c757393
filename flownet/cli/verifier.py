"""`flownet verifier`: stake as a verifier, then probe providers and dispute the faulty ones.

`register` stakes FLOW as a verifier (Role.VERIFIER). `run` loops (bounded by --rounds or
--duration, else until Ctrl-C): it lists providers from a full node, probes each through its own
tunnel client on a small order it buys when needed, judges the results against the thresholds,
stores the evidence in the blob store, signs and exchanges failure attestations through the full
node, opens a dispute once a quorum of verifiers signed the same evidence, executes it after the
challenge window, and submits equivocation proofs from the providers' heartbeats. After a round in
which no kind failed it vouches for the provider's epoch with a ServiceProof, recorded in
$FLOWNET_HOME/verifier/<address>.vouches.sqlite, and never attests a failure in an epoch it vouched for.
See flownet/agents/verifier.py for the round in detail.
"""

from __future__ import annotations

import asyncio
import logging
import time

import click

from flownet.cli.app import App, pass_app
from flownet.cli.client import parse_duration
from flownet.core.units import format_flow, parse_address, parse_flow
from flownet.errors import ConfigError

WALLET_HELP = "Wallet to act as (default: FLOWNET_WALLET / config)."
MIB = 1 << 20

log = logging.getLogger("flownet.verifier")


@click.group("verifier")
def group() -> None:
    """Verify providers: stake as a verifier, probe providers, attest failures and open disputes."""


@group.command("register")
@click.option("--stake", "stake_text", help="FLOW to stake (default: the verifier minimum).")
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def register(app: App, stake_text: str | None, wallet: str | None) -> None:
    """Stake FLOW as a verifier (approves the staking contract first when needed)."""
    from flownet.chain.market import Role

    net = app.flownet(wallet)
    info = net.stake_of(net.address)
    if info.role not in (Role.NONE, Role.VERIFIER):
        raise ConfigError(f"{net.address} already stakes as {Role(info.role).name.lower()}; a wallet has one role")
    minimum = int(net.staking.functions.verifierMinStake().call())
    stake = parse_flow(stake_text, "stake") if stake_text else minimum
    if info.role == Role.NONE and stake < minimum:
        raise ConfigError(f"stake {format_flow(stake)} is below the verifier minimum {format_flow(minimum)}")
    if net.balance() < stake:
        raise ConfigError(f"wallet {net.address} holds {format_flow(net.balance())}, less than {format_flow(stake)}")
    if net.token.functions.allowance(net.address, net.staking.address).call() < stake:
        with app.status("approving"):
            sent = net.approve(net.staking.address, stake)
        app.say(f"  {sent.action:<10} tx {sent.tx_hash}  gas {sent.gas_used:,}")
    with app.status("staking"):
        sent = net.stake(Role.VERIFIER, stake)
    app.say(f"  {sent.action:<10} tx {sent.tx_hash}  gas {sent.gas_used:,}")
    active = net.stake_of(net.address).active
    app.say(f"verifier {net.address} stakes {format_flow(active)}")


def _certificate(app: App, name: str, account: object, password: str):  # type: ignore[no-untyped-def]
    """The wallet's tunnel identity, made and registered on chain first if needed."""
    from cryptography.hazmat.primitives import serialization

    from flownet.blobs import KuboStore, open_store
    from flownet.chain.registry import Registry
    from flownet.pki import inspect, new_identity, write_identity
    from flownet.tunnel.tls import Identity

    address = account.address  # type: ignore[attr-defined]
    certs = app.settings.home / "certs"
    cert_path, key_path = certs / f"{name}.crt.pem", certs / f"{name}.key.pem"
    if not cert_path.exists():
        key, certificate = new_identity(address, app.deployment.chain_id, 365)
        write_identity(certs, name, key, certificate, password)
        log.info("made a tunnel certificate for %s at %s", address, cert_path)
    identity = Identity.load(cert_path, key_path, password)
    details = inspect(identity.certificate)
    if details.wallet != address or details.chain_id != app.deployment.chain_id:
        raise ConfigError(f"{cert_path} names {details.wallet} on chain {details.chain_id}, not {address}")
    registry = Registry(app.w3, app.deployment, account)  # type: ignore[arg-type]
    record = registry.status(details.cert_hash, address)
    if record.registered and not registry.is_valid(details.cert_hash, address):
        why = "revoked" if record.revoked else ("expired" if record.not_after <= time.time() else "not counted")
        raise ConfigError(
            f"certificate {cert_path} is registered but {why} (a verifier's certificate counts only while it has "
            f"stake bonded); bond stake, or move it and its key away to make a new one"
        )
    if not record.registered:
        store = open_store(app.settings)
        try:
            cid = store.put(identity.certificate.public_bytes(serialization.Encoding.PEM))
        finally:
            if isinstance(store, KuboStore):
                store.close()
        sent = registry.register(details.cert_hash, details.key_hash, cid, details.not_after)
        log.info("registered certificate 0x%s (tx %s)", details.cert_hash.hex(), sent.tx_hash)
    return identity


@group.command("run")
@click.option("--fullnode", required=True, help="Full node API to list providers and exchange attestations.")
@click.option(
    "--probe-url",
    required=True,
    help="http:// URL fetched through each provider (the provider must allow its host), e.g. a 1 MiB file.",
)
@click.option("--wallet", help=WALLET_HELP)
@click.option("--provider", "providers", multiple=True, help="Probe only this provider (repeatable).")
@click.option("--rounds", type=click.IntRange(1), help="Stop after this many rounds.")
@click.option("--duration", help="Stop after this long: 90s, 30m, 12h.")
@click.option("--interval", default=10.0, show_default=True, type=click.FloatRange(0), help="Seconds between rounds.")
@click.option("--connects", default=3, show_default=True, type=click.IntRange(1, 100), help="Connects per probe.")
@click.option("--downloads", default=4, show_default=True, type=click.IntRange(1, 100), help="Downloads per probe.")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(0.1), help="Seconds per probe step.")
@click.option("--max-connect-ms", default=1000.0, show_default=True, type=click.FloatRange(1), help="Latency limit.")
@click.option(
    "--min-throughput", default=1.0, show_default=True, type=click.FloatRange(0), help="MiB/s a download must reach."
)
@click.option(
    "--min-availability",
    default=0.8,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of downloads that must succeed.",
)
@click.option(
    "--metering-tolerance",
    default=0.02,
    show_default=True,
    type=click.FloatRange(0),
    help="Share by which the provider's METER may exceed our own count (plus 4 KiB).",
)
@click.option(
    "--adopt-epochs",
    default=1,
    show_default=True,
    type=click.IntRange(0, 10),
    help="Also co-sign failure attestations this many epochs old when our own probe fails the same kind.",
)
@click.option("--deposit", "deposit_text", default="1", show_default=True, help="FLOW escrowed per probe order.")
@click.option("--order-duration", default="1h", show_default=True, help="How long a probe order runs.")
@click.option(
    "--order-wait", default=3.0, show_default=True, type=click.FloatRange(0), help="Seconds to wait after buying."
)
@pass_app
def run(
    app: App,
    fullnode: str,
    probe_url: str,
    wallet: str | None,
    providers: tuple[str, ...],
    rounds: int | None,
    duration: str | None,
    interval: float,
    connects: int,
    downloads: int,
    timeout: float,
    max_connect_ms: float,
    min_throughput: float,
    min_availability: float,
    metering_tolerance: float,
    adopt_epochs: int,
    deposit_text: str,
    order_duration: str,
    order_wait: float,
) -> None:
    """Probe providers each round, attest failures, open disputes at quorum and execute them.

    Logs every step at INFO on stderr; Ctrl-C or SIGTERM stops after the current step.
    """
    from flownet.agents.probe import ProbeTarget
    from flownet.agents.verifier import Verifier, VerifierSettings
    from flownet.agents.verifier_io import HttpFullNode, SlashingChain, TunnelProber, VouchLog
    from flownet.blobs import KuboStore, open_store
    from flownet.chain.views import stake_of
    from flownet.cli.tunnel import _logging, _run_until_signalled
    from flownet.core.verdicts import Thresholds
    from flownet.tunnel.client import ReceiptLog
    from flownet.wallet import resolve_password

    _logging(app)
    target = ProbeTarget.parse(probe_url)
    wanted = tuple(parse_address(p, "provider address").lower() for p in providers)
    seconds = parse_duration(duration) if duration else None
    deposit = parse_flow(deposit_text, "deposit")
    if deposit == 0:
        raise ConfigError("invalid --deposit '0': a probe order needs a deposit above 0 FLOW")
    order_seconds = parse_duration(order_duration)
    thresholds = Thresholds(
        max_connect_seconds=max_connect_ms / 1000,
        min_throughput=min_throughput * MIB,
        min_availability=min_availability,
        metering_tolerance=metering_tolerance,
    )
    name = app.wallet_name(wallet)
    app.keystores.info(name)
    password = resolve_password(f"wallet {name!r}", app.password_file)
    account = app.keystores.unlock(name, password)
    deployment = app.deployment
    staking = deployment.contract(app.w3, "Staking")
    if not stake_of(staking, account.address).is_verifier:
        raise ConfigError(
            f"{account.address} is not a staked verifier: run `flownet verifier register --wallet {name}`"
        )
    identity = _certificate(app, name, account, password)
    chain = SlashingChain(app.w3, deployment, account)
    node = HttpFullNode(fullnode)
    store = open_store(app.settings)
    receipts = ReceiptLog(app.settings.home / "verifier" / f"{account.address}.receipts.sqlite")
    prober = TunnelProber(
        app.w3,
        deployment,
        account,
        identity,
        target,
        receipts,
        deposit,
        order_seconds,
        connects,
        downloads,
        timeout,
        order_wait,
    )
    settings = VerifierSettings(thresholds=thresholds, adopt_epochs=adopt_epochs, providers=wanted)
    vouches = VouchLog.at(app.settings.home, account.address)
    verifier = Verifier(chain, node, store, prober, settings, vouches=vouches)
    app.say(f"verifier {account.address} probing through {target.url}; full node {node.base}; quorum {chain.quorum()}")
    started = time.time()

    async def main(stop: asyncio.Event) -> None:
        await verifier.run(rounds, seconds, interval, stop)

    try:
        _run_until_signalled(main)
    finally:
        node.close()
        receipts.close()
        vouches.close()
        if isinstance(store, KuboStore):
            store.close()
    stats = verifier.stats
    app.say(
        f"{stats['probes']} probe(s), {stats['attestations']} attestation(s), {stats['disputes_opened']} dispute(s) "
        f"opened, {stats['executed']} executed, {stats['equivocations']} equivocation proof(s), "
        f"{stats['vouches']} epoch(s) vouched for in {time.time() - started:.0f} s"
    )


COMMANDS = [group]
