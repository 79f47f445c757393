"""Provider metadata: the signed JSON document a provider publishes to the blob store.

Its CID goes on chain with the offer. The document is canonical JSON (sorted keys, no spaces) and
carries the provider's EIP-191 signature over the document without the ``signature`` field, so
anyone holding the bytes can check who published them without trusting the blob store.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from flownet.core import eip712, safejson
from flownet.errors import ConfigError

__all__ = ["SCHEMA", "ProviderMetadata", "canonical_json", "parse_endpoint"]

#: The largest metadata document read (a blob is at most 1 MiB; a real one is under 1 KiB).
MAX_DOCUMENT_BYTES = 64 * 1024

SCHEMA = "flownet/provider-metadata/1"
_HOST_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$")
_REGION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")


def canonical_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_endpoint(text: str) -> str:
    """'host:port' (IPv6 in brackets), validated; errors name the bad value."""
    match = _HOST_RE.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise ConfigError(f"invalid endpoint {text!r}: expected host:port, e.g. provider.example.net:7443")
    return text.strip()


@dataclass(frozen=True)
class ProviderMetadata:
    """What a provider tells clients about itself."""

    provider: str
    endpoint: str
    region: str
    capacity_mbps: int
    price_per_gib: int
    updated_at: int
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        parse_endpoint(self.endpoint)
        if not _REGION_RE.match(self.region):
            raise ConfigError(f"invalid region {self.region!r}: use up to 32 letters, digits and '-', e.g. eu-west")
        if self.capacity_mbps <= 0:
            raise ConfigError(f"capacity must be a positive number of Mbit/s (not {self.capacity_mbps})")

    def unsigned(self) -> dict[str, Any]:
        data = asdict(self)
        data["price_per_gib"] = str(self.price_per_gib)  # exact, whatever the JSON reader's integer size
        return data

    def signing_payload(self) -> bytes:
        return canonical_json(self.unsigned())

    def digest(self) -> bytes:
        """The EIP-191 hash the provider signs (``personal_sign`` of `signing_payload`)."""
        return eip712.personal_digest(self.signing_payload())

    def signer(self, signature: bytes) -> str:
        """Who signed this metadata (flownet.core.eip712.SignatureInvalid unless canonical and recoverable)."""
        return eip712.recover(self.digest(), signature)

    def document(self, signature: bytes) -> bytes:
        """The canonical signed document to store."""
        return canonical_json({**self.unsigned(), "signature": "0x" + signature.hex()})

    @classmethod
    def from_document(cls, raw: bytes) -> tuple[ProviderMetadata, bytes]:
        """Parse a stored document; returns the metadata and its signature (not yet verified)."""
        try:
            data = safejson.loads(raw, what="provider metadata document", max_bytes=MAX_DOCUMENT_BYTES)
            signature = bytes.fromhex(str(data.pop("signature"))[2:])
            if data.get("schema") != SCHEMA:
                raise ValueError(f"schema {data.get('schema')!r} is not {SCHEMA!r}")
            data["price_per_gib"] = int(data["price_per_gib"])
            return cls(**data), signature
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"not a FlowNet provider metadata document: {exc}") from None
