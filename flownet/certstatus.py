"""Is a peer's certificate good right now? Answered from the local index, never from the RPC.

The tunnel calls `check_certificate` once per TLS connection with the peer's DER certificate: the
certificate must name a wallet on this chain, be registered on chain by that wallet with the same key,
not be revoked, and be inside both its own validity window and the not-after the wallet registered.
The answer comes from the ``certificates`` table the indexer projects from CertificateRegistry events
(migration 0003), looked up by primary key, so a check costs one indexed read.

Hashes are stored as ``0x`` + lowercase hex of the bytes32 and owners as checksummed addresses, as
`indexer.projections` writes them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from flownet.errors import FlowNetError, TunnelError
from flownet.pki import CertInfo, inspect

__all__ = [
    "REASONS",
    "REVOCATION_REASONS",
    "CertRecord",
    "CertificateRejected",
    "check_certificate",
    "lookup",
    "reason_label",
    "revoked_among",
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


def _key(cert_hash: bytes) -> str:
    if len(cert_hash) != 32:
        raise ValueError(f"a certificate hash is 32 bytes (got {len(cert_hash)}: 0x{cert_hash.hex()})")
    return "0x" + cert_hash.hex()


def _bytes32(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def lookup(conn: sqlite3.Connection, cert_hash: bytes) -> CertRecord | None:
    """The indexed record of `cert_hash` (32 bytes), or None when the index has never seen it registered."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM certificates WHERE cert_hash = ?", (_key(cert_hash),)).fetchone()
    if row is None:
        return None
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
    wrong-chain, unregistered, revoked, expired, not-yet-valid, key-mismatch, owner-mismatch.
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
    record = lookup(conn, info.cert_hash)
    if record is None:
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
    if record.owner.lower() != info.wallet.lower():
        raise CertificateRejected("owner-mismatch", f"{shown} names {info.wallet} but was registered by {record.owner}")
    return info


def revoked_among(conn: sqlite3.Connection, cert_hashes: Iterable[bytes]) -> set[bytes]:
    """Those of `cert_hashes` the index records as revoked, in one query (any number of hashes)."""
    keys = [_key(h) for h in cert_hashes]
    if not keys:
        return set()
    rows = conn.execute(
        "SELECT cert_hash FROM certificates WHERE revoked = 1 AND cert_hash IN (SELECT value FROM json_each(?))",
        (json.dumps(keys),),
    ).fetchall()
    return {_bytes32(str(row[0])) for row in rows}
