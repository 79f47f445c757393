"""The full node's slashing and trust API over a ledger filled with synthetic chain events: disputes,
provider trust and slashes, min_trust search, attestations (checked, stored, listed) and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from ledger_helpers import CHAIN_ID, CONTRACTS, make_log

from flownet.chain.slashing import attestation_typed_data
from indexer import api as api_module
from indexer import api_slashing
from indexer.api import create_app
from indexer.asgiclient import InProcessClient
from indexer.store import Block, Ledger

E18 = 10**18
NOW = 1_700_000_015
EPOCH = NOW // 30
ZERO = "0x0000000000000000000000000000000000000000"
MANAGER = CONTRACTS["SlashingManager"]


def key(n: int) -> LocalAccount:
    return Account.from_key(keccak(text=f"slashing api key {n}"))


GOOD, BAD, V1, V2, STRANGER, UNSTAKED_V = (key(i) for i in range(6))


def fill(db: Path) -> None:
    logs = []
    for n, who in enumerate((GOOD, BAD, V1, V2)):
        logs.append(make_log("FlowToken", "Transfer", 1, n, **{"from": ZERO, "to": who.address, "value": 5_000 * E18}))
    for n, (who, role) in enumerate(((GOOD, 1), (BAD, 1), (V1, 2), (V2, 2), (UNSTAKED_V, 2)), 10):
        amount = 0 if who is UNSTAKED_V else 1_000 * E18
        logs.append(make_log("Staking", "Staked", 1, n, account=who.address, role=role, amount=amount, active=amount))
    logs += [
        make_log("TrustRegistry", "ScoreChanged", 2, 0, subject=GOOD.address, domain=0, scorer=STRANGER.address,
                 oldScore=500, newScore=900, reasonCid="bafkreiaudit"),
        make_log("SlashingManager", "DisputeOpened", 3, 0, disputeId=1, provider=BAD.address, epoch=EPOCH - 5,
                 kind=0, evidenceCid="bafkreiprobe", verifiers=[V1.address, V2.address], opener=V1.address,
                 challengeEnds=NOW - 100, due=100 * E18),
        make_log("Staking", "Slashed", 4, 0, account=BAD.address, slasher=MANAGER, fromActive=100 * E18,
                 fromThawing=0, active=900 * E18, thawing=0),
        make_log("FlowToken", "Transfer", 4, 3, **{"from": MANAGER, "to": ZERO, "value": 100 * E18}),
        make_log("TrustRegistry", "ScoreChanged", 4, 4, subject=BAD.address, domain=0, scorer=MANAGER,
                 oldScore=500, newScore=250, reasonCid="bafkreiprobe"),
        make_log("SlashingManager", "DisputeExecuted", 4, 5, disputeId=1, provider=BAD.address, executor=V2.address,
                 slashed=100 * E18, reward=0, rewardEach=0, burned=100 * E18),
        make_log("SlashingManager", "DisputeOpened", 5, 0, disputeId=2, provider=GOOD.address, epoch=EPOCH - 1,
                 kind=1, evidenceCid="bafkreislow", verifiers=[V2.address, V1.address], opener=V2.address,
                 challengeEnds=NOW + 3600, due=100 * E18),
    ]  # fmt: skip
    ledger = Ledger(db, CONTRACTS, CHAIN_ID)
    blocks = [Block(n, f"0x{n:064x}", f"0x{n - 1:064x}") for n in range(1, 6)]
    ledger.apply(blocks, logs, finalized=5, cursor=blocks[-1])
    ledger.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[InProcessClient]:
    db = tmp_path / "node.db"
    fill(db)
    app = create_app(db, CHAIN_ID, CONTRACTS["Staking"], clock=lambda: NOW, statute_epochs=100)
    with InProcessClient(app) as c:
        yield c
    app.state.reader.close()
    app.state.store.close()


def attestation(signer: LocalAccount, provider: str, epoch: int = EPOCH - 2, kind: int = 2, cid: str = "bafkreie",
                verifier: str | None = None, manager: str = MANAGER) -> dict[str, Any]:  # fmt: skip
    typed = attestation_typed_data(CHAIN_ID, manager, provider, epoch, kind, cid)
    signature = signer.sign_message(encode_typed_data(full_message=typed)).signature
    return {
        "provider": provider,
        "epoch": epoch,
        "kind": kind,
        "evidence_cid": cid,
        "verifier": verifier or signer.address,
        "signature": "0x" + bytes(signature).hex(),
    }


def refused(client: InProcessClient, body: Any, status: int, code: str, needle: str) -> None:
    response = client.post("/attestations", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code and needle in response.json()["message"], response.json()


def test_disputes_list_and_detail(client: InProcessClient) -> None:
    page = client.get("/disputes").json()
    api_slashing.DisputePage.model_validate(page)
    assert page["total"] == 2 and [d["id"] for d in page["items"]] == [2, 1]
    executed = client.get("/disputes/1").json()
    assert executed["status"] == "executed" and executed["slashed"] == str(100 * E18)
    assert executed["verifiers"] == [V1.address, V2.address] and executed["kind_name"] == "unreachable"
    assert executed["executor"] == V2.address and executed["reward"] == "0" and executed["burned"] == str(100 * E18)
    assert executed["due"] == str(100 * E18) and executed["remaining"] == 2 and executed["struck"] == []
    assert [d["id"] for d in client.get("/disputes?status=open").json()["items"]] == [2]
    assert client.get(f"/disputes?provider={BAD.address.lower()}").json()["total"] == 1
    assert client.get("/disputes/7").status_code == 404
    for url, needle in (
        ("/disputes/abc", "dispute_id 'abc'"),
        ("/disputes/0", "dispute_id '0'"),
        ("/disputes?provider=0x12", "provider '0x12'"),
        ("/disputes?status=won", "status='won'"),
        ("/disputes?colour=red", "'colour'"),
    ):
        response = client.get(url)
        assert response.status_code == 400 and needle in response.json()["message"], (url, response.text)


def test_provider_trust_history_disputes_and_slashes(client: InProcessClient) -> None:
    body = client.get(f"/providers/{BAD.address}").json()
    api_module.ProviderDetail.model_validate(body)
    assert body["trust"] == {
        "score": 250,
        "history": [{"old": 500, "new": 250, "scorer": MANAGER, "reason_cid": "bafkreiprobe", "block": 4}],
    }
    assert [d["id"] for d in body["disputes"]] == [1]
    (slash,) = body["slashes"]
    assert (slash["route"], slash["dispute_id"], slash["amount"], slash["evidence_cid"]) == (
        "dispute",
        1,
        str(100 * E18),
        "bafkreiprobe",
    )
    good = client.get(f"/providers/{GOOD.address}").json()
    assert good["trust"]["score"] == 900 and good["slashes"] == [] and good["disputes"][0]["status"] == "open"


def test_min_trust_uses_network_score_with_neutral_500(client: InProcessClient) -> None:
    def found(query: str) -> set[str]:
        page = client.get(f"/providers?{query}").json()
        return {p["address"]: p["trust"]["score"] for p in page["items"]}  # type: ignore[return-value]

    assert found("min_trust=0") == {GOOD.address: 900, BAD.address: 250}
    assert found("min_trust=500") == {GOOD.address: 900}
    assert found("min_trust=900") == {GOOD.address: 900}
    assert found("min_trust=901") == {}


def test_post_attestation_stores_once_and_lists(client: InProcessClient) -> None:
    first = attestation(V1, BAD.address)
    response = client.post("/attestations", json=first)
    assert response.status_code == 201, response.text
    api_slashing.AttestationAccepted.model_validate(response.json())
    assert response.json()["duplicate"] is False and response.json()["attestation"]["received_at"] == NOW
    again = client.post("/attestations", json=first)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert client.post("/attestations", json={**attestation(V2, BAD.address), "kind": "throughput"}).status_code == 201
    page = client.get(f"/attestations?provider={BAD.address}&epoch={EPOCH - 2}&kind=2").json()
    api_slashing.AttestationPage.model_validate(page)
    assert page["total"] == 2
    assert {a["verifier"]: a["signature"] for a in page["items"]}[V1.address] == first["signature"]
    assert client.get(f"/attestations?provider={GOOD.address}").json()["total"] == 0
    assert client.get("/attestations?kind=3").json()["total"] == 0
    metrics = client.get("/metrics").text
    assert "flownet_attestations_accepted_total 2" in metrics
    assert "flownet_attestations_duplicate_total 1" in metrics
    assert "flownet_attestations_stored 2" in metrics
    assert 'flownet_disputes{status="executed"} 1' in metrics and 'flownet_slashes{route="dispute"} 1' in metrics


def test_post_attestation_refusals(client: InProcessClient) -> None:
    good = attestation(V1, BAD.address)
    refused(client, attestation(V1, BAD.address, epoch=EPOCH + 1), 400, "wrong_epoch", "epoch")
    refused(client, attestation(V1, BAD.address, epoch=EPOCH - 101), 400, "wrong_epoch", "statute")
    refused(client, {**good, "kind": 4}, 400, "invalid", "invalid kind 4")
    refused(client, {**good, "provider": "0xnope"}, 400, "invalid", "invalid provider '0xnope'")
    refused(client, {**good, "evidence_cid": ""}, 400, "invalid", "evidence_cid")
    refused(client, {**good, "signature": "0x12"}, 400, "invalid", "signature '0x12'")
    refused(client, {k: v for k, v in good.items() if k != "verifier"}, 400, "invalid", "lacks verifier")
    refused(client, {**good, "extra": 1}, 400, "invalid", "'extra'")
    refused(client, [good], 400, "invalid", "JSON object")
    # Signed by someone other than the named verifier, or over another field value, or another deployment.
    refused(client, attestation(STRANGER, BAD.address, verifier=V1.address), 401, "bad_signature", STRANGER.address)
    refused(client, {**good, "evidence_cid": "bafkreiother"}, 401, "bad_signature", "not by verifier")
    other = attestation(V1, BAD.address, manager="0x" + "77" * 20)
    refused(client, other, 401, "bad_signature", "another deployment")
    # Correctly signed, but not a staked verifier: a provider, a stranger, a verifier with 0 active.
    for signer in (GOOD, STRANGER, UNSTAKED_V):
        refused(client, attestation(signer, BAD.address), 403, "not_staked", signer.address)
    response = client.post("/attestations", content=b"{not json")
    assert response.status_code == 400 and response.json()["error"] == "invalid"
    assert client.get("/attestations").json()["total"] == 0
    assert 'flownet_attestations_rejected_total{reason="not_staked"} 3' in client.get("/metrics").text
