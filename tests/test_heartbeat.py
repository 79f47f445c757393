"""Heartbeats: EIP-712 signing and verification, the acceptance rules, and their storage."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from flownet.core.heartbeat import (
    SECP256K1_HALF_N,
    Heartbeat,
    HeartbeatDomain,
    HeartbeatRejected,
    SignedHeartbeat,
    check,
    endpoint_hash,
    recover_signer,
    sign_heartbeat,
)
from indexer.apistore import ApiStore
from indexer.projections import amt
from indexer.rejections import http_status
from indexer.store import Ledger

STAKING = "0x" + "5a" * 20
DOMAIN = HeartbeatDomain(31337, STAKING)
NOW = 1_700_000_015  # epoch 56_666_667 at 30 s
ENDPOINT = "provider.example.net:7443"
CONTRACTS = {
    "FlowToken": "0x" + "1f" * 20,
    "Staking": to_checksum_address(STAKING),
    "BandwidthMarket": "0x" + "3b" * 20,
}


def account(n: int) -> LocalAccount:
    return Account.from_key(keccak(text=f"heartbeat test key {n}"))


ALICE, BOB = account(1), account(2)


def signed(
    who: LocalAccount = ALICE, timestamp: int = NOW, load: int = 2500, endpoint: str = ENDPOINT
) -> SignedHeartbeat:
    return sign_heartbeat(who, DOMAIN, Heartbeat.create(who.address, endpoint, load, timestamp))


def staked(address: str) -> bool:
    return address == ALICE.address


def rejected(reason: str, hb: SignedHeartbeat, now: float = NOW, **kwargs: object) -> str:
    with pytest.raises(HeartbeatRejected) as caught:
        check(hb, DOMAIN, now, kwargs.pop("is_staked", staked), **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason == reason, caught.value
    return str(caught.value)


# ----------------------------------------------------------------------------------------- pure


def test_heartbeat_fields_and_typed_data() -> None:
    hb = Heartbeat.create(ALICE.address.lower(), ENDPOINT, 10_000, NOW)
    assert hb.provider == ALICE.address
    assert hb.epoch == NOW // 30
    assert hb.endpoint_hash == endpoint_hash(ENDPOINT) == keccak(text=ENDPOINT)
    data = hb.typed_data(DOMAIN)
    assert data["domain"] == {
        "name": "FlowNet Heartbeat",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": to_checksum_address(STAKING),
    }
    fields = [(f["name"], f["type"]) for f in data["types"]["Heartbeat"]]
    assert fields == [
        ("provider", "address"),
        ("epoch", "uint64"),
        ("endpointHash", "bytes32"),
        ("load", "uint32"),
        ("timestamp", "uint64"),
    ]
    assert Heartbeat.create(ALICE.address, ENDPOINT, 0, NOW, epoch_seconds=10).epoch == NOW // 10


def test_sign_and_recover_and_accept() -> None:
    hb = signed()
    assert len(hb.signature) == 65
    assert recover_signer(DOMAIN, hb) == ALICE.address
    check(hb, DOMAIN, NOW, staked)
    # the JSON form round-trips exactly
    assert SignedHeartbeat.from_json(hb.to_json()) == hb
    # within the skew on either side
    check(hb, DOMAIN, NOW + 60, staked)
    check(hb, DOMAIN, NOW - 60, staked)


def test_signature_binds_every_field_and_the_domain() -> None:
    hb = signed()
    other_domain = HeartbeatDomain(1, STAKING)
    assert recover_signer(other_domain, hb) != ALICE.address
    with pytest.raises(HeartbeatRejected) as caught:  # signed for another chain
        check(hb, other_domain, NOW, staked)
    assert caught.value.reason == "bad_signature" and http_status(caught.value) == 401
    assert "or for another deployment" in str(caught.value)
    changed = Heartbeat(ALICE.address, hb.heartbeat.epoch, hb.heartbeat.endpoint_hash, 9999, hb.heartbeat.timestamp)
    text = rejected("bad_signature", SignedHeartbeat(changed, hb.signature))
    assert f"not by provider {ALICE.address}" in text


def test_wrong_signer_is_rejected() -> None:
    """Bob signs a heartbeat that names Alice."""
    hb = Heartbeat.create(ALICE.address, ENDPOINT, 0, NOW)
    signature = bytes(BOB.sign_message(encode_typed_data(full_message=hb.typed_data(DOMAIN))).signature)
    text = rejected("bad_signature", SignedHeartbeat(hb, signature))
    assert BOB.address in text and ALICE.address in text
    with pytest.raises(HeartbeatRejected, match="not for signer"):
        sign_heartbeat(BOB, DOMAIN, hb)


def test_stale_and_future_timestamps_are_rejected() -> None:
    text = rejected("stale", signed(timestamp=NOW - 61))
    assert str(NOW - 61) in text and "61 s behind" in text and "at most 60 s" in text
    assert "ahead of" in rejected("stale", signed(timestamp=NOW + 120))
    # the allowed skew is configurable
    check(signed(timestamp=NOW - 100), DOMAIN, NOW, staked, max_skew=120)
    rejected("stale", signed(timestamp=NOW - 20), max_skew=10)


def test_epoch_must_match_the_timestamp() -> None:
    good = signed().heartbeat
    wrong = Heartbeat(ALICE.address, good.epoch + 1, good.endpoint_hash, good.load, good.timestamp)
    resigned = sign_heartbeat(ALICE, DOMAIN, wrong)  # correctly signed, but the epoch is inconsistent
    text = rejected("wrong_epoch", resigned)
    assert f"epoch {good.epoch + 1}" in text and f"expected {good.epoch}" in text
    # another epoch length moves the epoch
    rejected("wrong_epoch", signed(), epoch_seconds=10)


def test_provider_without_stake_is_rejected() -> None:
    text = rejected("not_staked", signed(BOB))
    assert BOB.address in text


def test_malformed_heartbeats_are_invalid() -> None:
    good = signed().to_json()
    cases = {
        "provider": ("0x1234", "invalid provider '0x1234'"),
        "endpointHash": ("0xabc", "invalid endpointHash '0xabc'"),
        "signature": ("0x00", "invalid signature '0x00'"),
        "load": (10_001, "load 10001 is outside 0..10000"),
        "epoch": ("12", "invalid epoch '12'"),
        "timestamp": (True, "invalid timestamp True"),
    }
    for field, (value, message) in cases.items():
        with pytest.raises(HeartbeatRejected) as caught:
            SignedHeartbeat.from_json({**good, field: value})
        assert caught.value.reason == "invalid"
        assert message in str(caught.value), (field, str(caught.value))
    missing = {k: v for k, v in good.items() if k != "load"}
    with pytest.raises(HeartbeatRejected, match="lacks load"):
        SignedHeartbeat.from_json(missing)
    with pytest.raises(HeartbeatRejected, match="JSON object"):
        SignedHeartbeat.from_json([good])


def test_non_canonical_signatures_are_refused() -> None:
    """(r, n - s, v ^ 1) is the same signature in another form: refused, so it cannot pose as new evidence."""
    hb = signed()
    r, s, v = hb.signature[:32], int.from_bytes(hb.signature[32:64], "big"), hb.signature[64]
    assert s <= SECP256K1_HALF_N
    n = SECP256K1_HALF_N * 2 + 1
    flipped = r + (n - s).to_bytes(32, "big") + bytes([55 - v])
    assert "not canonical" in rejected("bad_signature", SignedHeartbeat(hb.heartbeat, flipped))
    raw_v = hb.signature[:64] + bytes([v - 27])
    rejected("bad_signature", SignedHeartbeat(hb.heartbeat, raw_v))


# ----------------------------------------------------------------------------------------- storage


@pytest.fixture
def store(tmp_path: Path) -> ApiStore:
    db = tmp_path / "node.db"
    ledger = Ledger(db, CONTRACTS, 31337)  # the indexer's migrated database
    row = (ALICE.address, "provider", amt(10**22), amt(0), amt(0), 0, amt(2 * 10**18), None, amt(0), 7)
    ledger.conn.execute(
        "INSERT INTO stakers (address, role, active, locked, thawing, thaw_end, price, metadata_cid, slashed,"
        " updated_block) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        row,
    )
    verifier = (BOB.address, "verifier", amt(10**22), amt(0), amt(0), 0, amt(0), None, amt(0), 7)
    ledger.conn.execute(
        "INSERT INTO stakers (address, role, active, locked, thawing, thaw_end, price, metadata_cid, slashed,"
        " updated_block) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        verifier,
    )
    ledger.close()
    api = ApiStore(db, max_per_epoch=4)
    yield api
    api.close()


def test_staked_provider_lookup(store: ApiStore) -> None:
    assert store.is_staked_provider(ALICE.address)
    assert not store.is_staked_provider(BOB.address)  # a verifier
    assert not store.is_staked_provider(account(3).address)
    store.conn.execute("UPDATE stakers SET active = ? WHERE address = ?", (amt(0), ALICE.address))
    assert not store.is_staked_provider(ALICE.address)  # fully unstaked


def test_duplicate_heartbeat_is_idempotent(store: ApiStore) -> None:
    hb = signed()
    assert store.record_heartbeat(hb, NOW + 0.5) is True
    assert store.record_heartbeat(hb, NOW + 0.9) is False
    rows = store.conn.execute("SELECT * FROM heartbeats").fetchall()
    assert len(rows) == 1
    assert rows[0]["received_at"] == NOW + 0.5
    assert rows[0]["signature"] == "0x" + hb.signature.hex()
    assert rows[0]["endpoint_hash"] == "0x" + endpoint_hash(ENDPOINT).hex()


def test_two_statements_in_one_epoch_are_both_kept(store: ApiStore) -> None:
    first = signed(endpoint=ENDPOINT)
    second = signed(endpoint="elsewhere.example.net:7443")  # same provider, epoch and time: equivocation
    assert first.heartbeat.epoch == second.heartbeat.epoch
    assert store.record_heartbeat(first, NOW)
    assert store.record_heartbeat(second, NOW)
    rows = store.conn.execute("SELECT endpoint_hash, signature FROM heartbeats WHERE provider = ?", (ALICE.address,))
    assert {r["endpoint_hash"] for r in rows} == {
        "0x" + endpoint_hash(ENDPOINT).hex(),
        "0x" + endpoint_hash("elsewhere.example.net:7443").hex(),
    }


def test_liveness_keeps_the_latest_heartbeat(store: ApiStore) -> None:
    store.record_heartbeat(signed(timestamp=NOW, load=100), NOW)
    store.record_heartbeat(signed(timestamp=NOW - 5, load=200), NOW)  # arrives late: older statement
    row = store.conn.execute("SELECT * FROM liveness WHERE provider = ?", (ALICE.address,)).fetchone()
    assert (row["timestamp"], row["load"]) == (NOW, 100)
    store.record_heartbeat(signed(timestamp=NOW + 31, load=300), NOW + 31)
    row = store.conn.execute("SELECT * FROM liveness WHERE provider = ?", (ALICE.address,)).fetchone()
    assert (row["timestamp"], row["load"], row["epoch"]) == (NOW + 31, 300, (NOW + 31) // 30)
    assert store.conn.execute("SELECT COUNT(*) FROM heartbeats").fetchone()[0] == 3


def test_too_many_statements_in_one_epoch(store: ApiStore) -> None:
    for load in range(4):
        assert store.record_heartbeat(signed(load=load), NOW)
    with pytest.raises(HeartbeatRejected) as caught:
        store.record_heartbeat(signed(load=99), NOW)
    assert caught.value.reason == "too_many" and http_status(caught.value) == 429
    assert store.conn.execute("SELECT COUNT(*) FROM heartbeats").fetchone()[0] == 4
    assert store.record_heartbeat(signed(load=0), NOW) is False  # a repeat is still just a duplicate
