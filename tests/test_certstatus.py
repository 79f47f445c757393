"""flownet.certstatus against a real migrated ledger fed with CertificateRegistry and Staking events: every
rejection reason, records kept per (owner, hash) (issue 11, finding 4) and validity that follows the
owner's stake (finding 5)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from eth_account import Account
from ledger_helpers import CHAIN_ID, CONTRACTS, make_log

from flownet.certstatus import (
    REASONS,
    CertificateRejected,
    CertRecord,
    check_certificate,
    invalid_among,
    lookup,
    records_of,
    stake_counts,
    verdict,
)
from flownet.errors import TunnelError
from flownet.pki import CertInfo, inspect, new_identity
from indexer.events import RawLog
from indexer.store import Block, Ledger

NOW = 1_800_000_000
START = dt.datetime.fromtimestamp(NOW - 86_400, dt.UTC)  # certificates issued a day before NOW
WALLET = Account.from_key(b"\x01" * 32).address
OTHER = Account.from_key(b"\x02" * 32).address
STAKER = Account.from_key(b"\x03" * 32).address
E18 = 10**18


def _cert(wallet: str = WALLET, chain_id: int = CHAIN_ID, days: int = 30, start: dt.datetime = START) -> bytes:
    _, certificate = new_identity(wallet, chain_id, days, now=start)
    return certificate.public_bytes(serialization.Encoding.DER)


def _info(der: bytes) -> CertInfo:
    from cryptography import x509

    return inspect(x509.load_der_x509_certificate(der))


def _registered(info: CertInfo, block: int, *, owner: str | None = None, key_hash: bytes | None = None,
                not_after: int | None = None) -> RawLog:  # fmt: skip
    return make_log(
        "CertificateRegistry", "CertificateRegistered", block, 0,
        certHash="0x" + info.cert_hash.hex(), owner=owner or info.wallet,
        keyHash="0x" + (key_hash or info.key_hash).hex(), pemCid=f"bafkreipem{block}",
        notAfter=info.not_after if not_after is None else not_after,
    )  # fmt: skip


def _revoked(
    info: CertInfo, block: int, reason: int = 1, revoked_at: int = NOW - 60, compromised_at: int = 0,
    owner: str | None = None,
) -> RawLog:  # fmt: skip
    return make_log(
        "CertificateRegistry", "CertificateRevoked", block, 0, certHash="0x" + info.cert_hash.hex(),
        owner=owner or info.wallet, reason=reason, revokedAt=revoked_at, compromisedAt=compromised_at,
    )  # fmt: skip


def _staked(account: str, block: int, role: int = 1, amount: int = 2_000 * E18) -> RawLog:
    return make_log("Staking", "Staked", block, 0, account=account, role=role, amount=amount, active=amount)


def _unbonded(account: str, block: int, amount: int = 2_000 * E18) -> list[RawLog]:
    """`account` thaws all of its `amount` (block) and withdraws it (block + 1): nothing bonded."""
    return [
        make_log("Staking", "UnstakeRequested", block, 0, account=account, amount=amount, active=0, thawing=amount,
                 thawEnd=NOW - 10),
        make_log("Staking", "Withdrawn", block + 1, 0, account=account, amount=amount),
    ]  # fmt: skip


def _ledger(tmp_path: Path, logs: list[RawLog]) -> Ledger:
    ledger = Ledger(tmp_path / "index.sqlite", CONTRACTS, CHAIN_ID)
    for number in range(1, max((log.block_number for log in logs), default=0) + 1):
        block = Block(number, f"0x{number:064x}", f"0x{number - 1:064x}")
        ledger.apply([block], [log for log in logs if log.block_number == number], finalized=number, cursor=block)
    return ledger


def _reject(conn: sqlite3.Connection, der: bytes, now: int = NOW, chain_id: int = CHAIN_ID) -> CertificateRejected:
    with pytest.raises(CertificateRejected) as caught:
        check_certificate(conn, der, chain_id, now)
    return caught.value


def test_valid_certificate_and_its_record(tmp_path: Path) -> None:
    der = _cert()
    info = _info(der)
    ledger = _ledger(tmp_path, [_registered(info, 3)])
    assert check_certificate(ledger.conn, der, CHAIN_ID, NOW) == info
    record = lookup(ledger.conn, info.cert_hash, WALLET)
    assert record == CertRecord(
        cert_hash=info.cert_hash, owner=WALLET, key_hash=info.key_hash, pem_cid="bafkreipem3",
        not_after=info.not_after, registered_block=3, revoked=False, revoked_at=None, compromised_at=None,
        reason=None, revoked_block=None,
    )  # fmt: skip
    assert lookup(ledger.conn, b"\x77" * 32, WALLET) is None
    assert lookup(ledger.conn, info.cert_hash, OTHER) is None  # records are per owner
    assert lookup(ledger.conn, info.cert_hash, WALLET.lower()) == record  # any spelling of the owner
    assert records_of(ledger.conn, info.cert_hash) == [record]
    assert verdict(ledger.conn, record, NOW) == "valid"
    # A read-only connection (how the tunnel opens the provider's index) answers the same.
    from indexer import db

    readonly = db.connect(ledger.path, readonly=True)
    assert check_certificate(readonly, der, CHAIN_ID, NOW) == info
    # Also without sqlite3.Row rows.
    plain = sqlite3.connect(ledger.path)
    assert lookup(plain, info.cert_hash, WALLET) == record


def test_every_rejection_reason(tmp_path: Path) -> None:
    good = _cert()
    revoked, key_swapped, stolen, short, unstaked = _cert(), _cert(), _cert(), _cert(), _cert(STAKER)
    i_good, i_revoked, i_key, i_stolen, i_short, i_unstaked = map(
        _info, (good, revoked, key_swapped, stolen, short, unstaked)
    )
    logs = [
        _registered(i_good, 1),
        _registered(i_revoked, 2),
        _revoked(i_revoked, 3, reason=1, compromised_at=NOW - 3600),
        _registered(i_key, 4, key_hash=b"\x4b" * 32),
        _registered(i_stolen, 5, owner=OTHER),  # only another wallet registered it
        _registered(i_short, 6, not_after=NOW - 1),  # the wallet registered a shorter life than the certificate's
        _staked(STAKER, 7),
        *_unbonded(STAKER, 8),
        _registered(i_unstaked, 10),  # a provider with nothing bonded registers at once
    ]
    conn = _ledger(tmp_path, logs).conn
    seen: dict[str, CertificateRejected] = {}

    seen["bad-certificate"] = _reject(conn, b"not a certificate")
    seen["wrong-chain"] = _reject(conn, good, chain_id=CHAIN_ID + 1)
    seen["unregistered"] = _reject(conn, _cert())
    seen["revoked"] = _reject(conn, revoked)
    seen["expired"] = _reject(conn, good, now=i_good.not_after)
    seen["not-yet-valid"] = _reject(conn, good, now=i_good.not_before - 1)
    seen["key-mismatch"] = _reject(conn, key_swapped)
    seen["owner-mismatch"] = _reject(conn, stolen)
    seen["unstaked"] = _reject(conn, unstaked)
    assert set(seen) == REASONS
    for reason, error in seen.items():
        assert error.reason == reason
        assert isinstance(error, TunnelError) and error.exit_code == 10
        assert reason in str(error)
    assert "0x" + i_revoked.cert_hash.hex() in str(seen["revoked"])
    assert "(key-compromise) in block 3" in str(seen["revoked"])
    assert str(OTHER) in str(seen["owner-mismatch"])
    assert str(STAKER) in str(seen["unstaked"])

    # The registered not-after binds even when the certificate itself lives longer.
    assert _reject(conn, short).reason == "expired"
    assert check_certificate(conn, good, CHAIN_ID, i_good.not_after - 1) == i_good


def test_order_of_checks(tmp_path: Path) -> None:
    """A revoked certificate is reported revoked even when it has also expired; wrong chain beats unregistered;
    what the record says beats what the owner's stake says."""
    der = _cert(days=1)
    info = _info(der)
    revoked, key_swapped = _cert(STAKER), _cert(STAKER)
    i_revoked, i_key = _info(revoked), _info(key_swapped)
    logs = [
        _registered(info, 1),
        _revoked(info, 2),
        _staked(STAKER, 3),
        _registered(i_revoked, 4),
        _registered(i_key, 5, key_hash=b"\x4b" * 32),
        _revoked(i_revoked, 6),
        *_unbonded(STAKER, 7),
    ]
    conn = _ledger(tmp_path, logs).conn
    assert _reject(conn, der, now=info.not_after + 10).reason == "revoked"
    assert _reject(conn, _cert(chain_id=5)).reason == "wrong-chain"
    assert _reject(conn, revoked).reason == "revoked"
    assert _reject(conn, key_swapped).reason == "key-mismatch"
    assert verdict(conn, lookup(conn, i_key.cert_hash, STAKER), NOW) == "unstaked"


def test_copy_under_another_wallet_never_decides(tmp_path: Path) -> None:
    """Issue 11, finding 4: a front-runner registers the wallet's certificate hash first and revokes its copy.
    The wallet's own registration is what counts: valid, and never reported revoked."""
    der = _cert()
    info = _info(der)
    logs = [
        _registered(info, 1, owner=OTHER, key_hash=b"\x66" * 32),  # the copy, mined first
        _revoked(info, 2, owner=OTHER),
        _registered(info, 3),  # the wallet's own
    ]
    conn = _ledger(tmp_path, logs).conn
    assert check_certificate(conn, der, CHAIN_ID, NOW) == info
    mine, copy = lookup(conn, info.cert_hash, WALLET), lookup(conn, info.cert_hash, OTHER)
    assert mine is not None and not mine.revoked and mine.registered_block == 3
    assert copy is not None and copy.revoked and copy.owner == OTHER
    assert records_of(conn, info.cert_hash) == [copy, mine]
    assert invalid_among(conn, [(WALLET, info.cert_hash)]) == {}
    assert invalid_among(conn, [(OTHER, info.cert_hash)]) == {(OTHER, info.cert_hash): "revoked"}


def test_validity_follows_the_owners_stake(tmp_path: Path) -> None:
    """Issue 11, finding 5: a provider's or verifier's certificate counts while it has stake bonded (thawing
    included), not once it has none; a client (never staked) keeps its certificates."""
    provider_cert, verifier_cert, client_cert = _cert(STAKER), _cert(OTHER), _cert(WALLET)
    infos = [_info(d) for d in (provider_cert, verifier_cert, client_cert)]
    thawing = make_log(
        "Staking", "UnstakeRequested", 6, 0, account=STAKER, amount=2_000 * E18, active=0, thawing=2_000 * E18,
        thawEnd=NOW + 10,
    )  # fmt: skip
    logs = [
        _staked(STAKER, 1),
        _staked(OTHER, 2, role=2, amount=500 * E18),
        *(_registered(i, 3 + n) for n, i in enumerate(infos)),
    ]
    ledger = _ledger(tmp_path, [*logs, thawing])
    conn = ledger.conn
    for der in (provider_cert, verifier_cert, client_cert):
        check_certificate(conn, der, CHAIN_ID, NOW)  # thawing stake still counts
    assert stake_counts(conn, STAKER) and stake_counts(conn, OTHER) and stake_counts(conn, WALLET)
    slashed_to_nothing = make_log(
        "Staking", "Slashed", 7, 0, account=OTHER, slasher=CONTRACTS["SlashingManager"], fromActive=500 * E18,
        fromThawing=0, active=0, thawing=0,
    )  # fmt: skip
    withdrawn = make_log("Staking", "Withdrawn", 8, 0, account=STAKER, amount=2_000 * E18)
    ledger.close()
    conn = _ledger(tmp_path / "later", [*logs, thawing, slashed_to_nothing, withdrawn]).conn
    assert _reject(conn, provider_cert).reason == "unstaked"
    assert _reject(conn, verifier_cert).reason == "unstaked"
    assert check_certificate(conn, client_cert, CHAIN_ID, NOW) == infos[2]
    assert not stake_counts(conn, STAKER) and not stake_counts(conn, OTHER) and stake_counts(conn, WALLET)
    pairs = [(STAKER, infos[0].cert_hash), (OTHER, infos[1].cert_hash), (WALLET, infos[2].cert_hash)]
    assert invalid_among(conn, pairs) == {pairs[0]: "unstaked", pairs[1]: "unstaked"}


def test_certificate_without_wallet_is_bad(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no wallet")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(START).not_valid_after(START + dt.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    conn = _ledger(tmp_path, []).conn
    error = _reject(conn, certificate.public_bytes(serialization.Encoding.DER))
    assert error.reason == "bad-certificate" and "subjectAltName" in str(error)


def test_invalid_among(tmp_path: Path) -> None:
    ders = [_cert() for _ in range(4)]
    infos = [_info(d) for d in ders]
    logs = [_registered(i, n + 1) for n, i in enumerate(infos[:3])]
    logs += [_revoked(infos[0], 4), _revoked(infos[2], 5, reason=4)]
    conn = _ledger(tmp_path, logs).conn
    pairs = [(WALLET, i.cert_hash) for i in infos]
    assert invalid_among(conn, pairs) == {pairs[0]: "revoked", pairs[2]: "revoked"}
    assert invalid_among(conn, iter(pairs[1:2])) == {}
    assert invalid_among(conn, []) == {}
    # The same hashes under another wallet are other records (none registered): nothing to say.
    assert invalid_among(conn, [(OTHER, i.cert_hash) for i in infos]) == {}
    # Far more certificates than SQLite's bound-parameter limit still take one query.
    many = [(WALLET, bytes([n % 256, n // 256]) + b"\x00" * 30) for n in range(40_000)] + [pairs[2]]
    assert invalid_among(conn, many) == {pairs[2]: "revoked"}
    record = lookup(conn, infos[2].cert_hash, WALLET)
    assert record is not None and record.reason == 4


def test_lookups_use_the_primary_key(tmp_path: Path) -> None:
    conn = _ledger(tmp_path, []).conn
    for where in ("cert_key = ?", "cert_hash = ?"):  # lookup, records_of
        plan = " ".join(
            str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN SELECT * FROM certificates WHERE {where}", ("x",))
        )
        assert "PRIMARY KEY" in plan or "USING" in plan, plan
    with pytest.raises(ValueError, match="32 bytes"):
        lookup(conn, b"short", WALLET)


def test_unknown_reason_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="bogus"):
        CertificateRejected("bogus", "x")


def test_reason_labels_follow_the_contract_enum() -> None:
    from flownet.certstatus import REVOCATION_REASONS, reason_label
    from flownet.chain.registry import RevocationReason

    assert tuple(r.label for r in RevocationReason) == REVOCATION_REASONS
    assert reason_label(1) == "key-compromise" and reason_label(9) == "reason 9" and reason_label(None) == "reason None"
