"""flownet.core.eip712: one set of digests and one signature rule, equal to eth-account's and the contracts'."""

from __future__ import annotations

import os
from typing import Any

import pytest
from conftest import new_account
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data
from web3 import Web3

from flownet.agents.verifier_io import SlashingChain
from flownet.chain.deploy import DeployConfig, deploy
from flownet.chain.market import FlowNet
from flownet.chain.slashing import Slashing
from flownet.chain.tx import Sender
from flownet.core import eip712
from flownet.core.attestation import Attestation, AttestationRejected
from flownet.core.attestation import check as check_attestation
from flownet.core.eip712 import SECP256K1_N, SignatureInvalid
from flownet.core.heartbeat import Heartbeat, HeartbeatDomain, HeartbeatRejected, SignedHeartbeat, sign_heartbeat
from flownet.core.heartbeat import check as check_heartbeat
from flownet.core.metadata import ProviderMetadata
from flownet.core.receipts import CloseAgreement, MarketDomain, Receipt
from flownet.errors import ReceiptError
from flownet.tunnel.payment import ReceiptSigner, domain_separator, recover_signer
from indexer.provider_meta import document_row
from indexer.rejections import HTTP_STATUS, answer, http_status

CONTRACT = "0x" + "5a" * 20
ORDER_ID = bytes(range(32))
NOW = 1_700_000_000


def messages() -> dict[str, dict[str, Any]]:
    provider = Account.create().address
    return {
        "Receipt": {"orderId": ORDER_ID, "cumulativeBytes": 5 << 30, "cumulativeAmount": 10**18},
        "CloseOrder": {"orderId": ORDER_ID, "finalAmount": 7},
        "Heartbeat": {"provider": provider, "epoch": 9, "endpointHash": bytes(32), "load": 500, "timestamp": NOW},
        "Attestation": {"provider": provider, "epoch": 7, "kind": 3, "evidenceCid": "bafkreiévidence"},
        "ServiceProof": {"orderId": ORDER_ID, "epoch": 2**64 - 1, "bytesServed": 12345},
        "Permit": {"owner": provider, "spender": provider, "value": 1, "nonce": 0, "deadline": 2**256 - 1},
    }


def high_s(signature: bytes) -> bytes:
    """The same signature in its other (malleable) form: (r, n - s, v ^ 1)."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - signature[64],))


@pytest.mark.parametrize("primary", sorted(set(eip712.TYPES) - {"EIP712Domain"}))
def test_digest_equals_eth_accounts(primary: str) -> None:
    domain = eip712.Domain("Some Name", "1", 31337, CONTRACT)
    message = messages()[primary]
    theirs = _hash_eip191_message(encode_typed_data(full_message=eip712.typed_data(domain, primary, message)))
    assert eip712.digest(domain, primary, message) == theirs
    assert eip712.digest(domain.separator, primary, message) == theirs


def test_sign_and_recover_agree_with_eth_account() -> None:
    account = Account.create()
    for _ in range(20):
        digest = os.urandom(32)
        ours = eip712.sign(bytes(account.key), digest)
        assert ours == bytes(account.unsafe_sign_hash(digest).signature)  # RFC 6979: the same bytes
        assert eip712.recover(digest, ours) == Account._recover_hash(digest, signature=ours) == account.address
        assert eip712.is_canonical(ours)


def test_non_canonical_signatures_are_named() -> None:
    account = Account.create()
    digest = os.urandom(32)
    good = eip712.sign(bytes(account.key), digest)
    flipped = high_s(good)
    # eth-keys recovers the same signer from the malleable form: only the canonical rule refuses it
    assert Account._recover_hash(digest, signature=flipped) == account.address
    assert eip712.signature_problem(flipped) == "has a high s value (malleable; the contracts reject it)"
    assert eip712.signature_problem(good[:64] + b"\x01") == "has v=1, not 27 or 28"
    assert eip712.signature_problem(good[:10]) == "must be 65 bytes (got 10)"
    assert eip712.signature_problem(bytes(32) + good[32:]) == "has r = 0"
    for bad in (flipped, good[:64] + b"\x01", good[:10], bytes(32) + good[32:]):
        with pytest.raises(SignatureInvalid):
            eip712.recover(digest, bad)


def test_a_high_s_signature_is_rejected_everywhere() -> None:
    """Receipts, heartbeats, attestations (node, verifier), metadata: a valid signature's malleable twin is refused."""
    alice = Account.create()
    market = MarketDomain(31337, CONTRACT)
    receipt = Receipt(ORDER_ID, 1 << 30, 1000)
    signature = ReceiptSigner(bytes(alice.key), market).sign(receipt)
    assert recover_signer(domain_separator(market), receipt, signature) == alice.address
    with pytest.raises(ReceiptError, match="high s value"):
        recover_signer(domain_separator(market), receipt, high_s(signature))

    domain = HeartbeatDomain(31337, CONTRACT)
    hb = sign_heartbeat(alice, domain, Heartbeat.create(alice.address, "127.0.0.1:9000", 0, NOW))
    check_heartbeat(hb, domain, NOW, lambda _: True)
    with pytest.raises(HeartbeatRejected, match="not canonical") as caught:
        check_heartbeat(SignedHeartbeat(hb.heartbeat, high_s(hb.signature)), domain, NOW, lambda _: True)
    assert answer(caught.value) == (
        401,
        {"error": "bad_signature", "message": "signature is not canonical (need 65 bytes, v 27/28 and low s)"},
    )

    provider = Account.create().address
    unsigned = Attestation(provider, 5, 1, "bafkreiévidence", alice.address, b"")
    digest = unsigned.digest(31337, CONTRACT)
    att = Attestation(provider, 5, 1, "bafkreiévidence", alice.address, eip712.sign(bytes(alice.key), digest))
    check_attestation(att, 31337, CONTRACT, 6, 10, lambda _: True)
    twin = Attestation(provider, 5, 1, "bafkreiévidence", alice.address, high_s(att.signature))
    with pytest.raises(AttestationRejected, match="not canonical") as caught_att:
        check_attestation(twin, 31337, CONTRACT, 6, 10, lambda _: True)
    assert http_status(caught_att.value) == 401

    class Digests:
        def attestation_digest(self, *args: object) -> bytes:
            return digest

    meta = ProviderMetadata(alice.address, "p.example.net:7443", "eu-west", 100, 10**18, NOW)
    by_eth_account = bytes(alice.sign_message(encode_defunct(primitive=meta.signing_payload())).signature)
    assert meta.digest() == _hash_eip191_message(encode_defunct(primitive=meta.signing_payload()))
    assert meta.signer(by_eth_account) == alice.address
    assert document_row(alice.address, "bafy", meta.document(by_eth_account), NOW)["error"] is None
    refused = document_row(alice.address, "bafy", meta.document(high_s(by_eth_account)), NOW)["error"]
    assert "not a valid metadata document" in refused and "high s value" in refused

    chain = SlashingChain.__new__(SlashingChain)  # only the recovery, which needs no chain
    chain.slashing = Digests()  # type: ignore[assignment]
    assert chain.attestation_signer(att) == alice.address
    assert chain.attestation_signer(twin) is None


def test_every_rejection_reason_has_an_http_status() -> None:
    for rejected in (HeartbeatRejected, AttestationRejected):
        assert set(rejected.REASONS) <= set(HTTP_STATUS), rejected
        for reason in rejected.REASONS:
            assert http_status(rejected(reason, "x")) == HTTP_STATUS[reason]
    with pytest.raises(AssertionError):
        AttestationRejected("too_many", "attestations have no per-epoch cap")


def test_attestation_submission_and_answer_parse_to_one_class() -> None:
    alice = Account.create()
    att = Attestation(Account.create().address, 3, 2, "bafyx", alice.address, bytes(range(65)))
    assert Attestation.from_submission(att.to_json()) == att
    assert Attestation.from_json({**att.to_json(), "kind_name": "throughput", "received_at": 1.0}) == att
    with pytest.raises(AttestationRejected, match="unknown field 'kind_name'"):
        Attestation.from_submission({**att.to_json(), "kind_name": "throughput"})
    assert Attestation.from_submission({**att.to_json(), "kind": "Throughput"}) == att


def test_digests_and_type_hashes_match_the_contracts(w3: Web3) -> None:
    deployer = new_account(w3)
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig.devnet())
    net = FlowNet(w3, deployment, deployer)
    slashing = Slashing(w3, deployment)
    market, manager = net.market, slashing.contract
    assert bytes(market.functions.RECEIPT_TYPEHASH().call()) == eip712.type_hash("Receipt")
    assert bytes(market.functions.CLOSE_TYPEHASH().call()) == eip712.type_hash("CloseOrder")
    hashes = (("HEARTBEAT", "Heartbeat"), ("ATTESTATION", "Attestation"), ("SERVICE_PROOF", "ServiceProof"))
    for name, primary in hashes:
        assert bytes(getattr(manager.functions, f"{name}_TYPEHASH")().call()) == eip712.type_hash(primary)

    receipt = Receipt(ORDER_ID, 3 << 30, 123)
    ours = eip712.digest(net.domain.eip712_domain, "Receipt", receipt.message())
    assert ours == bytes(market.functions.receiptDigest(ORDER_ID, 3 << 30, 123).call())
    close = CloseAgreement(ORDER_ID, 99)
    ours = eip712.digest(net.domain.eip712_domain, "CloseOrder", close.message())
    assert ours == bytes(market.functions.closeDigest(ORDER_ID, 99).call())

    domain = HeartbeatDomain(deployment.chain_id, deployment.addresses["Staking"])
    hb = Heartbeat.create(deployer.address, "127.0.0.1:9000", 42, NOW)
    onchain = manager.functions.heartbeatDigest((hb.provider, hb.epoch, hb.endpoint_hash, hb.load, hb.timestamp)).call()
    assert hb.digest(domain) == bytes(onchain)

    att = Attestation(deployer.address, 7, 1, "bafkreiévidence", deployer.address, b"")
    theirs = manager.functions.attestationDigest(deployer.address, 7, 1, "bafkreiévidence").call()
    assert att.digest(deployment.chain_id, manager.address) == bytes(theirs)
    theirs = manager.functions.serviceProofDigest(ORDER_ID, 9, 12345).call()
    assert slashing.service_proof_digest(ORDER_ID, 9, 12345) == bytes(theirs)
