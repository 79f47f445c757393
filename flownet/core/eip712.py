"""EIP-712 typed data and secp256k1 signatures: FlowNet's one home for both (pure, no I/O).

**Domains.** Every FlowNet signature is over
``EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)``:

| domain | name | verifyingContract | signed structs |
| --- | --- | --- | --- |
| `market_domain` | "FlowNet BandwidthMarket" | the market | Receipt (client), CloseOrder (provider) |
| `heartbeat_domain` | "FlowNet Heartbeat" | Staking | Heartbeat (provider) |
| `slashing_domain` | "FlowNet SlashingManager" | the manager | Attestation (verifier), ServiceProof (client) |

The token's EIP-2612 ``Permit`` is signed over the token's own domain (its name, version "1").

**Structs.** `TYPES` holds each struct's fields exactly as the contracts declare them (their
``*_TYPEHASH`` constants). `typed_data` builds eth-account's ``encode_typed_data(full_message=...)``
form, and `digest` computes the same 32-byte hash directly (``keccak256(0x1901 || separator ||
structHash)``): it is the hash the contracts' ``receiptDigest``, ``closeDigest``, ``heartbeatDigest``,
``attestationDigest`` and ``serviceProofDigest`` views answer, without the generic encoder.

**Signatures.** A signature is 65 bytes ``r || s || v``. Only canonical ones count, as on chain
(OpenZeppelin's ECDSA) and as Ethereum's own transactions (EIP-2): v 27 or 28, r and s non-zero, s
at most n/2. (r, n - s, v ^ 1) is the same signature in another form; accepting it would let anyone
turn one signed statement into a second, different-looking one. `signature_problem` says what makes
a signature non-canonical, `recover` the address that signed a digest (`SignatureInvalid` otherwise),
`sign` signs a digest with a raw key (always canonical). Documents that are not typed data (a
provider's metadata) are signed over their EIP-191 `personal_digest` under the same rule.

**Rejections.** `Rejected` is the root of every refusal of a signed statement a full node receives
(heartbeats, attestations), each with a machine-readable `reason`; the HTTP status each reason is
answered with belongs to the API (`indexer.rejections`), not here.

**Dispute kinds.** `KINDS` names the SlashingManager's failure kinds (``ISlashingManager.Dispute.kind``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from coincurve import PrivateKey, PublicKey
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from flownet.errors import ConfigError, FlowNetError

__all__ = [
    "DOMAIN_FIELDS",
    "KINDS",
    "KIND_NAMES",
    "SECP256K1_HALF_N",
    "SECP256K1_N",
    "TYPES",
    "Domain",
    "Rejected",
    "SignatureInvalid",
    "digest",
    "has_valid_v",
    "heartbeat_domain",
    "is_canonical",
    "is_low_s",
    "market_domain",
    "parse_kind",
    "personal_digest",
    "recover",
    "sign",
    "signature_problem",
    "slashing_domain",
    "struct_hash",
    "type_hash",
    "typed_data",
]

#: Order of the secp256k1 group, and the largest canonical s.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
SIGNATURE_SIZE = 65

DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

MARKET_NAME = "FlowNet BandwidthMarket"
HEARTBEAT_NAME = "FlowNet Heartbeat"
SLASHING_NAME = "FlowNet SlashingManager"
VERSION = "1"


def _fields(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "type": kind} for name, kind in pairs]


#: Every struct FlowNet signs, field by field as the contracts' type hashes spell them.
TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": DOMAIN_FIELDS,
    "Receipt": _fields(("orderId", "bytes32"), ("cumulativeBytes", "uint256"), ("cumulativeAmount", "uint256")),
    "CloseOrder": _fields(("orderId", "bytes32"), ("finalAmount", "uint256")),
    "Heartbeat": _fields(
        ("provider", "address"),
        ("epoch", "uint64"),
        ("endpointHash", "bytes32"),
        ("load", "uint32"),
        ("timestamp", "uint64"),
    ),
    "Attestation": _fields(("provider", "address"), ("epoch", "uint64"), ("kind", "uint8"), ("evidenceCid", "string")),
    "ServiceProof": _fields(("orderId", "bytes32"), ("epoch", "uint64"), ("bytesServed", "uint256")),
    "Permit": _fields(
        ("owner", "address"),
        ("spender", "address"),
        ("value", "uint256"),
        ("nonce", "uint256"),
        ("deadline", "uint256"),
    ),
}

#: SlashingManager failure kinds (ISlashingManager.Dispute.kind), and their names by number.
KINDS = {"unreachable": 0, "latency": 1, "throughput": 2, "metering": 3}
KIND_NAMES = {v: k for k, v in KINDS.items()}


def parse_kind(kind: int | str) -> int:
    """A dispute kind from its number (0..3) or its name (``unreachable``, ``latency``, ...)."""
    if isinstance(kind, str):
        text = kind.strip().lower()
        if text in KINDS:
            return KINDS[text]
        if text.isdigit():
            kind = int(text)
        else:
            raise ConfigError(f"unknown dispute kind {kind!r} (choose from {', '.join(KINDS)} or 0..3)")
    if isinstance(kind, bool) or not 0 <= kind <= max(KINDS.values()):
        raise ConfigError(f"dispute kind {kind!r} is outside 0..{max(KINDS.values())}")
    return int(kind)


# ---------------------------------------------------------------------------------------------- hashing


def encode_type(primary: str) -> bytes:
    """``Name(type1 name1,...)`` (FlowNet's structs reference no other struct)."""
    return f"{primary}({','.join(f['type'] + ' ' + f['name'] for f in TYPES[primary])})".encode()


_TYPE_HASHES = {name: keccak(encode_type(name)) for name in TYPES}


def type_hash(primary: str) -> bytes:
    """keccak256 of the struct's type string: the contract's ``*_TYPEHASH``."""
    return _TYPE_HASHES[primary]


def _word(kind: str, value: Any, name: str) -> bytes:
    """One field's 32-byte encoding (EIP-712 ``encodeData``) for the atomic and dynamic types FlowNet uses."""
    if kind == "string":
        return keccak(str(value).encode())
    if kind == "bytes":
        return keccak(bytes(value))
    if kind == "bytes32":
        raw = bytes(value)
        if len(raw) != 32:
            raise ConfigError(f"{name} must be 32 bytes (got {len(raw)}: 0x{raw.hex()})")
        return raw
    if kind == "address":
        if not isinstance(value, str) or not is_address(value):
            raise ConfigError(f"{name} {value!r} is not an address")
        return bytes(12) + bytes.fromhex(value[2:])
    if kind.startswith("uint"):
        bits = int(kind[4:])
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
            raise ConfigError(f"{name} {value!r} is outside {kind}")
        return value.to_bytes(32, "big")
    if kind == "bool":
        return bytes(31) + (b"\x01" if value else b"\x00")
    raise ConfigError(f"no EIP-712 encoding for {kind} ({name})")


def struct_hash(primary: str, message: Mapping[str, Any]) -> bytes:
    """``hashStruct(message)``: keccak256(typeHash || encodeData)."""
    words = b"".join(_word(f["type"], message[f["name"]], f"{primary}.{f['name']}") for f in TYPES[primary])
    return keccak(type_hash(primary) + words)


@dataclass(frozen=True)
class Domain:
    """One EIP-712 domain: a contract of one deployment."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }

    @cached_property
    def separator(self) -> bytes:
        """The domain separator (``_domainSeparatorV4`` on chain)."""
        return struct_hash("EIP712Domain", self.as_dict())


def market_domain(chain_id: int, market: str) -> Domain:
    return Domain(MARKET_NAME, VERSION, chain_id, market)


def heartbeat_domain(chain_id: int, staking: str) -> Domain:
    return Domain(HEARTBEAT_NAME, VERSION, chain_id, staking)


def slashing_domain(chain_id: int, manager: str) -> Domain:
    return Domain(SLASHING_NAME, VERSION, chain_id, manager)


def typed_data(domain: Domain, primary: str, message: Mapping[str, Any]) -> dict[str, Any]:
    """The message in eth-account's ``encode_typed_data(full_message=...)`` form."""
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, primary: TYPES[primary]},
        "primaryType": primary,
        "domain": domain.as_dict(),
        "message": dict(message),
    }


def personal_digest(payload: bytes) -> bytes:
    """The EIP-191 ``personal_sign`` hash of `payload` (version 0x45), for documents that are not typed data."""
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(payload)).encode() + payload)


def digest(domain: Domain | bytes, primary: str, message: Mapping[str, Any]) -> bytes:
    """The 32-byte hash a signer signs: keccak256(0x1901 || separator || hashStruct(message)).

    `domain` is a `Domain` or its precomputed separator (the tunnel hashes receipts at line rate).
    """
    separator = domain if isinstance(domain, bytes) else domain.separator
    return keccak(b"\x19\x01" + separator + struct_hash(primary, message))


# ---------------------------------------------------------------------------------------------- signatures


class SignatureInvalid(FlowNetError):
    """A signature is not canonical, or no key can be recovered from it."""


def is_low_s(signature: bytes) -> bool:
    """True if `signature` is 65 bytes whose s is in 1..n/2 (EIP-2: high-s signatures are malleable)."""
    if len(signature) != SIGNATURE_SIZE:
        return False
    return 1 <= int.from_bytes(signature[32:64], "big") <= SECP256K1_HALF_N


def has_valid_v(signature: bytes) -> bool:
    """True if `signature` is 65 bytes whose recovery byte v is 27 or 28."""
    return len(signature) == SIGNATURE_SIZE and signature[64] in (27, 28)


def signature_problem(signature: bytes) -> str | None:
    """Why `signature` is not canonical (a phrase to follow "signature "), or None if it is."""
    if len(signature) != SIGNATURE_SIZE:
        return f"must be {SIGNATURE_SIZE} bytes (got {len(signature)})"
    if not has_valid_v(signature):
        return f"has v={signature[64]}, not 27 or 28"
    if not is_low_s(signature):
        return "has a high s value (malleable; the contracts reject it)"
    if not any(signature[:32]):
        return "has r = 0"
    return None


def is_canonical(signature: bytes) -> bool:
    return signature_problem(signature) is None


def recover(digest_: bytes, signature: bytes) -> str:
    """The checksummed address whose key signed `digest_`; SignatureInvalid if the signature is not
    canonical or recovers no key."""
    problem = signature_problem(signature)
    if problem is not None:
        raise SignatureInvalid(f"signature {problem}")
    try:
        public = PublicKey.from_signature_and_message(
            signature[:64] + bytes((signature[64] - 27,)), digest_, hasher=None
        )
    except Exception as exc:  # coincurve raises ValueError or a bare Exception for unrecoverable signatures
        raise SignatureInvalid(f"signature does not recover a key: {exc}") from None
    return address_of(public)


def address_of(public: PublicKey) -> str:
    return str(to_checksum_address(keccak(public.format(compressed=False)[1:])[-20:]))


def sign(private_key: bytes | PrivateKey, digest_: bytes) -> bytes:
    """``r || s || v`` (v 27/28) over `digest_`; libsecp256k1 always produces the low-s form."""
    key = private_key if isinstance(private_key, PrivateKey) else PrivateKey(bytes(private_key))
    raw = key.sign_recoverable(digest_, hasher=None)
    return raw[:64] + bytes((raw[64] + 27,))


# ---------------------------------------------------------------------------------------------- rejections


class Rejected(FlowNetError):
    """A signed statement a full node received breaks one of its acceptance rules.

    `reason` is one of the subclass's REASONS (machine-readable; the API maps it to an HTTP status).
    """

    exit_code = 10
    REASONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, reason: str, message: str) -> None:
        assert reason in self.REASONS, reason
        self.reason = reason
        super().__init__(message)


NOT_CANONICAL = "signature is not canonical (need 65 bytes, v 27/28 and low s)"


def recover_statement(digest_: bytes, signature: bytes, rejected: type[Rejected]) -> str:
    """`recover` for a statement a full node received: a bad signature is `rejected` ("bad_signature")."""
    if signature_problem(signature) is not None:
        raise rejected("bad_signature", NOT_CANONICAL)
    try:
        return recover(digest_, signature)
    except SignatureInvalid as exc:
        raise rejected("bad_signature", f"cannot recover a signer from the signature: {exc}") from None
