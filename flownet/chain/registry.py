"""Typed bindings for CertificateRegistry (DeCA): a wallet registers and revokes its own TLS certificates.

Records are kept per owner: `status(cert_hash, owner)` is the record `owner` registered (another
wallet's registration of the same hash is its own record), and `is_valid(cert_hash, owner)` also
needs the owner's stake to count (`stake_counts`: never staked, or a provider or verifier with stake
bonded). Writes go through `Sender` and return its `Sent` record; reverts arrive as
`TransactionFailed` with the sentences of `flownet.chain.reverts` (already registered, too many
active, not registered by you, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from flownet.chain.deploy import Deployment
from flownet.chain.tx import Sender, Sent
from flownet.chain.views import call_struct
from flownet.errors import ConfigError

__all__ = ["OWNER_REASONS", "CertificateStatus", "Registry", "RevocationReason", "certificate_status", "parse_reason"]


class RevocationReason(IntEnum):
    """ICertificateRegistry.RevocationReason."""

    UNSPECIFIED = 0
    KEY_COMPROMISE = 1
    SUPERSEDED = 2
    CESSATION_OF_OPERATION = 3
    SLASHED = 4  # only Staking, through revokeAllOf
    UNBONDED = 5  # only Staking, through revokeAllOf

    @property
    def label(self) -> str:
        """The CLI spelling: ``key-compromise``, ``cessation-of-operation``, ..."""
        return self.name.lower().replace("_", "-")


# The reasons an owner may give to revoke(); Slashed and Unbonded are Staking's.
OWNER_REASONS = (
    RevocationReason.UNSPECIFIED,
    RevocationReason.KEY_COMPROMISE,
    RevocationReason.SUPERSEDED,
    RevocationReason.CESSATION_OF_OPERATION,
)


def parse_reason(text: str) -> RevocationReason:
    """An owner's revocation reason from its CLI spelling (``key-compromise``) or its number."""
    wanted = text.strip().lower().replace("_", "-")
    for reason in OWNER_REASONS:
        if wanted in (reason.label, str(int(reason))):
            return reason
    choices = ", ".join(r.label for r in OWNER_REASONS)
    raise ConfigError(f"revocation reason {text!r} is not one an owner may give (choose from {choices})")


@dataclass(frozen=True)
class CertificateStatus:
    """ICertificateRegistry.Certificate as `status(certHash, owner)` returns it (owner is the zero address
    when that owner never registered the hash)."""

    owner: str
    key_hash: bytes
    not_after: int
    registered_at: int
    revoked: bool
    revoked_at: int
    compromised_at: int
    reason: RevocationReason

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", RevocationReason(self.reason))

    @property
    def registered(self) -> bool:
        return int(self.owner, 16) != 0


def certificate_status(
    registry: Any, cert_hash: bytes, owner: str, block: int | str | None = None
) -> CertificateStatus:
    """The registry's record of (`owner`, `cert_hash`), built by field name (flownet.chain.views)."""
    return call_struct(CertificateStatus, registry, "status", cert_hash, owner, block=block)


def _bytes32(value: bytes, what: str) -> bytes:
    if len(value) != 32:
        raise ConfigError(f"{what} must be 32 bytes (got {len(value)}: 0x{value.hex()})")
    return value


class Registry:
    """One account's bindings to the deployment's CertificateRegistry (`account` None: views only)."""

    def __init__(self, w3: Web3, deployment: Deployment, account: LocalAccount | None = None) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self.sender = Sender(w3, account) if account is not None else None
        self.contract = deployment.contract(w3, "CertificateRegistry")

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def _sender(self) -> Sender:
        if self.sender is None:
            raise ConfigError("these registry bindings have no wallet: they can only read")
        return self.sender

    # ------------------------------------------------------------------ writes

    def register(self, cert_hash: bytes, key_hash: bytes, pem_cid: str, not_after: int) -> Sent:
        fn = self.contract.functions.register(
            _bytes32(cert_hash, "certificate hash"), _bytes32(key_hash, "key hash"), pem_cid, not_after
        )
        return self._sender().transact(fn, "register certificate")

    def revoke(self, cert_hash: bytes, reason: RevocationReason, compromised_at: int = 0) -> Sent:
        fn = self.contract.functions.revoke(_bytes32(cert_hash, "certificate hash"), int(reason), compromised_at)
        return self._sender().transact(fn, "revoke certificate")

    # ------------------------------------------------------------------ views

    def status(self, cert_hash: bytes, owner: str) -> CertificateStatus:
        """The record `owner` registered for `cert_hash` (all zero if it never did)."""
        return certificate_status(self.contract, _bytes32(cert_hash, "certificate hash"), owner)

    def is_valid(self, cert_hash: bytes, owner: str) -> bool:
        """`owner` registered `cert_hash`, has not revoked it, it has not expired, and its stake counts."""
        return bool(self.contract.functions.isValid(_bytes32(cert_hash, "certificate hash"), owner).call())

    def stake_counts(self, owner: str) -> bool:
        """Whether `owner`'s stake lets its certificates count (a client, or a bonded provider or verifier)."""
        return bool(self.contract.functions.stakeCounts(owner).call())

    def active_certificates(self, owner: str) -> list[bytes]:
        return [bytes(h) for h in self.contract.functions.activeCertificates(owner).call()]

    def max_active(self) -> int:
        return int(self.contract.functions.MAX_ACTIVE().call())
