"""Verifier attestations a full node accepts: the names the API uses, from flownet.core.attestation.

The parsing, the signature check and the acceptance rules are pure and live in
flownet.core.attestation (one `Attestation` class for verifiers and full nodes alike); the HTTP status
each refusal is answered with lives in indexer.rejections.
"""

from __future__ import annotations

from flownet.core.attestation import FIELDS, MAX_CID_LENGTH, REASONS, Attestation, AttestationRejected, check, recover
from flownet.core.eip712 import KIND_NAMES, KINDS

#: The attestation a full node received (the same class the verifier signs and reads back).
SignedAttestation = Attestation

__all__ = [
    "FIELDS",
    "KINDS",
    "KIND_NAMES",
    "MAX_CID_LENGTH",
    "REASONS",
    "AttestationRejected",
    "SignedAttestation",
    "check",
    "recover",
]
