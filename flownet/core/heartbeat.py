"""Provider heartbeats: signed liveness statements, as pure data and rules (no I/O).

A provider proves it is online by signing, every few seconds, the EIP-712 message

    Heartbeat(address provider,uint64 epoch,bytes32 endpointHash,uint32 load,uint64 timestamp)

over the domain (name "FlowNet Heartbeat", version "1", chain id, verifyingContract = the Staking
address). ``epoch = timestamp // epoch_seconds`` (30 s by default), ``endpointHash`` is keccak256 of
the endpoint string of the provider's metadata (``host:port``) and ``load`` is the share of capacity
in use in basis points (0..10000).

Several heartbeats per epoch are normal (a provider signs one every few seconds, with new timestamps
and loads); every accepted one is kept. Two heartbeats of the same provider and epoch that name
different endpoints are the evidence a future equivocation slashing would use.

`check` applies the acceptance rules a full node enforces; each refusal is a `HeartbeatRejected`
(a flownet.core.eip712.Rejected) with a machine-readable `reason` and a sentence naming the bad value;
the full node's API answers each reason with its HTTP status (indexer.rejections). The struct, the
domain, the digest and signature recovery are flownet.core.eip712's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from flownet.core import eip712
from flownet.core.eip712 import SECP256K1_HALF_N, Rejected, recover_statement

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = [
    "DEFAULT_EPOCH_SECONDS",
    "DEFAULT_MAX_SKEW",
    "MAX_LOAD",
    "REASONS",
    "SECP256K1_HALF_N",
    "Heartbeat",
    "HeartbeatDomain",
    "HeartbeatRejected",
    "SignedHeartbeat",
    "check",
    "endpoint_hash",
    "sign_heartbeat",
]

DOMAIN_NAME = eip712.HEARTBEAT_NAME
DOMAIN_VERSION = eip712.VERSION
DEFAULT_EPOCH_SECONDS = 30
DEFAULT_MAX_SKEW = 60
MAX_LOAD = 10_000
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1

_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")

#: Why a heartbeat is refused (the API answers each with its HTTP status: indexer.rejections).
REASONS = ("invalid", "wrong_epoch", "stale", "bad_signature", "not_staked", "too_many")


class HeartbeatRejected(Rejected):
    """A heartbeat breaks an acceptance rule; `reason` is one of REASONS."""

    REASONS = REASONS


def endpoint_hash(endpoint: str) -> bytes:
    """keccak256 of the endpoint string, exactly as written in the provider's metadata."""
    return keccak(text=endpoint)


@dataclass(frozen=True)
class HeartbeatDomain:
    """The EIP-712 domain of heartbeats for one deployment."""

    chain_id: int
    staking: str

    @property
    def eip712_domain(self) -> eip712.Domain:
        return eip712.heartbeat_domain(self.chain_id, self.staking)

    def as_dict(self) -> dict[str, Any]:
        return self.eip712_domain.as_dict()


@dataclass(frozen=True)
class Heartbeat:
    """What a provider states about itself at `timestamp`."""

    provider: str
    epoch: int
    endpoint_hash: bytes
    load: int
    timestamp: int

    @classmethod
    def create(
        cls, provider: str, endpoint: str, load: int, timestamp: int, epoch_seconds: int = DEFAULT_EPOCH_SECONDS
    ) -> Heartbeat:
        """The heartbeat for `timestamp`, its epoch derived from it."""
        return cls(to_checksum_address(provider), timestamp // epoch_seconds, endpoint_hash(endpoint), load, timestamp)

    def problems(self) -> list[str]:
        """Why this heartbeat cannot be a valid EIP-712 Heartbeat (empty: it can)."""
        found = []
        if not is_address(self.provider):
            found.append(f"provider {self.provider!r} is not an address")
        if len(self.endpoint_hash) != 32:
            found.append(f"endpointHash must be 32 bytes (got {len(self.endpoint_hash)})")
        if not 0 <= self.load <= MAX_LOAD:
            found.append(f"load {self.load} is outside 0..{MAX_LOAD} (basis points of capacity)")
        if not 0 <= self.epoch <= UINT64_MAX:
            found.append(f"epoch {self.epoch} is outside uint64")
        if not 0 <= self.timestamp <= UINT64_MAX:
            found.append(f"timestamp {self.timestamp} is outside uint64")
        return found

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``Heartbeat`` struct's values."""
        return {
            "provider": to_checksum_address(self.provider),
            "epoch": self.epoch,
            "endpointHash": self.endpoint_hash,
            "load": self.load,
            "timestamp": self.timestamp,
        }

    def typed_data(self, domain: HeartbeatDomain) -> dict[str, Any]:
        """The EIP-712 message to sign (eth-account's ``encode_typed_data(full_message=...)`` form)."""
        return eip712.typed_data(domain.eip712_domain, "Heartbeat", self.message())

    def digest(self, domain: HeartbeatDomain) -> bytes:
        """The hash a provider signs (SlashingManager's ``heartbeatDigest``)."""
        return eip712.digest(domain.eip712_domain, "Heartbeat", self.message())


@dataclass(frozen=True)
class SignedHeartbeat:
    """A heartbeat and its 65-byte signature (r, s, v), as sent to a full node."""

    heartbeat: Heartbeat
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        hb = self.heartbeat
        return {
            "provider": hb.provider,
            "epoch": hb.epoch,
            "endpointHash": "0x" + hb.endpoint_hash.hex(),
            "load": hb.load,
            "timestamp": hb.timestamp,
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, data: Any) -> SignedHeartbeat:
        """Parse the JSON body of ``POST /heartbeats``; a malformed one is rejected as "invalid"."""
        if not isinstance(data, dict):
            raise HeartbeatRejected("invalid", "a heartbeat must be a JSON object")
        missing = [k for k in ("provider", "epoch", "endpointHash", "load", "timestamp", "signature") if k not in data]
        if missing:
            raise HeartbeatRejected("invalid", f"heartbeat lacks {', '.join(missing)}")
        provider, hash_text, signature = data["provider"], data["endpointHash"], data["signature"]
        if not isinstance(provider, str) or not is_address(provider):
            raise HeartbeatRejected("invalid", f"invalid provider {provider!r}: expected 0x followed by 40 hex digits")
        if not isinstance(hash_text, str) or not _HASH_RE.match(hash_text):
            raise HeartbeatRejected("invalid", f"invalid endpointHash {hash_text!r}: expected 0x and 64 hex digits")
        if not isinstance(signature, str) or not _SIGNATURE_RE.match(signature):
            raise HeartbeatRejected("invalid", f"invalid signature {signature!r}: expected 0x and 130 hex digits")
        numbers = {}
        for key in ("epoch", "load", "timestamp"):
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise HeartbeatRejected("invalid", f"invalid {key} {value!r}: expected an integer")
            numbers[key] = value
        heartbeat = Heartbeat(
            to_checksum_address(provider),
            numbers["epoch"],
            bytes.fromhex(hash_text[2:]),
            numbers["load"],
            numbers["timestamp"],
        )
        problems = heartbeat.problems()
        if problems:
            raise HeartbeatRejected("invalid", "; ".join(problems))
        return cls(heartbeat, bytes.fromhex(signature[2:]))


def sign_heartbeat(account: LocalAccount, domain: HeartbeatDomain, heartbeat: Heartbeat) -> SignedHeartbeat:
    """The provider's EIP-712 signature of `heartbeat`."""
    if to_checksum_address(heartbeat.provider) != account.address:
        raise HeartbeatRejected("invalid", f"heartbeat is for {heartbeat.provider}, not for signer {account.address}")
    return SignedHeartbeat(heartbeat, eip712.sign(bytes(account.key), heartbeat.digest(domain)))


def recover_signer(domain: HeartbeatDomain, signed: SignedHeartbeat) -> str:
    """The address that signed `signed` (raises HeartbeatRejected "bad_signature" if none can be recovered).

    Only canonical signatures are accepted (v 27/28, low s, as Ethereum's own transactions), so one
    signer cannot turn a signed statement into a second, different-looking one.
    """
    return recover_statement(signed.heartbeat.digest(domain), signed.signature, HeartbeatRejected)


def check(
    signed: SignedHeartbeat,
    domain: HeartbeatDomain,
    now: float,
    is_staked_provider: Callable[[str], bool],
    *,
    epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
    max_skew: float = DEFAULT_MAX_SKEW,
) -> None:
    """Raise HeartbeatRejected unless a full node should accept `signed` at time `now`.

    Rules, cheapest first: well-formed; epoch == timestamp // epoch_seconds; |now - timestamp| <=
    max_skew; signed by the provider it names; that provider has active stake as a provider.
    """
    hb = signed.heartbeat
    problems = hb.problems()
    if problems:
        raise HeartbeatRejected("invalid", "; ".join(problems))
    expected = hb.timestamp // epoch_seconds
    if hb.epoch != expected:
        raise HeartbeatRejected(
            "wrong_epoch",
            f"epoch {hb.epoch} does not match timestamp {hb.timestamp}: expected {expected} "
            f"(timestamp // {epoch_seconds})",
        )
    skew = hb.timestamp - now
    if abs(skew) > max_skew:
        direction = "ahead of" if skew > 0 else "behind"
        raise HeartbeatRejected(
            "stale",
            f"timestamp {hb.timestamp} is {abs(skew):.0f} s {direction} this node's clock ({int(now)}); "
            f"at most {max_skew:g} s allowed",
        )
    signer = recover_signer(domain, signed)
    if signer != to_checksum_address(hb.provider):
        raise HeartbeatRejected(
            "bad_signature", f"signature is by {signer}, not by provider {hb.provider} (or for another deployment)"
        )
    if not is_staked_provider(hb.provider):
        raise HeartbeatRejected("not_staked", f"{hb.provider} has no active provider stake on this deployment")
