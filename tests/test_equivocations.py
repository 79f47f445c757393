"""Equivocation evidence that cannot be buried (issue 10, attack 6).

The full node keeps the first two signed heartbeats of a (provider, epoch) naming different endpoints
(migration 0006), also past the per-epoch heartbeat cap, and serves them for the epochs still within
the statute of limitations at ``GET /providers/{address}/equivocations``; the verifier proves them
from there and retries a proof the chain refuses for a transient reason. The store and the route run
over a ledger filled with synthetic events; the whole path runs on anvil.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import new_account
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from ledger_helpers import CHAIN_ID, CONTRACTS, index_once, make_log
from test_verifier_agent import HONEST, PROVIDER, V1, FakeChain, FakeFullNode, FakeStore, World, hb_json, prober

from flownet.agents.verifier import EQUIVOCATION_MAX_BACKOFF, Equivocation, Verifier, VerifierSettings
from flownet.agents.verifier_io import HttpFullNode, SlashingChain
from flownet.chain.connect import http_web3
from flownet.chain.deploy import TOKEN_UNIT, DeployConfig, Deployment, deploy
from flownet.chain.market import FlowNet, Role
from flownet.chain.tx import Sender
from flownet.cli.fullnode import build_api
from flownet.config import Settings
from flownet.core.heartbeat import (
    Heartbeat,
    HeartbeatDomain,
    SignedHeartbeat,
    endpoint_hash,
    recover_signer,
    sign_heartbeat,
)
from flownet.core.verdicts import Measurements, Thresholds
from flownet.devnet import Anvil
from flownet.errors import ChainError, TransactionFailed
from indexer import db as migrations
from indexer.api import create_app
from indexer.api_equivocations import EquivocationPage
from indexer.apistore import ApiStore
from indexer.asgiclient import InProcessClient
from indexer.store import Block, Ledger

E18 = 10**18
NOW = 1_700_000_015
EPOCH = NOW // 30
STATUTE = 100
DOMAIN = HeartbeatDomain(CHAIN_ID, CONTRACTS["Staking"])
A, B, C = "a.example.net:7443", "b.example.net:7443", "c.example.net:7443"


def key(n: int) -> LocalAccount:
    return Account.from_key(keccak(text=f"equivocation test key {n}"))


P, Q, V = key(0), key(1), key(2)  # two providers, a verifier


def signed(who: LocalAccount, endpoint: str, ts: int, load: int = 0) -> SignedHeartbeat:
    return sign_heartbeat(who, DOMAIN, Heartbeat.create(who.address, endpoint, load, ts))


def fill(db: Path) -> None:
    """P and Q staked as providers, V as a verifier; P slashed for equivocation in EPOCH - 3."""
    logs = [
        make_log("Staking", "Staked", 1, n, account=who.address, role=role, amount=1_000 * E18, active=1_000 * E18)
        for n, (who, role) in enumerate(((P, 1), (Q, 1), (V, 2)))
    ]
    logs.append(
        make_log("SlashingManager", "EquivocationSlashed", 2, 0, provider=P.address, epoch=EPOCH - 3,
                 reporter=V.address, endpointA="0x" + endpoint_hash(A).hex(), endpointB="0x" + endpoint_hash(B).hex(),
                 evidenceCid="bafkreiequivocation", slashed=100 * E18, reward=50 * E18, burned=50 * E18)
    )  # fmt: skip
    ledger = Ledger(db, CONTRACTS, CHAIN_ID)
    blocks = [Block(n, f"0x{n:064x}", f"0x{n - 1:064x}") for n in (1, 2)]
    ledger.apply(blocks, logs, finalized=2, cursor=blocks[-1])
    ledger.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[InProcessClient, ApiStore]]:
    db = tmp_path / "node.db"
    fill(db)
    app = create_app(db, CHAIN_ID, CONTRACTS["Staking"], clock=lambda: NOW, statute_epochs=STATUTE)
    with InProcessClient(app) as client:
        yield client, app.state.store
    app.state.reader.close()
    app.state.store.close()


def page(client: InProcessClient, who: str, query: str = "") -> dict[str, Any]:
    response = client.get(f"/providers/{who}/equivocations{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    EquivocationPage.model_validate(body)
    return body


# ----------------------------------------------------------------------------------------- the store


def test_a_conflicting_heartbeat_past_the_epoch_cap_is_kept_as_evidence(node: tuple[InProcessClient, ApiStore]) -> None:
    client, store = node
    start = EPOCH * 30
    for load in range(12):  # the cap (12 per epoch) filled with heartbeats naming A
        assert client.post("/heartbeats", json=signed(P, A, start + load, load).to_json()).status_code == 201
    over = client.post("/heartbeats", json=signed(P, B, start + 12).to_json())
    assert over.status_code == 429 and over.json()["error"] == "too_many", over.text
    assert "kept as equivocation evidence" in over.json()["message"]
    third = client.post("/heartbeats", json=signed(P, C, start + 13).to_json())
    assert third.status_code == 429 and "kept" not in third.json()["message"]  # one pair per epoch is enough
    again = client.post("/heartbeats", json=signed(P, B, start + 12).to_json())
    assert again.status_code == 429  # the refused heartbeat was not stored, but its evidence stays single

    with sqlite3.connect(store.path) as conn:
        stored = conn.execute("SELECT COUNT(*) FROM heartbeats WHERE epoch = ?", (EPOCH,)).fetchone()[0]
    assert stored == 12  # the cap still holds for ordinary heartbeats
    body = page(client, P.address)
    assert body["total"] == 1 and body["current_epoch"] == EPOCH and body["statute_epochs"] == STATUTE
    (item,) = body["items"]
    assert (item["provider"], item["epoch"], item["slashed"]) == (P.address, EPOCH, False)
    first, second = SignedHeartbeat.from_json(item["a"]), SignedHeartbeat.from_json(item["b"])
    assert first == signed(P, A, start, 0) and second == signed(P, B, start + 12)
    assert recover_signer(DOMAIN, first) == recover_signer(DOMAIN, second) == P.address
    assert client.get(f"/providers/{P.address}").json()["equivocating_epochs"] == [EPOCH]


def test_other_timestamps_and_loads_for_one_endpoint_are_no_equivocation(
    node: tuple[InProcessClient, ApiStore],
) -> None:
    client, _ = node
    for n in range(5):
        assert client.post("/heartbeats", json=signed(P, A, NOW - n, load=100 * n).to_json()).status_code == 201
    assert page(client, P.address)["total"] == 0
    assert client.get(f"/providers/{P.address}").json()["equivocating_epochs"] == []


def test_the_store_keeps_the_first_pair_of_each_epoch(node: tuple[InProcessClient, ApiStore]) -> None:
    client, store = node
    start = (EPOCH - 1) * 30
    for endpoint, ts in ((A, start), (A, start + 1), (B, start + 2), (C, start + 3), (A, start + 4)):
        store.record_heartbeat(signed(P, endpoint, ts), float(ts))
    store.record_heartbeat(signed(P, B, start + 30), float(start + 30))  # next epoch, one endpoint: nothing
    store.record_heartbeat(signed(Q, C, start + 5), float(start + 5))  # another provider: nothing
    items = page(client, P.address)["items"]
    assert [(i["epoch"], i["a"]["timestamp"], i["b"]["timestamp"]) for i in items] == [(EPOCH - 1, start, start + 2)]
    assert page(client, Q.address)["total"] == 0


# ----------------------------------------------------------------------------------------- the route


def test_route_paginates_newest_first_within_the_statute(node: tuple[InProcessClient, ApiStore]) -> None:
    client, store = node
    epochs = [EPOCH, EPOCH - 3, EPOCH - 50, EPOCH - STATUTE, EPOCH - STATUTE - 1, EPOCH - 400]
    for epoch in epochs:
        store.record_heartbeat(signed(P, A, epoch * 30), epoch * 30.0)
        store.record_heartbeat(signed(P, B, epoch * 30 + 1), epoch * 30.0 + 1)
    body = page(client, P.address, "?limit=2")
    assert (body["total"], body["limit"], body["offset"], body["oldest_epoch"]) == (4, 2, 0, EPOCH - STATUTE)
    assert [(i["epoch"], i["slashed"]) for i in body["items"]] == [(EPOCH, False), (EPOCH - 3, True)]
    rest = page(client, P.address, "?limit=2&offset=2")["items"]
    assert [i["epoch"] for i in rest] == [EPOCH - 50, EPOCH - STATUTE]  # current - epoch == statute: still slashable
    assert page(client, P.address, "?offset=4")["items"] == []
    # older pairs are only filtered, not lost: the provider detail still lists every equivocating epoch
    assert client.get(f"/providers/{P.address}").json()["equivocating_epochs"] == epochs


@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [
        ("/providers/0x12/equivocations", 400, "provider address '0x12'"),
        (f"/providers/{P.address}/equivocations?limit=0", 400, "limit='0'"),
        (f"/providers/{P.address}/equivocations?limit=501", 400, "limit='501'"),
        (f"/providers/{P.address}/equivocations?offset=-1", 400, "offset='-1'"),
        (f"/providers/{P.address}/equivocations?epoch=3", 400, "unknown query parameter 'epoch'"),
        (f"/providers/{V.address}/equivocations", 404, "a verifier, not a provider"),
        (f"/providers/{key(9).address}/equivocations", 404, "not a provider known"),
    ],
)
def test_route_errors_are_json_naming_the_value(
    node: tuple[InProcessClient, ApiStore], url: str, status: int, needle: str
) -> None:
    client, _ = node
    response = client.get(url)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"} and needle in body["message"], body


def test_route_accepts_any_address_case(node: tuple[InProcessClient, ApiStore]) -> None:
    client, store = node
    store.record_heartbeat(signed(Q, A, NOW - 1), NOW)
    store.record_heartbeat(signed(Q, B, NOW), NOW)
    assert page(client, Q.address.lower())["items"][0]["provider"] == Q.address


def test_openapi_documents_the_route(node: tuple[InProcessClient, ApiStore]) -> None:
    client, _ = node
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/providers/{address}/equivocations"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"address", "limit", "offset"}
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/EquivocationPage")
    assert {"400", "404"} <= set(op["responses"]) and op.get("description")
    heartbeat = doc["components"]["schemas"]["SignedHeartbeatOut"]["properties"]
    assert set(heartbeat) == {"provider", "epoch", "endpointHash", "load", "timestamp", "signature"}


def test_migration_finds_equivocations_already_stored(tmp_path: Path) -> None:
    version = next(v for v, name, _ in migrations.migration_files() if name == "equivocations")
    older = tmp_path / "migrations"
    older.mkdir()
    for v, _, path in migrations.migration_files():
        if v < version:
            shutil.copy(path, older / path.name)
    conn = migrations.connect(tmp_path / "old.db")
    migrations.migrate(conn, older)
    start = EPOCH * 30
    for endpoint, ts in ((A, start), (A, start + 1), (B, start + 2), (B, start + 3)):
        s = signed(P, endpoint, ts)
        conn.execute(
            "INSERT INTO heartbeats VALUES (?, ?, ?, ?, ?, ?, ?)",
            (P.address, EPOCH, "0x" + endpoint_hash(endpoint).hex(), 0, ts, "0x" + s.signature.hex(), float(ts)),
        )
    # The equivocations migration, then every later one, in order.
    assert migrations.migrate(conn) == [v for v, _, _ in migrations.migration_files() if v >= version]
    rows = conn.execute("SELECT provider, epoch, timestamp_a, timestamp_b FROM equivocations").fetchall()
    assert [tuple(r) for r in rows] == [(P.address, EPOCH, start, start + 2)]
    conn.close()


@pytest.mark.parametrize(("manager", "statute"), [(CONTRACTS["SlashingManager"], 50), ("0x" + "ab" * 20, 2_880)])
def test_the_full_node_takes_the_statute_from_the_deployment(tmp_path: Path, manager: str, statute: int) -> None:
    """`fullnode serve`/`run` read the statute (and epoch length) from the manifest of the same deployment;
    another deployment's manifest leaves DeployConfig's defaults."""
    db = tmp_path / "node.db"
    fill(db)
    manifest = tmp_path / "deployment.json"
    config = {**asdict(DeployConfig()), "statute_epochs": 50}
    addresses = {**CONTRACTS, "SlashingManager": manager}
    Deployment(CHAIN_ID, addresses, 1, V.address, {}, config).save(manifest)
    settings = Settings(tmp_path, "http://127.0.0.1:1", manifest, None, None)
    app, store = build_api(db, settings)
    with InProcessClient(app) as client:
        assert page(client, P.address)["statute_epochs"] == statute
    app.state.reader.close()
    store.close()


# ----------------------------------------------------------------------------------------- the verifier


class FlakyChain(FakeChain):
    """FakeChain whose slashEquivocation raises, per epoch, each of `once` on one attempt in turn and
    `always` on every attempt, then succeeds."""

    def __init__(
        self, world: World, address: str, once: dict[int, list[Exception]], always: dict[int, Exception]
    ) -> None:
        super().__init__(world, address)
        self.once = once
        self.always = always
        self.attempts: list[tuple[int, int]] = []  # (round, epoch)
        self.round = 0

    def slash_equivocation(self, a: SignedHeartbeat, b: SignedHeartbeat, evidence_cid: str) -> None:
        epoch = a.heartbeat.epoch
        self.attempts.append((self.round, epoch))
        if epoch in self.always:
            raise self.always[epoch]
        if self.once.get(epoch):
            raise self.once[epoch].pop(0)
        super().slash_equivocation(a, b, evidence_cid)


def reverted(name: str) -> TransactionFailed:
    return TransactionFailed("slashEquivocation", f"{name}(...)" if name else "unknown error 0xdeadbeef", error=name)


def pair_item(epoch: int) -> dict[str, Any]:
    return {
        "provider": PROVIDER,
        "epoch": epoch,
        "a": hb_json(epoch, "a", epoch * 30),
        "b": hb_json(epoch, "b", epoch * 30 + 1),
    }


def rounds(v: Verifier, chain: FlakyChain, n: int) -> None:
    for _ in range(n):
        chain.round += 1
        asyncio.run(v.round())


def equivocation_verifier(
    once: dict[int, list[Exception]] | None = None,
    always: dict[int, Exception] | None = None,
    epochs: tuple[int, ...] = (9,),
    probe: Any = None,
) -> tuple[Verifier, FlakyChain, World]:
    world = World()
    chain = FlakyChain(world, V1, once or {}, always or {})
    node = FakeFullNode()
    node.equivocation_items = [pair_item(e) for e in epochs]
    settings = VerifierSettings(thresholds=Thresholds(min_throughput=1.0))
    return Verifier(chain, node, FakeStore(), probe or prober(HONEST), settings), chain, world


@pytest.mark.parametrize(
    "error",
    [reverted("SlashingCapReached"), reverted(""), reverted("SlashingEvidenceUsed"), ChainError("RPC unreachable")],
    ids=["cap", "unknown-revert", "evidence-used", "rpc"],
)
def test_a_transient_failure_is_retried_next_round(error: Exception) -> None:
    v, chain, world = equivocation_verifier(once={9: [error]})
    rounds(v, chain, 3)
    assert chain.attempts == [(1, 9), (2, 9)]
    assert (PROVIDER, 9) in world.slashed and v.stats["equivocations"] == 1


@pytest.mark.parametrize("name", ["SlashingEpochExpired", "SlashingEpochAlreadySlashed", "SlashingNotProvider"])
def test_a_final_refusal_is_not_retried(name: str) -> None:
    v, chain, world = equivocation_verifier(always={9: reverted(name)})
    rounds(v, chain, 4)
    assert chain.attempts == [(1, 9)] and world.slashed == set() and v.stats["equivocations"] == 0


def test_a_pair_the_chain_reads_as_no_proof_is_dropped_but_others_go_on() -> None:
    v, chain, world = equivocation_verifier(
        once={8: [reverted("")]}, always={9: reverted("SlashingWrongSigner")}, epochs=(9, 8)
    )
    rounds(v, chain, 3)
    assert chain.attempts == [(1, 9), (1, 8), (2, 8)] and world.slashed == {(PROVIDER, 8)}


@pytest.mark.parametrize("name", ["SlashingCapReached", "SlashingNothingToSlash"])
def test_repeated_transient_failures_back_off(name: str) -> None:
    """The cap of the period passes; a provider with nothing at stake may stake again within the statute."""
    v, chain, _ = equivocation_verifier(always={9: reverted(name)})
    rounds(v, chain, 30)
    gaps = [1, 2, 4, 8, *[EQUIVOCATION_MAX_BACKOFF] * 2]
    expected = [1]
    for gap in gaps:
        expected.append(expected[-1] + gap)
    assert [r for r, _ in chain.attempts] == [r for r in expected if r <= 30]


def test_an_epoch_slashed_meanwhile_is_settled_without_a_transaction() -> None:
    v, chain, world = equivocation_verifier(once={9: [reverted("SlashingCapReached")]})
    rounds(v, chain, 1)
    world.slashed.add((PROVIDER, 9))  # another reporter won
    rounds(v, chain, 3)
    assert chain.attempts == [(1, 9)] and v.stats["equivocations"] == 0


def test_equivocation_is_proved_when_the_probe_fails() -> None:
    async def unreachable(row: dict[str, Any]) -> Measurements:
        raise RuntimeError("no route to the provider's endpoint")

    v, chain, world = equivocation_verifier(probe=unreachable)
    rounds(v, chain, 1)
    assert chain.attempts == [(1, 9)] and (PROVIDER, 9) in world.slashed


def test_malformed_pairs_are_refused() -> None:
    same = pair_item(9) | {"b": hb_json(9, "a", 300)}
    with pytest.raises(ValueError, match="no equivocation"):
        Equivocation.from_json(same)
    other_epoch = pair_item(9) | {"b": hb_json(8, "b", 250)}
    with pytest.raises(ValueError, match="no equivocation"):
        Equivocation.from_json(other_epoch)
    with pytest.raises(ValueError, match="invalid heartbeat"):
        Equivocation.from_json({"a": hb_json(9, "a", 271)})


def test_http_full_node_pages_through_equivocations() -> None:
    items = [pair_item(e) for e in range(1, 251)]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        chunk = items[offset : offset + limit]
        return httpx.Response(200, json={"total": len(items), "limit": limit, "offset": offset, "items": chunk})

    node = HttpFullNode("http://fullnode.test", transport=httpx.MockTransport(handler))
    found = node.equivocations(PROVIDER)
    assert [e.epoch for e in found] == list(range(1, 251))
    assert seen == [
        f"http://fullnode.test/providers/{PROVIDER}/equivocations?limit=200&offset=0",
        f"http://fullnode.test/providers/{PROVIDER}/equivocations?limit=200&offset=200",
    ]


# ----------------------------------------------------------------------------------------- on chain


def test_a_buried_equivocation_is_still_served_and_slashed(anvil: Anvil, tmp_path: Path) -> None:
    """A conflicting pair, then ten normal heartbeats of its epoch and heartbeats of later epochs: the
    provider detail's latest heartbeats no longer show it, the new route does, and a verifier slashes it."""
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
    db = tmp_path / "node.db"
    ledger = Ledger(db, deployment.addresses, deployment.chain_id)
    index_once(w3, deployment, ledger)
    ledger.close()

    start = int(w3.eth.get_block("latest")["timestamp"]) // 30 * 30
    epoch = start // 30
    clock = [float(start + 15)]
    app = create_app(db, deployment.chain_id, deployment.addresses["Staking"], clock=lambda: clock[0])
    domain = HeartbeatDomain(deployment.chain_id, deployment.addresses["Staking"])

    def heartbeat(endpoint: str, ts: int, load: int = 0) -> dict[str, Any]:
        return sign_heartbeat(
            provider.account, domain, Heartbeat.create(provider.address, endpoint, load, ts)
        ).to_json()

    with InProcessClient(app) as client:

        def post(body: dict[str, Any]) -> int:
            return client.post("/heartbeats", json=body).status_code

        assert post(heartbeat(A, start)) == 201
        assert post(heartbeat(B, start + 1)) == 201  # the equivocation
        assert [post(heartbeat(A, start + 2 + n, load=n)) for n in range(10)] == [201] * 10  # the epoch is full
        assert post(heartbeat(A, start + 12, load=99)) == 429
        for later in range(1, 4):  # heartbeats of later epochs push the pair out of the latest ten
            clock[0] = start + 30 * later + 15
            assert [post(heartbeat(A, start + 30 * later + n, load=n)) for n in range(4)] == [201] * 4

        detail = client.get(f"/providers/{provider.address}").json()
        assert "0x" + endpoint_hash(B).hex() not in {h["endpoint_hash"] for h in detail["recent_heartbeats"]}
        body = page(client, provider.address)
        assert [(i["epoch"], i["b"]["endpointHash"]) for i in body["items"]] == [(epoch, "0x" + endpoint_hash(B).hex())]

        def forward(request: httpx.Request) -> httpx.Response:
            answer = client.request(request.method, str(request.url), content=request.content)
            return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

        fullnode = HttpFullNode("http://fullnode.test", transport=httpx.MockTransport(forward))
        chain = SlashingChain(w3, deployment, reporter.account)
        staking = deployment.contract(w3, "Staking")
        before = staking.functions.stakeOf(provider.address).call()[0]

        async def honest(row: dict[str, Any]) -> Measurements:
            return Measurements((0.01,), (True,), (5e6,), 10, 10)

        settings = VerifierSettings(thresholds=Thresholds(min_throughput=1.0))
        verifier = Verifier(chain, fullnode, FakeStore(), honest, settings)
        asyncio.run(verifier.round())
        assert verifier.stats["equivocations"] == 1 and chain.is_epoch_slashed(provider.address, epoch)
        assert staking.functions.stakeOf(provider.address).call()[0] < before
        asyncio.run(verifier.round())  # settled: never twice
        assert verifier.stats["equivocations"] == 1
        fullnode.close()
    app.state.reader.close()
    app.state.store.close()
