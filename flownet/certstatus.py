"""Is a peer's certificate good right now? Answered from the local index, never from the RPC.

The tunnel calls `check_certificate` once per TLS connection with the peer's DER certificate: the
certificate must name a wallet on this chain, be registered on chain by that wallet with the same key,
not be revoked, be inside both its own validity window and the not-after the wallet registered, and
the wallet's stake must count (as CertificateRegistry.isValid: a wallet that never staked, i.e. a
client, or a provider or verifier with stake bonded, active or thawing).

CertificateRegistry keeps one record per (owner, certHash), and a certificate is looked up only under
the wallet it names: another wallet's registration (or revocation) of the same hash is a record of
its own that never decides anything for this certificate. The answer comes from the ``certificates``
table the indexer projects from CertificateRegistry events (migrations 0003, 0007), keyed
``"<owner>:<cert_hash>"``, and the ``stakers`` row of the owner, both read by primary key.

Hashes are stored as ``0x`` + lowercase hex of the bytes32 and owners as checksummed addresses, as
`indexer.projections` writes them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from eth_utils.address import to_checksum_address

from flownet.errors import FlowNetError, TunnelError
from flownet.pki import CertInfo, inspect

__all__ = [
    "REASONS",
    "REVOCATION_REASONS",
    "CertRecord",
    "CertificateRejected",
    "check_certificate",
    "invalid_among",
    "lookup",
    "reason_label",
    "records_of",
    "stake_counts",
    "verdict",
]

REASONS = frozenset(
    {
        "unregistered",
        "revoked",
        "expired",
        "not-yet-valid",
        "wrong-chain",
        "key-mismatch",
        "owner-mismatch",
        "unstaked",
        "bad-certificate",
    }
)


# ICertificateRegistry.RevocationReason, by value, as the CLI spells them.
REVOCATION_REASONS = (
    "unspecified",
    "key-compromise",
    "superseded",
    "cessation-of-operation",
    "slashed",
    "unbonded",
)


def reason_label(reason: int | None) -> str:
    """The name of a RevocationReason value (``key-compromise``), or ``reason <n>`` for an unknown one."""
    if reason is not None and 0 <= reason < len(REVOCATION_REASONS):
        return REVOCATION_REASONS[reason]
    return f"reason {reason}"


class CertificateRejected(TunnelError):
    """A peer's certificate is not acceptable; `reason` is one of `REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown certificate rejection reason {reason!r}")
        self.reason = reason
        super().__init__(f"certificate rejected ({reason}): {message}")


@dataclass(frozen=True)
class CertRecord:
    """One row of the ``certificates`` table."""

    cert_hash: bytes
    owner: str  # checksummed
    key_hash: bytes
    pem_cid: str
    not_after: int
    registered_block: int
    revoked: bool
    revoked_at: int | None
    compromised_at: int | None
    reason: int | None  # ICertificateRegistry.RevocationReason
    revoked_block: int | None


_COLUMNS = (
    "cert_hash, owner, key_hash, pem_cid, not_after, registered_block, "
    "revoked, revoked_at, compromised_at, reason, revoked_block"
)


def _hash_text(cert_hash: bytes) -> str:
    if len(cert_hash) != 32:
        raise ValueError(f"a certificate hash is 32 bytes (got {len(cert_hash)}: 0x{cert_hash.hex()})")
    return "0x" + cert_hash.hex()


def _key(cert_hash: bytes, owner: str) -> str:
    """The ``cert_key`` of `owner`'s record of `cert_hash` (as `indexer.projections.cert_key` writes it)."""
    return f"{to_checksum_address(owner)}:{_hash_text(cert_hash)}"


def _bytes32(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def lookup(conn: sqlite3.Connection, cert_hash: bytes, owner: str) -> CertRecord | None:
    """`owner`'s indexed record of `cert_hash` (32 bytes), or None when the index has never seen `owner`
    register it (whoever else did)."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM certificates WHERE cert_key = ?", (_key(cert_hash, owner),)).fetchone()
    return None if row is None else _record(row)


def records_of(conn: sqlite3.Connection, cert_hash: bytes) -> list[CertRecord]:
    """Every indexed record of `cert_hash`, one per wallet that registered it, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM certificates WHERE cert_hash = ? ORDER BY registered_block, owner",
        (_hash_text(cert_hash),),
    ).fetchall()
    return [_record(row) for row in rows]


def stake_counts(conn: sqlite3.Connection, owner: str) -> bool:
    """Whether `owner`'s stake lets its certificates count, as CertificateRegistry.stakeCounts: a wallet
    that never staked (a client) or a provider or verifier with stake bonded (active or thawing)."""
    row = conn.execute(
        "SELECT role, active, thawing FROM stakers WHERE address = ?", (to_checksum_address(owner),)
    ).fetchone()
    if row is None or str(row[0]) not in ("provider", "verifier"):
        return True
    return int(str(row[1])) + int(str(row[2])) != 0


def verdict(conn: sqlite3.Connection, record: CertRecord | None, now: int) -> str:
    """What the index says of a record at unix time `now`, as CertificateRegistry.isValid decides it:
    ``valid``, ``unregistered`` (None), ``revoked``, ``expired`` or ``unstaked`` (its owner is a provider
    or verifier with nothing bonded)."""
    if record is None:
        return "unregistered"
    if record.revoked:
        return "revoked"
    if now >= record.not_after:
        return "expired"
    if not stake_counts(conn, record.owner):
        return "unstaked"
    return "valid"


def _record(row: Any) -> CertRecord:
    return CertRecord(
        cert_hash=_bytes32(str(row[0])),
        owner=str(row[1]),
        key_hash=_bytes32(str(row[2])),
        pem_cid=str(row[3]),
        not_after=int(row[4]),
        registered_block=int(row[5]),
        revoked=bool(row[6]),
        revoked_at=_optional_int(row[7]),
        compromised_at=_optional_int(row[8]),
        reason=_optional_int(row[9]),
        revoked_block=_optional_int(row[10]),
    )


def check_certificate(conn: sqlite3.Connection, der: bytes, chain_id: int, now: int) -> CertInfo:
    """The `CertInfo` of the DER certificate `der` if it is good on `chain_id` at unix time `now`.

    Raises `CertificateRejected` naming the first failed check, in this order: bad-certificate,
    wrong-chain, unregistered (nobody registered it) or owner-mismatch (only wallets other than the one
    it names did), revoked, expired, not-yet-valid, key-mismatch, unstaked.
    """
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateRejected("bad-certificate", f"not a DER X.509 certificate: {exc}") from None
    try:
        info = inspect(certificate)
    except (FlowNetError, ValueError) as exc:
        raise CertificateRejected("bad-certificate", str(exc)) from None
    shown = f"0x{info.cert_hash.hex()}"
    if info.chain_id != chain_id:
        raise CertificateRejected(
            "wrong-chain", f"{shown} names chain {info.chain_id}, this deployment is on chain {chain_id}"
        )
    record = lookup(conn, info.cert_hash, info.wallet)
    if record is None:
        others = [r.owner for r in records_of(conn, info.cert_hash)]
        if others:
            raise CertificateRejected(
                "owner-mismatch",
                f"{shown} names {info.wallet}, who never registered it; only {', '.join(others)} did "
                f"(a copy under another wallet counts for nothing)",
            )
        raise CertificateRejected("unregistered", f"{shown} of {info.wallet} is not registered (in the local index)")
    if record.revoked:
        raise CertificateRejected(
            "revoked",
            f"{shown} was revoked at {record.revoked_at} ({reason_label(record.reason)}) "
            f"in block {record.revoked_block}",
        )
    expiry = min(record.not_after, info.not_after)
    if now >= expiry:
        raise CertificateRejected("expired", f"{shown} expired at {expiry} (now {now})")
    if now < info.not_before:
        raise CertificateRejected("not-yet-valid", f"{shown} is valid from {info.not_before} (now {now})")
    if record.key_hash != info.key_hash:
        raise CertificateRejected(
            "key-mismatch",
            f"{shown} carries key 0x{info.key_hash.hex()}, the registry has 0x{record.key_hash.hex()}",
        )
    if not stake_counts(conn, info.wallet):
        raise CertificateRejected(
            "unstaked",
            f"{shown} names {info.wallet}, a provider or verifier with no stake bonded (fully unbonded or slashed): "
            f"its certificates count only while its stake does",
        )
    return info


def invalid_among(conn: sqlite3.Connection, certs: Iterable[tuple[str, bytes]]) -> dict[tuple[str, bytes], str]:
    """Those of `certs` (owner, cert hash) that the index records as revoked (``"revoked"``) or whose
    owner's stake no longer counts (``"unstaked"``), in one query (any number of certificates).
    Owners come back as given."""
    given = {_key(h, owner): (owner, h) for owner, h in certs}
    if not given:
        return {}
    rows = conn.execute(
        "SELECT c.cert_key, c.revoked, s.role, s.active, s.thawing "
        "FROM certificates c LEFT JOIN stakers s ON s.address = c.owner "
        "WHERE c.cert_key IN (SELECT value FROM json_each(?)) AND (c.revoked = 1 OR "
        "(s.role IN ('provider', 'verifier') AND CAST(s.active AS INTEGER) = 0 AND CAST(s.thawing AS INTEGER) = 0))",
        (json.dumps(list(given)),),
    ).fetchall()
    return {given[str(row[0])]: "revoked" if row[1] else "unstaked" for row in rows}
