"""Verifier attestations submitted to a full node: parse, check, and the reasons one is refused.

An attestation is a staked verifier's EIP-712 signature of
``Attestation(address provider,uint64 epoch,uint8 kind,string evidenceCid)`` over the SlashingManager's
domain; a quorum of them opens a dispute on chain. The node accepts one when it is well formed, its
signature is canonical and recovers to the verifier it names, that verifier is staked (role verifier,
active stake > 0, as indexed), and the epoch is neither in the future nor past the statute of limitations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import is_address, to_checksum_address

from flownet.chain.slashing import KINDS, attestation_typed_data
from flownet.core.heartbeat import SECP256K1_HALF_N
from flownet.errors import FlowNetError

MAX_CID_LENGTH = 128  # SlashingManager.MAX_CID_LENGTH
KIND_NAMES = {v: k for k, v in KINDS.items()}
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")

# Why an attestation was refused -> the HTTP status a full node answers with.
REASONS = {"invalid": 400, "wrong_epoch": 400, "bad_signature": 401, "not_staked": 403}
FIELDS = ("provider", "epoch", "kind", "evidence_cid", "verifier", "signature")


class AttestationRejected(FlowNetError):
    """An attestation breaks an acceptance rule; `reason` is one of REASONS."""

    exit_code = 10

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.status = REASONS[reason]
        super().__init__(message)


@dataclass(frozen=True)
class SignedAttestation:
    provider: str
    epoch: int
    kind: int
    evidence_cid: str
    verifier: str
    signature: bytes

    @classmethod
    def from_json(cls, data: Any) -> SignedAttestation:
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


def recover(chain_id: int, manager: str, att: SignedAttestation) -> str:
    """The signer of `att` (only canonical signatures: 65 bytes, v 27/28, low s, as the contract requires)."""
    sig = att.signature
    s = int.from_bytes(sig[32:64], "big")
    if len(sig) != 65 or sig[64] not in (27, 28) or not 0 < s <= SECP256K1_HALF_N:
        raise AttestationRejected("bad_signature", "signature is not canonical (need 65 bytes, v 27/28 and low s)")
    typed = attestation_typed_data(chain_id, manager, att.provider, att.epoch, att.kind, att.evidence_cid)
    try:
        return str(Account.recover_message(encode_typed_data(full_message=typed), signature=sig))
    except Exception as exc:  # eth-keys raises several types for unrecoverable signatures
        raise AttestationRejected("bad_signature", f"cannot recover a signer from the signature: {exc}") from None


def check(
    att: SignedAttestation,
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
