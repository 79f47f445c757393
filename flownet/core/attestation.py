"""Verifier attestations: the signed failure statements a quorum of verifiers opens a dispute with (pure, no I/O).

An attestation is a staked verifier's EIP-712 signature of
``Attestation(address provider,uint64 epoch,uint8 kind,string evidenceCid)`` over the SlashingManager's
domain (flownet.core.eip712). One class, `Attestation`, serves every party: the verifier that signs
and posts one, the full node that accepts and serves them (`from_submission`, `check`), and the
verifier that reads them back to gather a quorum (`from_json`).

A full node accepts an attestation when it is well formed, its signature is canonical and recovers
to the verifier it names, that verifier is staked (role verifier, active stake > 0, as indexed), and
the epoch is neither in the future nor past the statute of limitations; each refusal is an
`AttestationRejected` with a machine-readable `reason` (the API maps it to an HTTP status).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from flownet.core import eip712
from flownet.core.eip712 import KIND_NAMES, KINDS, Rejected, recover_statement

__all__ = ["FIELDS", "MAX_CID_LENGTH", "REASONS", "Attestation", "AttestationRejected", "check", "recover"]

MAX_CID_LENGTH = 128  # SlashingManager.MAX_CID_LENGTH
FIELDS = ("provider", "epoch", "kind", "evidence_cid", "verifier", "signature")
#: Why an attestation is refused (the API answers each with its HTTP status: indexer.rejections).
REASONS = ("invalid", "wrong_epoch", "bad_signature", "not_staked")
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")


class AttestationRejected(Rejected):
    """An attestation breaks an acceptance rule; `reason` is one of REASONS."""

    REASONS = REASONS


@dataclass(frozen=True)
class Attestation:
    """A verifier's signed failure attestation, as posted to and served by a full node."""

    provider: str
    epoch: int
    kind: int
    evidence_cid: str
    verifier: str
    signature: bytes = field(repr=False)

    def to_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "epoch": self.epoch,
            "kind": self.kind,
            "evidence_cid": self.evidence_cid,
            "verifier": self.verifier,
            "signature": "0x" + self.signature.hex(),
        }

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``Attestation`` struct's values."""
        return {
            "provider": to_checksum_address(self.provider),
            "epoch": self.epoch,
            "kind": self.kind,
            "evidenceCid": self.evidence_cid,
        }

    def digest(self, chain_id: int, manager: str) -> bytes:
        """The hash the verifier signs (SlashingManager's ``attestationDigest``)."""
        return eip712.digest(eip712.slashing_domain(chain_id, manager), "Attestation", self.message())

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Attestation:
        """Parse one entry of ``GET /attestations`` (ValueError if malformed; extra fields are ignored,
        the signature is checked by whoever counts it)."""
        try:
            signature = str(data["signature"])
            if not signature.startswith("0x"):
                raise ValueError(f"signature {signature!r} lacks 0x")
            epoch, kind = data["epoch"], data["kind"]
            if isinstance(epoch, bool) or isinstance(kind, bool):
                raise ValueError("epoch and kind must be integers")
            return cls(
                str(data["provider"]),
                int(epoch),  # type: ignore[call-overload]
                int(kind),  # type: ignore[call-overload]
                str(data["evidence_cid"]),
                str(data["verifier"]),
                bytes.fromhex(signature[2:]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed attestation {data!r}: {exc}") from None

    @classmethod
    def from_submission(cls, data: Any) -> Attestation:
        """Parse the body of ``POST /attestations``; anything malformed is rejected as "invalid"."""
        if not isinstance(data, dict):
            raise AttestationRejected("invalid", "an attestation must be a JSON object")
        missing = [k for k in FIELDS if k not in data]
        if missing:
            raise AttestationRejected("invalid", f"attestation lacks {', '.join(missing)}")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise AttestationRejected(
                "invalid", f"unknown field {unknown[0]!r}; an attestation has {', '.join(FIELDS)}"
            )
        for key in ("provider", "verifier"):
            value = data[key]
            if not isinstance(value, str) or not is_address(value):
                raise AttestationRejected("invalid", f"invalid {key} {value!r}: expected 0x followed by 40 hex digits")
        epoch, kind = data["epoch"], data["kind"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 2**64:
            raise AttestationRejected("invalid", f"invalid epoch {epoch!r}: expected an integer in 0..2^64-1")
        if isinstance(kind, str) and kind.lower() in KINDS:
            kind = KINDS[kind.lower()]
        if isinstance(kind, bool) or not isinstance(kind, int) or kind not in KIND_NAMES:
            raise AttestationRejected(
                "invalid", f"invalid kind {data['kind']!r}: expected 0..3 or one of {', '.join(KINDS)}"
            )
        cid = data["evidence_cid"]
        if not isinstance(cid, str) or not 0 < len(cid.encode()) <= MAX_CID_LENGTH:
            raise AttestationRejected(
                "invalid", f"invalid evidence_cid {cid!r}: expected a non-empty CID of at most {MAX_CID_LENGTH} bytes"
            )
        signature = data["signature"]
        if not isinstance(signature, str) or not _SIGNATURE_RE.match(signature):
            raise AttestationRejected("invalid", f"invalid signature {signature!r}: expected 0x and 130 hex digits")
        return cls(
            to_checksum_address(data["provider"]),
            epoch,
            kind,
            cid,
            to_checksum_address(data["verifier"]),
            bytes.fromhex(signature[2:]),
        )


def recover(chain_id: int, manager: str, att: Attestation) -> str:
    """The signer of `att` (only canonical signatures: 65 bytes, v 27/28, low s, as the contract requires)."""
    return recover_statement(att.digest(chain_id, manager), att.signature, AttestationRejected)


def check(
    att: Attestation,
    chain_id: int,
    manager: str,
    current_epoch: int,
    statute_epochs: int,
    is_staked_verifier: Callable[[str], bool],
) -> None:
    """Raise AttestationRejected unless a full node should store `att` in `current_epoch`."""
    if att.epoch > current_epoch:
        raise AttestationRejected(
            "wrong_epoch", f"epoch {att.epoch} is in the future (the current epoch is {current_epoch})"
        )
    if current_epoch - att.epoch > statute_epochs:
        raise AttestationRejected(
            "wrong_epoch",
            f"epoch {att.epoch} is past the statute of limitations ({statute_epochs} epochs before the current "
            f"epoch {current_epoch})",
        )
    signer = recover(chain_id, manager, att)
    if signer != att.verifier:
        raise AttestationRejected(
            "bad_signature", f"signature is by {signer}, not by verifier {att.verifier} (or for another deployment)"
        )
    if not is_staked_verifier(att.verifier):
        raise AttestationRejected("not_staked", f"{att.verifier} has no active verifier stake on this deployment")
