"""Receipt and service-proof signatures at tunnel speed: flownet.core.eip712 digests, signed with coincurve.

The digest is exactly the one `eth_account.messages.encode_typed_data` produces for
`Receipt.typed_data` (a test checks them against each other and against the contracts), computed
from a precomputed domain separator, so a client can sign and a provider can verify hundreds of
receipts per second without the generic EIP-712 encoder. Verification applies the contracts' rules
(flownet.core.eip712.signature_problem): a 65-byte ``r || s || v`` signature with v in {27, 28} and
a low s (EIP-2), recovering the order's client; anything else is a `ReceiptError`.
"""

from __future__ import annotations

from coincurve import PrivateKey

from flownet.core import eip712
from flownet.core.eip712 import SignatureInvalid, address_of, signature_problem
from flownet.core.receipts import MarketDomain, Receipt
from flownet.errors import ReceiptError

__all__ = [
    "ReceiptSigner",
    "ServiceProofSigner",
    "domain_separator",
    "receipt_digest",
    "recover_proof_signer",
    "recover_signer",
    "service_proof_digest",
    "service_proof_separator",
]

#: SlashingManager's EIP-712 domain (flownet.core.eip712.slashing_domain).
SLASHING_DOMAIN_NAME = eip712.SLASHING_NAME
SLASHING_DOMAIN_VERSION = eip712.VERSION


def domain_separator(domain: MarketDomain) -> bytes:
    """The EIP-712 domain separator of a market deployment."""
    return domain.eip712_domain.separator


def receipt_digest(separator: bytes, receipt: Receipt) -> bytes:
    """The 32-byte hash a client signs for `receipt` under the domain `separator`."""
    return eip712.digest(separator, "Receipt", receipt.message())


def service_proof_separator(chain_id: int, manager: str) -> bytes:
    """The EIP-712 domain separator of a deployment's SlashingManager at `manager`."""
    return eip712.slashing_domain(chain_id, manager).separator


def service_proof_digest(separator: bytes, order_id: bytes, epoch: int, bytes_served: int) -> bytes:
    """The 32-byte hash a client signs for a ServiceProof (equals `Slashing.service_proof_digest`)."""
    return eip712.digest(separator, "ServiceProof", {"orderId": order_id, "epoch": epoch, "bytesServed": bytes_served})


def recover_proof_signer(separator: bytes, order_id: bytes, epoch: int, bytes_served: int, signature: bytes) -> str:
    """The checksum address that signed a ServiceProof, or ReceiptError if SlashingManager would reject it."""
    return _recover(service_proof_digest(separator, order_id, epoch, bytes_served), signature, "service proof")


def recover_signer(separator: bytes, receipt: Receipt, signature: bytes) -> str:
    """The checksum address that signed `receipt`, or ReceiptError if the market would reject the signature."""
    return _recover(receipt_digest(separator, receipt), signature, "receipt")


def _recover(digest: bytes, signature: bytes, what: str) -> str:
    problem = signature_problem(signature)
    if problem is not None:
        raise ReceiptError(f"{what} signature {problem}")
    try:
        return eip712.recover(digest, signature)
    except SignatureInvalid as exc:
        raise ReceiptError(f"{what} {exc}") from None


class ReceiptSigner:
    """Signs receipts for one market with one client key."""

    def __init__(self, private_key: bytes, domain: MarketDomain) -> None:
        self._key = PrivateKey(private_key)
        self._separator = domain_separator(domain)
        self.address = address_of(self._key.public_key)

    def sign(self, receipt: Receipt) -> bytes:
        """``r || s || v`` with v in {27, 28}; coincurve always produces the low-s form."""
        return eip712.sign(self._key, receipt_digest(self._separator, receipt))


class ServiceProofSigner:
    """Signs ServiceProofs (bytes served for an order in an epoch) for one SlashingManager with one client key."""

    def __init__(self, private_key: bytes, chain_id: int, manager: str) -> None:
        self._key = PrivateKey(private_key)
        self.separator = service_proof_separator(chain_id, manager)

    def sign(self, order_id: bytes, epoch: int, bytes_served: int) -> bytes:
        return eip712.sign(self._key, service_proof_digest(self.separator, order_id, epoch, bytes_served))
