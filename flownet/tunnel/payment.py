"""Receipt signatures at tunnel speed: the EIP-712 digest computed directly, signed and recovered with coincurve.

The digest is exactly the one `eth_account.messages.encode_typed_data` produces for
`Receipt.typed_data` (a test checks them against each other), but computed from a precomputed domain
separator and type hash, so a client can sign and a provider can verify hundreds of receipts per
second without the generic EIP-712 encoder. Verification applies the contract's rules: a 65-byte
``r || s || v`` signature with v in {27, 28} and a low s (EIP-2), recovering the order's client.
"""

from __future__ import annotations

from coincurve import PrivateKey, PublicKey
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from flownet.core.receipts import DOMAIN_NAME, DOMAIN_VERSION, MarketDomain, Receipt
from flownet.errors import ReceiptError
from flownet.tunnel.meter import has_valid_v, is_low_s

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

_DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_RECEIPT_TYPEHASH = keccak(b"Receipt(bytes32 orderId,uint256 cumulativeBytes,uint256 cumulativeAmount)")
_SERVICE_PROOF_TYPEHASH = keccak(b"ServiceProof(bytes32 orderId,uint64 epoch,uint256 bytesServed)")
#: SlashingManager's EIP-712 domain (flownet.chain.slashing.DOMAIN_NAME / DOMAIN_VERSION).
SLASHING_DOMAIN_NAME = "FlowNet SlashingManager"
SLASHING_DOMAIN_VERSION = "1"


def domain_separator(domain: MarketDomain) -> bytes:
    """The EIP-712 domain separator of a market deployment."""
    return keccak(
        _DOMAIN_TYPEHASH
        + keccak(DOMAIN_NAME.encode())
        + keccak(DOMAIN_VERSION.encode())
        + domain.chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(domain.market[2:])
    )


def receipt_digest(separator: bytes, receipt: Receipt) -> bytes:
    """The 32-byte hash a client signs for `receipt` under the domain `separator`."""
    struct = keccak(
        _RECEIPT_TYPEHASH
        + receipt.order_id
        + receipt.cumulative_bytes.to_bytes(32, "big")
        + receipt.cumulative_amount.to_bytes(32, "big")
    )
    return keccak(b"\x19\x01" + separator + struct)


def service_proof_separator(chain_id: int, manager: str) -> bytes:
    """The EIP-712 domain separator of a deployment's SlashingManager at `manager`."""
    return keccak(
        _DOMAIN_TYPEHASH
        + keccak(SLASHING_DOMAIN_NAME.encode())
        + keccak(SLASHING_DOMAIN_VERSION.encode())
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(manager[2:])
    )


def service_proof_digest(separator: bytes, order_id: bytes, epoch: int, bytes_served: int) -> bytes:
    """The 32-byte hash a client signs for a ServiceProof (equals `Slashing.service_proof_digest`)."""
    struct = keccak(_SERVICE_PROOF_TYPEHASH + order_id + epoch.to_bytes(32, "big") + bytes_served.to_bytes(32, "big"))
    return keccak(b"\x19\x01" + separator + struct)


def recover_proof_signer(separator: bytes, order_id: bytes, epoch: int, bytes_served: int, signature: bytes) -> str:
    """The checksum address that signed a ServiceProof, or ReceiptError if SlashingManager would reject it."""
    return _recover(service_proof_digest(separator, order_id, epoch, bytes_served), signature, "service proof")


def recover_signer(separator: bytes, receipt: Receipt, signature: bytes) -> str:
    """The checksum address that signed `receipt`, or ReceiptError if the market would reject the signature."""
    return _recover(receipt_digest(separator, receipt), signature, "receipt")


def _recover(digest: bytes, signature: bytes, what: str) -> str:
    if len(signature) != 65:
        raise ReceiptError(f"{what} signature must be 65 bytes (got {len(signature)})")
    if not has_valid_v(signature):
        raise ReceiptError(f"{what} signature has v={signature[64]}, not 27 or 28")
    if not is_low_s(signature):
        raise ReceiptError(f"{what} signature has a high s value (malleable; the market rejects it)")
    r = int.from_bytes(signature[:32], "big")
    if r == 0:
        raise ReceiptError(f"{what} signature has r = 0")
    try:
        public = PublicKey.from_signature_and_message(
            signature[:64] + bytes((signature[64] - 27,)), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError/Exception for unrecoverable signatures
        raise ReceiptError(f"{what} signature does not recover a key: {exc}") from None
    return str(to_checksum_address(keccak(public.format(compressed=False)[1:])[-20:]))


class ReceiptSigner:
    """Signs receipts for one market with one client key."""

    def __init__(self, private_key: bytes, domain: MarketDomain) -> None:
        self._key = PrivateKey(private_key)
        self._separator = domain_separator(domain)
        self.address = str(to_checksum_address(keccak(self._key.public_key.format(compressed=False)[1:])[-20:]))

    def sign(self, receipt: Receipt) -> bytes:
        """``r || s || v`` with v in {27, 28}; coincurve always produces the low-s form."""
        raw = self._key.sign_recoverable(receipt_digest(self._separator, receipt), hasher=None)
        return raw[:64] + bytes((raw[64] + 27,))


class ServiceProofSigner:
    """Signs ServiceProofs (bytes served for an order in an epoch) for one SlashingManager with one client key."""

    def __init__(self, private_key: bytes, chain_id: int, manager: str) -> None:
        self._key = PrivateKey(private_key)
        self.separator = service_proof_separator(chain_id, manager)

    def sign(self, order_id: bytes, epoch: int, bytes_served: int) -> bytes:
        raw = self._key.sign_recoverable(
            service_proof_digest(self.separator, order_id, epoch, bytes_served), hasher=None
        )
        return raw[:64] + bytes((raw[64] + 27,))
