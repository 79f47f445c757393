"""The verifier agent's logic with fakes for the full node, the chain and the blob store.

The fake chain keeps disputes like SlashingManager does (one open dispute per provider and epoch,
quorum of distinct staked verifiers over the same CID, execution after the challenge window), and
a fake "signature" names exactly what was signed, so a signature over another CID never counts.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from flownet.agents.verifier import Equivocation, Verifier, VerifierSettings
from flownet.blobs import cid_for
from flownet.core.heartbeat import SignedHeartbeat
from flownet.core.verdicts import Attestation, Measurements, Thresholds
from flownet.errors import ChainError

PROVIDER = "0x" + "11" * 20
V1, V2, V3 = ("0x" + c * 40 for c in "abc")
FAILING = Measurements((0.01,), (True,) * 4, (5e6,) * 4, client_bytes=100_000, provider_metered=150_000)
HONEST = Measurements((0.01,), (True,) * 4, (5e6,) * 4, client_bytes=100_000, provider_metered=100_000)
DROPPING = Measurements((0.01,), (True, False, True, False), (5e6,) * 2, client_bytes=50_000, provider_metered=50_000)


@dataclass
class World:
    """The chain: epochs, time, staked verifiers, disputes."""

    epoch: int = 10
    time: int = 1_000
    quorum: int = 2
    challenge: int = 60
    staked: set[str] = field(default_factory=lambda: {V1.lower(), V2.lower(), V3.lower()})
    disputes: dict[int, dict[str, Any]] = field(default_factory=dict)
    slashed: set[tuple[str, int]] = field(default_factory=set)
    used_cids: set[str] = field(default_factory=set)
    equivocation_calls: list[tuple[SignedHeartbeat, SignedHeartbeat, str]] = field(default_factory=list)


def fake_signature(verifier: str, provider: str, epoch: int, kind: int, cid: str) -> bytes:
    return f"{verifier.lower()}|{provider.lower()}|{epoch}|{kind}|{cid}".encode()


class FakeChain:
    def __init__(self, world: World, address: str) -> None:
        self.world = world
        self.address = address

    def current_epoch(self) -> int:
        return self.world.epoch

    def quorum(self) -> int:
        return self.world.quorum

    def chain_time(self) -> int:
        return self.world.time

    def sign_attestation(self, provider: str, epoch: int, kind: int, evidence_cid: str) -> bytes:
        return fake_signature(self.address, provider, epoch, kind, evidence_cid)

    def attestation_signer(self, a: Attestation) -> str | None:
        signer, provider, epoch, kind, cid = a.signature.decode().split("|")
        if (provider, int(epoch), int(kind), cid) != (a.provider.lower(), a.epoch, a.kind, a.evidence_cid):
            return "0x" + "00" * 20  # a signature over something else recovers to some other address
        return signer

    def is_staked_verifier(self, address: str) -> bool:
        return address.lower() in self.world.staked

    def open_dispute_of(self, provider: str, epoch: int) -> int:
        for i, d in self.world.disputes.items():
            if d["provider"] == provider and d["epoch"] == epoch and d["status"] == 1:
                return i
        return 0

    def is_epoch_slashed(self, provider: str, epoch: int) -> bool:
        return (provider, epoch) in self.world.slashed

    def open_dispute(self, provider: str, epoch: int, kind: int, cid: str, signatures: list[bytes]) -> int:
        if self.open_dispute_of(provider, epoch):
            raise ChainError("SlashingDisputeAlreadyOpen")
        if cid in self.world.used_cids:
            raise ChainError("evidence used")
        signers = []
        for sig in signatures:
            signer = self.attestation_signer(Attestation(provider, epoch, kind, cid, "", sig))
            assert signer is not None and signer in self.world.staked and signer not in signers, signer
            signers.append(signer)
        if len(signers) < self.world.quorum:
            raise ChainError("SlashingTooFewAttestations")
        self.world.used_cids.add(cid)
        dispute_id = len(self.world.disputes) + 1
        self.world.disputes[dispute_id] = {
            "provider": provider,
            "epoch": epoch,
            "kind": kind,
            "cid": cid,
            "status": 1,
            "ends": self.world.time + self.world.challenge,
            "verifiers": signers,
            "opener": self.address,
        }
        return dispute_id

    def dispute_state(self, dispute_id: int) -> tuple[int, int]:
        d = self.world.disputes[dispute_id]
        return d["status"], d["ends"]

    def open_disputes(self) -> list[int]:
        return [i for i, d in self.world.disputes.items() if d["status"] == 1]

    def execute(self, dispute_id: int) -> None:
        d = self.world.disputes[dispute_id]
        if d["status"] != 1 or self.world.time < d["ends"]:
            raise ChainError("SlashingDisputeNotOpen / challenge window")
        d["status"] = 3
        d["executor"] = self.address
        self.world.slashed.add((d["provider"], d["epoch"]))

    def slash_equivocation(self, a: SignedHeartbeat, b: SignedHeartbeat, evidence_cid: str) -> None:
        self.world.equivocation_calls.append((a, b, evidence_cid))
        self.world.slashed.add((a.heartbeat.provider, a.heartbeat.epoch))


class FakeFullNode:
    """POST/GET /attestations kept in posting order; `hold` delays posts until `release`."""

    def __init__(self, detail: dict[str, Any] | None = None) -> None:
        self.posted: list[Attestation] = []
        self.held: list[Attestation] = []
        self.hold = False
        self.detail = detail or {"address": PROVIDER, "equivocating_epochs": [], "recent_heartbeats": []}
        self.equivocation_items: list[dict[str, Any]] = []  # GET /providers/{address}/equivocations items

    def providers(self) -> list[dict[str, Any]]:
        return [{"address": PROVIDER, "metadata": {"endpoint": "127.0.0.1:7443"}}]

    def provider(self, address: str) -> dict[str, Any]:
        return self.detail

    def equivocations(self, provider: str) -> list[Equivocation]:
        return [Equivocation.from_json(json.loads(json.dumps(item))) for item in self.equivocation_items]

    def post_attestation(self, attestation: Attestation) -> None:
        (self.held if self.hold else self.posted).append(attestation)

    def release(self) -> None:
        self.posted += self.held
        self.held = []
        self.hold = False

    def attestations(self, provider: str, epoch: int, kind: int) -> list[Attestation]:
        # through JSON, as the real API answers
        return [
            Attestation.from_json(json.loads(json.dumps(a.to_json())))
            for a in self.posted
            if a.provider.lower() == provider.lower() and a.epoch == epoch and a.kind == kind
        ]


class FakeStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        cid = cid_for(data)
        self.blobs[cid] = data
        return cid

    def get(self, cid: str) -> bytes:
        return self.blobs[cid]


def prober(m: Measurements) -> Any:
    async def probe(row: dict[str, Any]) -> Measurements:
        return m

    return probe


def verifier(world: World, node: FakeFullNode, store: FakeStore, address: str, m: Measurements, **kw: Any) -> Verifier:
    settings = VerifierSettings(thresholds=Thresholds(min_throughput=1.0), **kw)
    clock = iter(range(10**6))
    return Verifier(FakeChain(world, address), node, store, prober(m), settings, clock=lambda: float(next(clock)))


def run_round(v: Verifier) -> None:
    asyncio.run(v.round())


def test_two_verifiers_reach_quorum_open_and_execute() -> None:
    world, node, store = World(), FakeFullNode(), FakeStore()
    v1 = verifier(world, node, store, V1, FAILING)
    v2 = verifier(world, node, store, V2, FAILING)
    run_round(v1)
    assert [(a.verifier, a.kind) for a in node.posted] == [(V1, 3)]  # metering, kind 3
    own = node.posted[0].evidence_cid
    doc = json.loads(store.get(own))
    assert doc["provider"] == PROVIDER and doc["epoch"] == 10 and doc["verifier"] == V1
    assert doc["verdicts"]["metering"] == "fail" and doc["measurements"]["provider_metered"] == 150_000
    assert not world.disputes  # 1 of 2
    run_round(v2)  # confirms the failure itself, adopts V1's CID, completes the quorum and opens the dispute
    assert [a.evidence_cid for a in node.posted] == [own, own]
    assert len(world.disputes) == 1
    d = world.disputes[1]
    assert (d["provider"], d["epoch"], d["kind"], d["cid"]) == (PROVIDER, 10, 3, own)
    assert sorted(d["verifiers"]) == [V1, V2] and d["opener"] == V2
    run_round(v1)  # finds the dispute open; the window has not passed
    assert 1 in v1.disputes and world.disputes[1]["status"] == 1
    world.time += 61
    world.epoch += 3
    run_round(v1)
    assert world.disputes[1]["status"] == 3 and world.disputes[1]["executor"] == V1
    run_round(v2)  # sees dispute 1 executed; the provider still fails in epoch 13, which V1 attested too
    assert 1 in v2.done and 1 not in v2.disputes
    assert v1.stats["executed"] == 1
    assert world.disputes[2]["epoch"] == 13 and v2.stats["disputes_opened"] == 2


def test_concurrent_first_posts_converge_on_one_cid() -> None:
    world, node, store = World(), FakeFullNode(), FakeStore()
    v1 = verifier(world, node, store, V1, FAILING)
    v2 = verifier(world, node, store, V2, FAILING)
    node.hold = True  # neither sees the other's post before signing its own evidence
    run_round(v1)
    run_round(v2)
    node.release()
    cids = {a.evidence_cid for a in node.posted}
    assert len(cids) == 2 and not world.disputes
    winner = min(cids)  # a 1:1 tie goes to the smallest CID, for every verifier alike
    loser = v1 if v1.signed[(PROVIDER, 10, 3)] != winner else v2
    run_round(loser)  # its re-check joins the winner and completes the quorum
    assert len(world.disputes) == 1 and world.disputes[1]["cid"] == winner
    assert sorted(world.disputes[1]["verifiers"]) == [V1, V2]


def test_failure_across_an_epoch_boundary_still_reaches_quorum() -> None:
    world, node, store = World(), FakeFullNode(), FakeStore()
    v1 = verifier(world, node, store, V1, DROPPING)
    run_round(v1)  # unreachable (kind 0) in epoch 10
    world.epoch = 11
    v2 = verifier(world, node, store, V2, DROPPING)
    run_round(v2)  # fails it in epoch 11 and co-signs the epoch-10 group
    assert len(world.disputes) == 1
    assert (world.disputes[1]["epoch"], world.disputes[1]["kind"]) == (10, 0)
    # with adopt_epochs=0 the same situation never reaches quorum
    world2, node2, store2 = World(), FakeFullNode(), FakeStore()
    run_round(verifier(world2, node2, store2, V1, DROPPING, adopt_epochs=0))
    world2.epoch = 11
    run_round(verifier(world2, node2, store2, V2, DROPPING, adopt_epochs=0))
    assert not world2.disputes and {a.epoch for a in node2.posted} == {10, 11}


def test_honest_provider_gets_no_attestation() -> None:
    world, node, store = World(), FakeFullNode(), FakeStore()
    v1 = verifier(world, node, store, V1, HONEST)
    run_round(v1)
    assert node.posted == [] and store.blobs == {} and v1.stats["probes"] == 1


def test_forged_and_unstaked_attestations_do_not_count() -> None:
    world, node, store = World(), FakeFullNode(), FakeStore()
    world.staked.discard(V3.lower())
    v1 = verifier(world, node, store, V1, FAILING)
    run_round(v1)
    cid = node.posted[0].evidence_cid
    # V3 is not staked; "V2" here is V3 signing in V2's name; V2 signs another CID but posts it under this one
    node.posted.append(Attestation(PROVIDER, 10, 3, cid, V3, fake_signature(V3, PROVIDER, 10, 3, cid)))
    node.posted.append(Attestation(PROVIDER, 10, 3, cid, V2, fake_signature(V3, PROVIDER, 10, 3, cid)))
    node.posted.append(Attestation(PROVIDER, 10, 3, cid, V2, fake_signature(V2, PROVIDER, 10, 3, "bafyother")))
    run_round(v1)
    assert not world.disputes
    assert [a.verifier for a in v1.valid_attestations(PROVIDER, 10, 3)] == [V1]


def test_contradicting_evidence_is_not_adopted() -> None:
    world, node, store = World(), FakeFullNode(), FakeStore()
    lying = store.put(json.dumps({"provider": PROVIDER, "epoch": 10, "verdicts": {"metering": "pass"}}).encode())
    node.posted.append(Attestation(PROVIDER, 10, 3, lying, V3, fake_signature(V3, PROVIDER, 10, 3, lying)))
    v1 = verifier(world, node, store, V1, FAILING)
    run_round(v1)
    mine = v1.signed[(PROVIDER, 10, 3)]
    assert mine != lying and json.loads(store.get(mine))["verifier"] == V1
    assert not world.disputes


def test_quorum_one_opens_at_once_and_never_twice() -> None:
    world, node, store = World(quorum=1), FakeFullNode(), FakeStore()
    v1 = verifier(world, node, store, V1, FAILING)
    v2 = verifier(world, node, store, V2, FAILING)
    run_round(v1)
    assert len(world.disputes) == 1 and world.disputes[1]["verifiers"] == [V1]
    run_round(v2)  # same epoch: already disputed, no second attestation or dispute
    assert len(world.disputes) == 1 and 1 in v2.disputes and len(node.posted) == 1


def hb_json(epoch: int, endpoint: str, ts: int) -> dict[str, Any]:
    """A signed heartbeat as GET /providers/{address}/equivocations renders it (fake signature)."""
    return {
        "provider": PROVIDER,
        "epoch": epoch,
        "endpointHash": "0x" + endpoint * 64,
        "load": 5,
        "timestamp": ts,
        "signature": "0x" + "1b" * 65,
    }


def test_equivocation_is_proved_once() -> None:
    world, store = World(), FakeStore()
    node = FakeFullNode()
    node.equivocation_items = [{"provider": PROVIDER, "epoch": 9, "a": hb_json(9, "a", 271), "b": hb_json(9, "b", 280)}]
    v1 = verifier(world, node, store, V1, HONEST)
    run_round(v1)
    run_round(v1)
    assert len(world.equivocation_calls) == 1
    a, b, cid = world.equivocation_calls[0]
    assert a.heartbeat.endpoint_hash == bytes.fromhex("aa" * 32) and b.heartbeat.endpoint_hash == bytes.fromhex(
        "bb" * 32
    )
    assert a.heartbeat.epoch == b.heartbeat.epoch == 9 and a.heartbeat.provider == PROVIDER
    assert a.signature == bytes.fromhex("1b" * 65)
    assert json.loads(store.get(cid))["heartbeats"][1]["endpointHash"] == "0x" + "bb" * 32


def test_run_stops_after_rounds() -> None:
    world, node, store = World(), FakeFullNode(), FakeStore()
    v1 = verifier(world, node, store, V1, HONEST)
    asyncio.run(v1.run(rounds=3, duration=None, interval=0.0, stop=asyncio.Event()))
    assert v1.stats["probes"] == 3


def test_run_retries_then_gives_up_after_max_failures() -> None:
    world, node, store = World(), FakeFullNode(), FakeStore()
    calls = []

    def broken() -> list[dict[str, Any]]:
        calls.append(1)
        raise ChainError("full node down")

    node.providers = broken  # type: ignore[method-assign]
    v1 = verifier(world, node, store, V1, HONEST, max_failures=2)
    with pytest.raises(ChainError, match="full node down"):
        asyncio.run(v1.run(rounds=5, duration=None, interval=0.0, stop=asyncio.Event()))
    assert len(calls) == 2


def test_one_failing_provider_does_not_stop_the_round() -> None:
    world, node, store = World(), FakeFullNode(), FakeStore()
    node.providers = lambda: [{"address": "0x" + "99" * 20}, {"address": PROVIDER}]  # type: ignore[method-assign]
    seen = []

    async def probe(row: dict[str, Any]) -> Measurements:
        seen.append(row["address"])
        if row["address"] != PROVIDER:
            raise RuntimeError("no endpoint")
        return FAILING

    v1 = Verifier(FakeChain(world, V1), node, store, probe, VerifierSettings(thresholds=Thresholds(min_throughput=1.0)))
    asyncio.run(v1.round())
    assert seen == ["0x" + "99" * 20, PROVIDER] and len(node.posted) == 1


def test_a_new_run_follows_disputes_opened_before_it() -> None:
    world, node, store = World(quorum=1), FakeFullNode(), FakeStore()
    run_round(verifier(world, node, store, V1, FAILING))
    assert world.disputes[1]["status"] == 1
    world.time += 61
    fresh = verifier(world, node, store, V2, HONEST)  # another process, no memory of dispute 1
    asyncio.run(fresh.run(rounds=1, duration=None, interval=0.0, stop=asyncio.Event()))
    assert world.disputes[1]["status"] == 3 and world.disputes[1]["executor"] == V2
