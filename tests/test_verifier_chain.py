"""The verifier against the real SlashingManager and Staking on anvil.

It checks SlashingChain (over `flownet.chain.slashing`): its views (config, disputeOf, openDisputeOf, stakeOf),
signature recovery against the contract's own attestation digest, and a whole round of two verifiers
(attest, converge, open at quorum, execute after the challenge window) plus an equivocation proof.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import new_account

from flownet.agents.verifier import Equivocation, Verifier, VerifierSettings
from flownet.agents.verifier_io import SlashingChain
from flownet.chain.connect import http_web3
from flownet.chain.deploy import TOKEN_UNIT, DeployConfig, deploy
from flownet.chain.market import FlowNet, Role
from flownet.chain.slashing import Slashing
from flownet.chain.tx import Sender
from flownet.core.heartbeat import Heartbeat, HeartbeatDomain, sign_heartbeat
from flownet.core.verdicts import Attestation, Measurements, Thresholds
from flownet.devnet import Anvil


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield


class Board:
    """The full node's attestation board and provider listing, in memory."""

    def __init__(self, provider: str) -> None:
        self.provider_address = provider
        self.posted: list[Attestation] = []
        self.detail: dict[str, Any] = {"equivocating_epochs": [], "recent_heartbeats": []}
        self.equivocation_items: list[dict[str, Any]] = []

    def providers(self) -> list[dict[str, Any]]:
        return [{"address": self.provider_address}]

    def provider(self, address: str) -> dict[str, Any]:
        return self.detail

    def equivocations(self, provider: str) -> list[Equivocation]:
        return [Equivocation.from_json(item) for item in self.equivocation_items]

    def post_attestation(self, attestation: Attestation) -> None:
        self.posted.append(Attestation.from_json(attestation.to_json()))

    def attestations(self, provider: str, epoch: int, kind: int) -> list[Attestation]:
        return [a for a in self.posted if (a.provider.lower(), a.epoch, a.kind) == (provider.lower(), epoch, kind)]


class Blobs:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        from flownet.blobs import cid_for

        cid = cid_for(data)
        self.data[cid] = data
        return cid

    def get(self, cid: str) -> bytes:
        return self.data[cid]


OVER_METERING = Measurements((0.01,), (True,) * 4, (5e6,) * 4, client_bytes=1 << 20, provider_metered=3 << 19)


def test_two_verifiers_slash_an_over_metering_provider_on_chain(anvil: Anvil, stand_in: None) -> None:
    w3 = http_web3(anvil.url)
    deployer = new_account(w3)
    # a long epoch, so both verifiers probe in the same one whatever the machine's speed
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig.devnet(epoch_seconds=3600))
    owner = FlowNet(w3, deployment, deployer)
    people = [FlowNet(w3, deployment, new_account(w3)) for _ in range(4)]
    for person in people:
        owner.transfer(person.address, 20_000 * TOKEN_UNIT)
        person.approve(person.staking.address)
    provider, v1, v2, outsider = people
    provider.stake(Role.PROVIDER, 10_000 * TOKEN_UNIT)
    provider.set_offer(2 * TOKEN_UNIT, "bafkreitestprovidermetadata")
    v1.stake(Role.VERIFIER, 500 * TOKEN_UNIT)
    v2.stake(Role.VERIFIER, 500 * TOKEN_UNIT)

    c1, c2 = SlashingChain(w3, deployment, v1.account), SlashingChain(w3, deployment, v2.account)
    assert c1.quorum() == 2 and c1.current_epoch() == w3.eth.get_block("latest")["timestamp"] // 3600
    assert c1.is_staked_verifier(v2.address) and not c1.is_staked_verifier(outsider.address)
    assert not c1.is_staked_verifier(provider.address)

    board, blobs = Board(provider.address), Blobs()
    settings = VerifierSettings(thresholds=Thresholds(min_throughput=1.0))

    async def over_metering(row: dict[str, Any]) -> Measurements:
        return OVER_METERING

    verifier1 = Verifier(c1, board, blobs, over_metering, settings)
    verifier2 = Verifier(c2, board, blobs, over_metering, settings)
    # an outsider's "attestation" (not a staked verifier) never counts
    epoch = c1.current_epoch()
    asyncio.run(verifier1.round())
    cid = board.posted[0].evidence_cid
    forged = Slashing(w3, deployment).sign_attestation(outsider.account, provider.address, epoch, 3, cid)
    board.posted.append(Attestation(provider.address, epoch, 3, cid, outsider.address, forged))
    assert c1.attestation_signer(board.posted[0]) == v1.address  # recovers against the contract's digest
    assert [a.verifier for a in verifier1.valid_attestations(provider.address, epoch, 3)] == [v1.address]
    asyncio.run(verifier1.round())
    assert c1.open_dispute_of(provider.address, epoch) == 0  # one signature of two

    asyncio.run(verifier2.round())  # adopts v1's CID, completes the quorum, opens the dispute on chain
    dispute_id = c1.open_dispute_of(provider.address, epoch)
    assert dispute_id == 1
    view = Slashing(w3, deployment).dispute(dispute_id)
    assert (view.provider, view.epoch, view.kind, view.evidence_cid) == (provider.address, epoch, 3, cid)
    assert sorted(view.verifiers) == sorted([v1.address, v2.address]) and view.due > 0
    status, ends = c1.dispute_state(dispute_id)
    assert status == 1 and ends > c1.chain_time()

    staking = deployment.contract(w3, "Staking")
    before = staking.functions.stakeOf(provider.address).call()[0]
    asyncio.run(verifier1.round())  # the window is still open: nothing executed
    assert c1.dispute_state(dispute_id)[0] == 1
    w3.provider.make_request("evm_increaseTime", [61])  # type: ignore[attr-defined]
    w3.provider.make_request("evm_mine", [])  # type: ignore[attr-defined]
    verifier1.execute_due()
    assert c1.dispute_state(dispute_id)[0] == 3  # Executed
    assert staking.functions.stakeOf(provider.address).call()[0] < before
    assert verifier1.stats["executed"] == 1 and verifier2.stats["disputes_opened"] == 1
    assert json.loads(blobs.get(cid))["verdicts"]["metering"] == "fail"


def test_equivocation_proof_on_chain(anvil: Anvil, stand_in: None) -> None:
    w3 = http_web3(anvil.url)
    deployer = new_account(w3)
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig.devnet())
    owner = FlowNet(w3, deployment, deployer)
    provider, reporter = (FlowNet(w3, deployment, new_account(w3)) for _ in range(2))
    for person in (provider, reporter):
        owner.transfer(person.address, 20_000 * TOKEN_UNIT)
        person.approve(person.staking.address)
    provider.stake(Role.PROVIDER, 10_000 * TOKEN_UNIT)
    reporter.stake(Role.VERIFIER, 500 * TOKEN_UNIT)
    chain = SlashingChain(w3, deployment, reporter.account)
    domain = HeartbeatDomain(deployment.chain_id, deployment.addresses["Staking"])
    now = int(w3.eth.get_block("latest")["timestamp"])
    a = sign_heartbeat(provider.account, domain, Heartbeat.create(provider.address, "1.2.3.4:7443", 10, now))
    b = sign_heartbeat(provider.account, domain, Heartbeat.create(provider.address, "5.6.7.8:7443", 10, now + 1))
    epoch = a.heartbeat.epoch
    if b.heartbeat.epoch != epoch:  # crossed an epoch boundary between the two: sign b again in a's epoch
        b = sign_heartbeat(provider.account, domain, Heartbeat.create(provider.address, "5.6.7.8:7443", 10, now - 1))
    board = Board(provider.address)
    # the item exactly as GET /providers/{address}/equivocations renders it
    board.equivocation_items = [{"provider": provider.address, "epoch": epoch, "a": a.to_json(), "b": b.to_json()}]

    async def honest(row: dict[str, Any]) -> Measurements:
        return Measurements((0.01,), (True,), (5e6,), 10, 10)

    verifier = Verifier(chain, board, Blobs(), honest, VerifierSettings(thresholds=Thresholds(min_throughput=1.0)))
    staking = deployment.contract(w3, "Staking")
    before = staking.functions.stakeOf(provider.address).call()[0]
    asyncio.run(verifier.round())
    assert verifier.stats["equivocations"] == 1
    assert chain.is_epoch_slashed(provider.address, epoch)
    assert staking.functions.stakeOf(provider.address).call()[0] < before
    asyncio.run(verifier.round())  # never twice
    assert verifier.stats["equivocations"] == 1
