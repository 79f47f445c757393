"""`flownet provider heartbeat`: sign liveness heartbeats and send them to a full node.

Added to the `provider` group from here (provider.py stays as it is). Each heartbeat is the EIP-712
``Heartbeat`` of flownet.core.heartbeat; its endpointHash commits to the endpoint of your metadata,
found in this order: ``--endpoint``; the full node's copy of your metadata (``GET /providers/ADDR``);
your on-chain metadata CID read from the blob store (needs the RPC node and the blob store). It is read
again before every heartbeat, and every heartbeat is signed through flownet.heartbeats.HeartbeatSigner,
so a changed endpoint is used from the next epoch on (never two endpoints in one epoch).
"""

from __future__ import annotations

import time
from itertools import count as counter
from typing import Any

import click
from eth_utils import to_checksum_address

from flownet.chain.deploy import Deployment
from flownet.chain.market import FlowNet
from flownet.cli.app import App, pass_app
from flownet.cli.provider import WALLET_HELP, _current_metadata
from flownet.cli.provider import group as provider_group
from flownet.core.heartbeat import MAX_LOAD, HeartbeatDomain
from flownet.core.heartbeat_guard import HeartbeatRefused
from flownet.core.metadata import parse_endpoint
from flownet.errors import ConfigError, DeploymentError, FlowNetError
from flownet.fullnode_client import FullNodeClient, FullNodeError
from flownet.heartbeats import HeartbeatRecord, HeartbeatSender, HeartbeatSigner, record_path

ZERO_ADDRESS = "0x" + "00" * 20


def _status(node: FullNodeClient) -> dict[str, Any]:
    """The full node's ``/status``; one it cannot give is a bad --fullnode (ConfigError)."""
    try:
        return node.status()
    except FullNodeError as exc:
        raise ConfigError(f"cannot reach the full node at {node.base}/status: {exc}") from None


def _domain(app: App, status: dict[str, Any], fullnode: str) -> HeartbeatDomain:
    """The heartbeat domain: the full node's deployment, which must match the local manifest if there is one."""
    try:
        served = HeartbeatDomain(int(status["chain_id"]), to_checksum_address(status["contracts"]["Staking"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{fullnode}/status does not name a chain id and Staking address ({exc!r})") from None
    try:
        manifest = Deployment.load(app.settings.manifest)
    except DeploymentError:
        app.err.print(f"no local manifest at {app.settings.manifest}: signing for the deployment {fullnode} serves")
        return served
    local = HeartbeatDomain(manifest.chain_id, to_checksum_address(manifest.addresses.get("Staking", ZERO_ADDRESS)))
    if local != served:
        raise ConfigError(
            f"{fullnode} serves chain {served.chain_id} with Staking {served.staking}, but your manifest "
            f"{app.settings.manifest} is chain {local.chain_id} with Staking {local.staking}; use another --fullnode"
        )
    return local


def _endpoint(app: App, node: FullNodeClient, account: Any) -> str:
    """Your metadata's endpoint: the full node's verified copy, else your on-chain CID from the blob store."""
    found = node.provider_endpoint(account.address)
    if found:
        return found
    try:
        return _current_metadata(app, FlowNet(app.w3, app.deployment, account)).endpoint
    except FlowNetError as exc:
        raise ConfigError(f"cannot find your endpoint ({exc}); pass --endpoint host:port as in your metadata") from None


@provider_group.command("heartbeat")
@click.option("--fullnode", required=True, help="Base URL of the full node's API, e.g. http://127.0.0.1:8700.")
@click.option("--wallet", help=WALLET_HELP)
@click.option(
    "--interval",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between heartbeats.",
)
@click.option("--count", type=click.IntRange(min=1), help="Send this many heartbeats, then stop (default: forever).")
@click.option(
    "--load",
    default=0,
    show_default=True,
    type=click.IntRange(0, MAX_LOAD),
    help="Share of your capacity in use, in basis points (0..10000).",
)
@click.option(
    "--endpoint",
    help="The endpoint host:port exactly as in your metadata (default: read from the full node or the blob "
    "store before every heartbeat). A change takes effect from the next epoch.",
)
@pass_app
def heartbeat(
    app: App, fullnode: str, wallet: str | None, interval: float, count: int | None, load: int, endpoint: str | None
) -> None:
    """Sign a heartbeat every --interval seconds and send it to --fullnode, printing each answer.

    Two heartbeats of one epoch naming different endpoints are slashable, so every heartbeat is signed
    through the record $FLOWNET_HOME/provider/ADDRESS.heartbeats.sqlite (shared with `provider serve
    --fullnode` and any other sender using this home): once an epoch has heartbeats for one endpoint, a
    new endpoint waits for the next epoch and the old one is signed until then.

    Exits non-zero if the full node accepted none of them.
    """
    base = fullnode.rstrip("/")
    account = app.account(wallet)
    accepted = 0
    last = "none sent"
    with FullNodeClient(base) as node:
        status = _status(node)
        domain = _domain(app, status, base)
        epoch_seconds = int(status.get("epoch_seconds", 30))
        fixed = parse_endpoint(endpoint) if endpoint else None
        record = HeartbeatRecord(record_path(app.settings.home, account.address))
        signer = HeartbeatSigner(account, domain, record, epoch_seconds=epoch_seconds)
        sender = HeartbeatSender(signer, lambda: fixed or _endpoint(app, node, account))
        try:
            app.say(f"heartbeats for {account.address} ({sender.current_endpoint()}) to {base} every {interval:g} s")
            start = time.monotonic()
            for i in counter():
                if count is not None and i >= count:
                    break
                if i:
                    time.sleep(max(0.0, start + i * interval - time.monotonic()))
                try:
                    beat = sender.beat(load)
                except HeartbeatRefused as exc:
                    last = f"not signed: {exc}"
                    app.say(last)
                    continue
                hb = beat.signed.heartbeat
                named = f" endpoint {beat.endpoint} ({beat.deferred} waits for epoch {hb.epoch + 1})"
                label = f"epoch {hb.epoch} t {hb.timestamp} load {load}{named if beat.deferred else ''}"
                try:
                    answer = node.post_heartbeat(beat.signed)
                except FullNodeError as exc:
                    last = f"full node unreachable: {exc}"
                    app.say(f"{label}: {last}")
                    continue
                accepted += answer.accepted
                last = answer.describe()
                app.say(f"{label}: {last}")
        finally:
            record.close()
    if accepted == 0:
        raise FlowNetError(f"the full node at {base} accepted no heartbeat (last: {last})")


COMMANDS: list[click.Command] = []  # the command lives in the provider group
