"""A verifier vouches for a provider's epoch with a ServiceProof only after a round it judged acceptable,
and never attests (nor co-signs, nor adopts) an epoch it vouched for, across restarts.

The live tests run the real verifier logic (`Verifier.check_provider`, with the fake chain of
test_verifier_agent for the epoch and the attestations) over a real in-process tunnel
(tunnel_helpers.Tunnel, 127.0.0.1): the verifier's own ClientTunnel with automatic proofs off, a
provider that verifies and books every proof, and `run_probe` (the probe path of TunnelProber).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from test_verifier_agent import DROPPING, HONEST, PROVIDER, V1, V2, FakeChain, FakeFullNode, FakeStore, World
from tunnel_helpers import CHAIN_ID, MARKET, SLASHING, EchoServer, LocalWeb, Tunnel, random_file, run, socks_connect

from flownet.agents.probe import ProbeTarget
from flownet.agents.verifier import Decide, Verifier, VerifierSettings, VouchingProber
from flownet.agents.verifier_io import VouchLog, run_probe
from flownet.core.receipts import MarketDomain
from flownet.core.verdicts import Measurements, Thresholds
from flownet.errors import TunnelError
from flownet.tunnel.client import ClientConfig, ClientTunnel, provider_identity_check
from flownet.tunnel.faults import Faults
from flownet.tunnel.payment import ReceiptSigner, ServiceProofSigner, recover_proof_signer, service_proof_separator

KIB = 1 << 10
SIZE = 256 * KIB
EPOCH = 424_242  # the fake chain's epoch: not the wall clock's, so a proof can only carry it if the verifier chose it
LOOSE = Thresholds(max_connect_seconds=5.0, min_throughput=1.0, min_availability=0.8)
UNREACHABLE = 0


async def until(predicate: Any, timeout: float, step: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


async def start_verifier_client(t: Tunnel) -> ClientTunnel:
    """The verifier's tunnel client on `t`'s order, as TunnelProber builds it: proofs signed only when asked
    (`auto_proofs=False`), although an epoch length is set that would make an ordinary client prove every epoch."""
    domain = MarketDomain(CHAIN_ID, MARKET)
    key = bytes(t.client.account.key)  # type: ignore[attr-defined]
    config = ClientConfig(
        identity=t.client.identity,
        order=t.order,
        domain=domain,
        signer=ReceiptSigner(key, domain),
        provider_host="127.0.0.1",
        provider_port=t.server.config.port,
        provider_check=provider_identity_check(t.order, CHAIN_ID, t.registered),
        receipts=t.receipts,
        listen_port=0,
        receipt_interval=64 * KIB,
        proofs=ServiceProofSigner(key, CHAIN_ID, SLASHING),
        epoch_seconds=60,
        auto_proofs=False,
    )
    tunnel = ClientTunnel(config)
    await tunnel.start()
    return tunnel


class LiveProber:
    """A VouchingProber over `t`'s live tunnel: a fresh verifier client per round, stopped after it."""

    def __init__(self, t: Tunnel, target: ProbeTarget, downloads: int = 4) -> None:
        self.t = t
        self.target = target
        self.downloads = downloads
        self.clients: list[ClientTunnel] = []
        self.measured: list[Measurements] = []

    async def __call__(self, row: dict[str, Any]) -> Measurements:
        raise AssertionError("the verifier must probe through probe_and_vouch")

    async def probe_and_vouch(self, row: dict[str, Any], decide: Decide | None) -> Measurements:
        client = await start_verifier_client(self.t)
        self.clients.append(client)
        try:
            m = await run_probe(client, self.target, 2, self.downloads, 5.0, decide)
        finally:
            await client.stop()
        self.measured.append(m)
        return m


def live_round(
    tmp_path: Path, faults: Faults | None, downloads: int = 4, expect_proof: bool = True
) -> tuple[Tunnel, Verifier, LiveProber, FakeFullNode, VouchLog]:
    """One verifier round (check_provider) against a live provider; the verifier is the tunnel's client."""
    # the provider keeps proofs of current epochs: the fake chain's time is EPOCH's
    t = Tunnel(tmp_path, slashing_manager=SLASHING, chain_clock=lambda: EPOCH * 60 + 30).standard()
    world, node = World(epoch=EPOCH), FakeFullNode()
    vouches = VouchLog.at(tmp_path / "home", t.client.address)

    async def main() -> tuple[Verifier, LiveProber]:
        server = await t.start_provider(faults=faults)
        with random_file(tmp_path, "probe.bin", SIZE), LocalWeb(tmp_path) as web:
            prober = LiveProber(t, ProbeTarget.parse(f"http://127.0.0.1:{web.port}/probe.bin"), downloads)
            assert isinstance(prober, VouchingProber)
            settings = VerifierSettings(thresholds=LOOSE, watch_equivocation=False)
            verifier = Verifier(
                FakeChain(world, t.client.address), node, FakeStore(), prober, settings, vouches=vouches
            )
            await verifier.check_provider({"address": t.provider.address})
        # the provider books proofs from its writer thread
        if expect_proof:
            await until(lambda: t.book.proofs(t.order.order_id), 15)
        await asyncio.sleep(0.3)  # time for anything else in flight to land
        await server.stop()
        return verifier, prober

    verifier, prober = run(main(), 60)  # type: ignore[misc]
    return t, verifier, prober, node, vouches


def test_passing_round_leaves_a_proof_for_the_attestation_epoch_in_the_providers_book(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flownet.verifier")
    t, verifier, prober, node, vouches = live_round(tmp_path, None)
    [m], [client] = prober.measured, prober.clients
    assert m.probes == (True,) * 4 and m.round_bytes == m.client_bytes > 4 * SIZE
    # exactly one proof: the verifier's, for the epoch its attestations would have named, over the round's bytes
    [proof] = t.book.proofs(t.order.order_id)
    assert (proof.epoch, proof.bytes_served) == (EPOCH, m.round_bytes)
    assert proof.order == t.order
    separator = service_proof_separator(CHAIN_ID, SLASHING)
    signer = recover_proof_signer(separator, t.order.order_id, proof.epoch, proof.bytes_served, proof.signature)
    assert signer == t.client.address == verifier.chain.address
    # what the provider's Defender looks up to strike this verifier from a dispute about EPOCH
    best = t.book.proof(t.provider.address, EPOCH, client=verifier.chain.address)
    assert best is not None and best.signature == proof.signature
    assert client.stats["proofs"] == 1 and t.server.stats["proofs"] == 1
    # recorded durably and logged; nothing attested
    assert vouches.vouches() == [(t.provider.address.lower(), EPOCH, m.round_bytes)]
    assert verifier.stats["vouches"] == 1 and node.posted == []
    assert f"vouching for provider {t.provider.address} in epoch {EPOCH}: {m.round_bytes} bytes" in caplog.text


def test_failing_round_sends_no_proof_although_bytes_flowed(tmp_path: Path) -> None:
    faults = Faults.parse(["drop-streams:every=2,after=1024"])
    t, verifier, prober, node, vouches = live_round(tmp_path, faults, downloads=6, expect_proof=False)
    [m], [client] = prober.measured, prober.clients
    assert m.availability == 0.5  # every 2nd stream cut after 1 KiB: unreachable fails
    assert m.round_bytes is not None and m.round_bytes > SIZE and client.total == m.client_bytes
    assert t.metered() == m.client_bytes  # the provider carried (and counted) those bytes
    assert t.book.proofs(t.order.order_id) == [] and t.book.proof(t.provider.address, EPOCH) is None
    assert client.stats["proofs"] == 0 and client.stats["receipts"] >= 1
    assert vouches.vouches() == [] and verifier.stats["vouches"] == 0
    # it attested the failure instead, for the same epoch
    assert [(a.verifier, a.epoch, a.kind) for a in node.posted] == [(t.client.address, EPOCH, UNREACHABLE)]
    assert vouches.attested(t.provider.address, EPOCH)


class FakeVouchingProber:
    """A VouchingProber that returns fixed measurements and records the proofs it was asked to send."""

    def __init__(self, m: Measurements) -> None:
        self.m = m
        self.sent: list[tuple[int, int]] = []

    async def __call__(self, row: dict[str, Any]) -> Measurements:
        return self.m

    async def probe_and_vouch(self, row: dict[str, Any], decide: Decide | None) -> Measurements:
        chosen = decide(self.m) if decide is not None else None
        if chosen is not None:
            self.sent.append(chosen)
        return self.m


def verifier_at(home: Path, world: World, node: FakeFullNode, store: FakeStore, address: str, m: Measurements) -> Any:
    """A verifier process: a new instance over the VouchLog under `home` (the same home: a restart)."""
    vouches = VouchLog.at(home, address)
    settings = VerifierSettings(thresholds=Thresholds(min_throughput=1.0), adopt_epochs=1, watch_equivocation=False)
    prober = FakeVouchingProber(m)
    return Verifier(FakeChain(world, address), node, store, prober, settings, vouches=vouches), prober, vouches


def mine(node: FakeFullNode, verifier: str) -> list[tuple[int, int]]:
    return [(a.epoch, a.kind) for a in node.posted if a.verifier == verifier]


def test_vouched_epoch_is_never_attested_nor_adopted_even_after_a_restart(tmp_path: Path) -> None:
    world, node, store = World(epoch=10, quorum=3), FakeFullNode(), FakeStore()
    home = tmp_path / "home"

    v1, p1, log1 = verifier_at(home, world, node, store, V1, HONEST)
    asyncio.run(v1.round())
    assert p1.sent == [(10, HONEST.client_bytes)] and log1.vouched(PROVIDER, 10) and node.posted == []
    log1.close()

    # another verifier sees the provider fail in epoch 10 and posts its attestation (quorum 3: no dispute)
    v2, _, log2 = verifier_at(tmp_path / "home2", world, node, store, V2, DROPPING)
    asyncio.run(v2.round())
    assert mine(node, V2) == [(10, UNREACHABLE)]
    log2.close()

    # V1 restarts (same home) and sees the failure too, still in epoch 10: no attestation of its own, no co-signature
    v1, p1, log1 = verifier_at(home, world, node, store, V1, DROPPING)
    asyncio.run(v1.round())
    assert mine(node, V1) == [] and p1.sent == [] and v1.stats["attestations"] == 0

    # epoch 11: V2's group of epoch 10 is the most signed, but V1 vouched for 10, so it signs its own epoch 11
    world.epoch = 11
    asyncio.run(v1.round())
    assert mine(node, V1) == [(11, UNREACHABLE)]
    [a] = [a for a in node.posted if a.verifier == V1]
    assert a.evidence_cid != node.posted[0].evidence_cid  # not V2's adopted evidence
    log1.close()

    # and the converse, after another restart: a passing round in the epoch it attested is not vouched for
    v1, p1, log1 = verifier_at(home, world, node, store, V1, HONEST)
    asyncio.run(v1.round())
    assert p1.sent == [] and not log1.vouched(PROVIDER, 11) and log1.vouches() == [(PROVIDER.lower(), 10, 100_000)]
    assert mine(node, V1) == [(11, UNREACHABLE)]
    # the last guard: no path signs an attestation for the vouched epoch
    v1.sign_and_post(PROVIDER, 10, UNREACHABLE, node.posted[0].evidence_cid)
    assert mine(node, V1) == [(11, UNREACHABLE)] and v1.stats["attestations"] == 0
    log1.close()


def test_a_round_without_bytes_or_without_a_vouching_prober_vouches_for_nothing(tmp_path: Path) -> None:
    world, node, store = World(), FakeFullNode(), FakeStore()
    idle = Measurements((0.01,), (True,) * 4, (5e6,) * 4, client_bytes=100_000, provider_metered=100_000, round_bytes=0)
    v1, p1, log1 = verifier_at(tmp_path, world, node, store, V1, idle)
    asyncio.run(v1.round())
    assert p1.sent == [] and log1.vouches() == []
    # a plain prober (an async callable) is never asked: nothing is recorded either
    plain = Verifier(FakeChain(world, V2), node, store, FakeVouchingProber(HONEST).__call__, vouches=log1)
    asyncio.run(plain.round())
    assert log1.vouches() == [] and node.posted == []
    log1.close()


def test_vouch_log_is_durable_and_case_insensitive(tmp_path: Path) -> None:
    provider = "0x" + "ab" * 20
    first = VouchLog.at(tmp_path, "0x" + "AB" * 20)
    first.record_vouch("0x" + "AB" * 20, 7, 500)
    first.record_vouch(provider, 7, 300)  # a smaller later round does not lower the record
    first.record_attestation(provider, 8)
    first.close()
    again = VouchLog.at(tmp_path, provider)  # the same verifier, however its address is spelled
    assert again.path == first.path and again.path.parent == tmp_path / "verifier"
    assert again.vouched("0x" + "Ab" * 20, 7) and not again.vouched(provider, 8)
    assert again.attested(provider, 8) and not again.attested(provider, 7)
    assert again.vouches() == [(provider, 7, 500)]
    again.close()


def test_client_vouch_sends_one_proof_and_refuses_what_it_cannot_sign(tmp_path: Path) -> None:
    async def main() -> None:
        # the provider keeps proofs of current epochs: the fake chain is in epoch 5
        t = Tunnel(tmp_path, slashing_manager=SLASHING, chain_clock=lambda: 5 * 60 + 30).standard()
        server = await t.start_provider()
        client = await start_verifier_client(t)
        with pytest.raises(TunnelError, match="no live session"):
            client.vouch(5, 1000)  # no session yet
        async with EchoServer() as echo:
            status, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", echo.port)
            assert status == 0
            writer.write(b"v" * 20_000)
            assert await asyncio.wait_for(reader.readexactly(20_000), 10) == b"v" * 20_000
            writer.close()
            await asyncio.sleep(0.3)  # quiet: an ordinary client would prove its epoch now; this one does not
            assert client.stats["proofs"] == 0 and t.book.proofs(t.order.order_id) == []
            with pytest.raises(TunnelError, match="0 bytes served"):
                client.vouch(5, 0)
            client.vouch(5, 12_345)
            await until(lambda: len(t.book.proofs(t.order.order_id)) == 1, 15)
            await client.stop()
        [proof] = t.book.proofs(t.order.order_id)
        assert (proof.epoch, proof.bytes_served) == (5, 12_345) and client.stats["proofs"] == 1
        client.config.proofs = None
        with pytest.raises(TunnelError, match="no service proof signer"):
            client.vouch(6, 1)
        await server.stop()

    run(main(), 60)
