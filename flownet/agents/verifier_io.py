"""The verifier's real seams: the full node over HTTP, the chain (SlashingManager, Staking), the tunnel prober.

`HttpFullNode` is the project's one full-node client (flownet.fullnode_client) plus the verifier's
equivocation route. `SlashingChain` uses `flownet.chain.slashing.Slashing` (imported when built) for signing and
transactions and reads views straight from the contracts. `TunnelProber` buys a small order from a
provider when this verifier has none usable, and probes it through an in-process `ClientTunnel`;
when the deployment has a SlashingManager it is a `VouchingProber`: after a round the verifier
judged acceptable it signs a ServiceProof for the round's epoch and sends it before the tunnel stops
(`run_probe`). `VouchLog` keeps, in SQLite under FLOWNET_HOME, the (provider, epoch) pairs the
verifier vouched for and those it attested failures in, so a restarted verifier still never does both.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from flownet.agents.probe import ProbeTarget, probe
from flownet.agents.verifier import Decide, Equivocation
from flownet.chain.deploy import Deployment
from flownet.chain.views import Dispute, call_struct, stake_of
from flownet.core import eip712
from flownet.core.heartbeat import SignedHeartbeat
from flownet.core.metadata import parse_endpoint
from flownet.core.receipts import Order
from flownet.core.units import format_flow
from flownet.core.verdicts import Attestation, Measurements
from flownet.errors import ConfigError, FlowNetError, TunnelError
from flownet.fullnode_client import FullNodeClient, FullNodeError
from flownet.tunnel.tls import Identity

if TYPE_CHECKING:
    from flownet.tunnel.client import ClientTunnel

__all__ = ["FullNodeError", "HttpFullNode", "SlashingChain", "TunnelProber", "VouchLog", "run_probe"]

log = logging.getLogger("flownet.verifier")


class HttpFullNode(FullNodeClient):
    """The full node API as the verifier uses it: providers, their equivocations, attestations."""

    def equivocations(self, provider: str) -> list[Equivocation]:
        """Every equivocation the full node keeps for `provider` within the statute of limitations, page by page."""
        return self.pages(f"/providers/{provider}/equivocations", {}, Equivocation.from_json, "equivocation")


class SlashingChain:
    """ChainPort over the deployment's SlashingManager and Staking for `account`."""

    def __init__(self, w3: Web3, deployment: Deployment, account: LocalAccount) -> None:
        from flownet.chain.slashing import Slashing  # issue 6 bindings (flownet/chain/slashing.py)

        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self.address = account.address
        self.slashing = Slashing(w3, deployment, account)
        self.contract = deployment.contract(w3, "SlashingManager")
        self.staking = deployment.contract(w3, "Staking")

    def current_epoch(self) -> int:
        return int(self.slashing.current_epoch())

    def quorum(self) -> int:
        return int(self.slashing.config()["quorum"])

    def chain_time(self) -> int:
        """The time the next block will carry, as well as we can tell: the latest block's timestamp, or
        the wall clock when the chain has been idle (a devnet mines only for transactions, so its
        latest timestamp can lag for minutes). Acting early is harmless: gas estimation refuses an
        execute before the window ends, and nothing is sent."""
        latest = int(self.w3.eth.get_block("latest")["timestamp"])
        return max(latest, int(time.time()))

    def sign_attestation(self, provider: str, epoch: int, kind: int, evidence_cid: str) -> bytes:
        return bytes(self.slashing.sign_attestation(self.account, _checksum(provider), epoch, kind, evidence_cid))

    def attestation_signer(self, a: Attestation) -> str | None:
        """Who signed `a` (None for a non-canonical or unrecoverable signature, which the contract refuses)."""
        if not eip712.is_canonical(a.signature):
            return None
        try:
            digest = self.slashing.attestation_digest(_checksum(a.provider), a.epoch, a.kind, a.evidence_cid)
            return eip712.recover(bytes(digest), a.signature)
        except (FlowNetError, ValueError):  # unrecoverable, or a kind or address the contract would refuse
            return None

    def is_staked_verifier(self, address: str) -> bool:
        stake = stake_of(self.staking, address)
        minimum = self.staking.functions.verifierMinStake().call()
        return stake.is_verifier and stake.active >= minimum and stake.thawing == 0

    def open_dispute_of(self, provider: str, epoch: int) -> int:
        return int(self.contract.functions.openDisputeOf(_checksum(provider), epoch).call())

    def is_epoch_slashed(self, provider: str, epoch: int) -> bool:
        return bool(self.contract.functions.isEpochSlashed(_checksum(provider), epoch).call())

    def open_dispute(self, provider: str, epoch: int, kind: int, evidence_cid: str, signatures: list[bytes]) -> int:
        dispute_id, sent = self.slashing.open_dispute(_checksum(provider), epoch, kind, evidence_cid, signatures)
        log.info("openDispute tx %s", sent.tx_hash)
        return int(dispute_id)

    def dispute_state(self, dispute_id: int) -> tuple[int, int]:
        d = call_struct(Dispute, self.contract, "disputeOf", dispute_id)
        return d.status, d.challenge_ends

    def open_disputes(self) -> list[int]:
        """Ids of every dispute still open, from the DisputeOpened events."""
        from flownet.chain import logs

        ids = sorted(
            {int(e.args["disputeId"]) for e in logs.fetch(self.w3, self.deployment, "SlashingManager", "DisputeOpened")}
        )
        return [i for i in ids if self.dispute_state(i)[0] == 1]

    def execute(self, dispute_id: int) -> None:
        sent = self.slashing.execute(dispute_id)
        log.info("executeDispute tx %s", sent.tx_hash)

    def slash_equivocation(self, a: SignedHeartbeat, b: SignedHeartbeat, evidence_cid: str) -> None:
        sent = self.slashing.slash_equivocation(a, b, evidence_cid)
        log.info("slashEquivocation tx %s", sent.tx_hash)


def _checksum(address: str) -> str:
    return str(Web3.to_checksum_address(address))


class VouchLog:
    """A VouchPort in SQLite: the (provider, epoch) pairs this verifier vouched for with a ServiceProof,
    and those it signed a failure attestation for. Every write is committed before it returns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS vouched (provider TEXT NOT NULL, epoch INTEGER NOT NULL,"
            " bytes_served INTEGER NOT NULL, vouched_at REAL NOT NULL, PRIMARY KEY (provider, epoch)) WITHOUT ROWID"
        )
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS attested (provider TEXT NOT NULL, epoch INTEGER NOT NULL,"
            " attested_at REAL NOT NULL, PRIMARY KEY (provider, epoch)) WITHOUT ROWID"
        )

    @classmethod
    def at(cls, home: Path, verifier: str) -> VouchLog:
        """The log of verifier `verifier` under FLOWNET_HOME `home` (next to its receipt log)."""
        return cls(home / "verifier" / f"{_checksum(verifier)}.vouches.sqlite")

    def vouched(self, provider: str, epoch: int) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM vouched WHERE provider = ? AND epoch = ?", (provider.lower(), epoch)
        ).fetchone()
        return row is not None

    def record_vouch(self, provider: str, epoch: int, bytes_served: int) -> None:
        self._conn.execute(
            "INSERT INTO vouched VALUES (?, ?, ?, ?) ON CONFLICT (provider, epoch) DO UPDATE SET"
            " bytes_served = max(bytes_served, excluded.bytes_served)",
            (provider.lower(), epoch, bytes_served, time.time()),
        )

    def attested(self, provider: str, epoch: int) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM attested WHERE provider = ? AND epoch = ?", (provider.lower(), epoch)
        ).fetchone()
        return row is not None

    def record_attestation(self, provider: str, epoch: int) -> None:
        self._conn.execute("INSERT OR IGNORE INTO attested VALUES (?, ?, ?)", (provider.lower(), epoch, time.time()))

    def vouches(self) -> list[tuple[str, int, int]]:
        """Every (provider, epoch, bytes served) vouched for, by provider and epoch."""
        rows = self._conn.execute("SELECT provider, epoch, bytes_served FROM vouched ORDER BY provider, epoch")
        return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    def close(self) -> None:
        self._conn.close()


async def run_probe(
    tunnel: ClientTunnel,
    target: ProbeTarget,
    connects: int,
    downloads: int,
    timeout: float,
    decide: Decide | None = None,
) -> Measurements:
    """Probe through a started `tunnel`; then, while its session is still up, ask `decide` whether to
    vouch for the round and send the ServiceProof it names (`ClientTunnel.vouch`). The caller stops
    the tunnel. Without `decide`, or a tunnel that cannot sign proofs, nothing is vouched for."""
    try:
        m = await probe(tunnel, target, connects, downloads, timeout)
    except TunnelError as exc:
        return Measurements(session_error=str(exc))
    session = tunnel.session
    if decide is None or tunnel.config.proofs is None or session is None or session.closed:
        return m
    chosen = decide(m)
    if chosen is not None:
        epoch, bytes_served = chosen
        provider, nonce = tunnel.config.order.provider, tunnel.config.order.nonce
        try:
            tunnel.vouch(epoch, bytes_served)
        except TunnelError as exc:
            log.warning("vouched for %s in epoch %d, but the service proof was not sent: %s", provider, epoch, exc)
        else:
            log.info("service proof sent to %s: epoch %d, %d bytes, order %d", provider, epoch, bytes_served, nonce)
    return m


class TunnelProber:
    """Probe a provider through an in-process ClientTunnel, on an order this verifier holds with it."""

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        account: LocalAccount,
        identity: Identity,
        target: ProbeTarget,
        receipts: Any,  # flownet.tunnel.client.ReceiptLog
        deposit: int,
        order_seconds: int,
        connects: int = 3,
        downloads: int = 4,
        timeout: float = 10.0,
        order_wait: float = 3.0,
    ) -> None:
        from flownet.chain.market import FlowNet
        from flownet.chain.registry import Registry
        from flownet.tunnel.payment import ServiceProofSigner

        self.w3 = w3
        self.deployment = deployment
        self.net = FlowNet(w3, deployment, account)
        self.registry = Registry(w3, deployment)
        self.account = account
        self.identity = identity
        self.target = target
        self.receipts = receipts
        self.deposit = deposit
        self.order_seconds = order_seconds
        self.connects = connects
        self.downloads = downloads
        self.timeout = timeout
        self.order_wait = order_wait
        manager = deployment.addresses.get("SlashingManager")
        # proofs only when the verifier decides (probe_and_vouch): a round can carry bytes and still fail
        self.proofs = ServiceProofSigner(bytes(account.key), deployment.chain_id, manager) if manager else None
        if self.proofs is None:
            log.info("the deployment has no SlashingManager: this verifier sends no service proofs")

    def usable_order(self, provider: str) -> Order | None:
        """The newest open order of ours with `provider` that has time and escrow left."""
        from flownet.chain import logs

        now = time.time()
        for order in reversed(logs.orders(self.w3, self.deployment, client=self.account.address, provider=provider)):
            paid, status = self.net.order_state(order)
            signed = self.receipts.latest(order.order_id)
            spent = max(paid, signed.cumulative_amount if signed else 0)
            if status == 1 and order.expiry > now + 60 and spent < order.deposit * 0.9:
                return order
        return None

    def buy(self, provider: str) -> Order:
        price = self.net.stake_of(provider).price_per_gib
        if price == 0:
            raise ConfigError(f"provider {provider} has no offer: cannot buy a probe order")
        balance = self.net.balance()
        if balance < self.deposit:
            raise ConfigError(
                f"verifier {self.account.address} holds {format_flow(balance)}, less than the probe deposit "
                f"{format_flow(self.deposit)}"
            )
        order, sent = self.net.open_order_with_permit(
            provider, self.deposit, self.order_seconds, price, int(time.time()) + 3600
        )
        log.info(
            "bought probe order %d with %s: %s at %s/GiB (tx %s)",
            order.nonce,
            provider,
            format_flow(self.deposit),
            format_flow(price),
            sent.tx_hash,
        )
        return order

    async def __call__(self, row: dict[str, Any]) -> Measurements:
        """Probe the provider of `row` (a full node API row); vouch for nothing."""
        return await self.probe_and_vouch(row, None)

    async def probe_and_vouch(self, row: dict[str, Any], decide: Decide | None) -> Measurements:
        """Probe the provider of `row` and, before the tunnel stops, send the ServiceProof `decide` asks for."""
        from flownet.tunnel.client import ClientConfig, ClientTunnel, provider_identity_check
        from flownet.tunnel.payment import ReceiptSigner

        provider = _checksum(str(row["address"]))
        endpoint = (row.get("metadata") or {}).get("endpoint")
        if not endpoint:
            raise ConfigError(f"provider {provider} publishes no endpoint in its metadata: not probed")
        host, _, port = parse_endpoint(endpoint).rpartition(":")
        order = await asyncio.to_thread(self.usable_order, provider)
        if order is None:
            order = await asyncio.to_thread(self.buy, provider)
            await asyncio.sleep(self.order_wait)  # the provider's local index must learn of the order first
        else:
            log.info("using probe order %d with %s", order.nonce, provider)
        chain_id = self.deployment.chain_id
        config = ClientConfig(
            identity=self.identity,
            order=order,
            domain=self.net.domain,
            signer=ReceiptSigner(bytes(self.account.key), self.net.domain),
            provider_host=host.strip("[]"),
            provider_port=int(port),
            provider_check=provider_identity_check(order, chain_id, lambda h: self.registry.is_valid(h, provider)),
            receipts=self.receipts,
            listen_port=0,
            receipt_interval=256 << 10,
            connect_timeout=self.timeout,
            proofs=self.proofs,
            auto_proofs=False,
        )
        tunnel = ClientTunnel(config)
        await tunnel.start()
        try:
            return await run_probe(tunnel, self.target, self.connects, self.downloads, self.timeout, decide)
        finally:
            await tunnel.stop()
