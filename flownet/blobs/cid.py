"""Content identifiers for FlowNet blobs: CIDv1, raw codec, sha2-256, base32.

A blob of at most 1 MiB is one raw IPFS block, so its CID is exactly what Kubo answers for
``ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576`` of the same bytes::

    "b" + base32lower(0x01 cidv1 | 0x55 raw | 0x12 sha2-256 | 0x20 length | sha256(data))

Every code in the header is below 0x80, so each varint is a single byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from flownet.errors import BlobError

__all__ = ["CID_PREFIX", "MAX_BLOB_SIZE", "check_size", "cid_for", "parse_cid", "verify_blob"]

MAX_BLOB_SIZE = 1 << 20  # 1 MiB: one raw block, Kubo's --chunker=size-1048576 keeps it whole
CIDV1 = 0x01
RAW = 0x55
SHA2_256 = 0x12
DIGEST_SIZE = 0x20
HEADER = bytes([CIDV1, RAW, SHA2_256, DIGEST_SIZE])
CID_PREFIX = "bafkrei"  # what "b" + base32(HEADER + digest) always starts with
CODECS = {0x55: "raw", 0x70: "dag-pb", 0x71: "dag-cbor", 0x0129: "dag-json"}


def _base32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def _unbase32(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def cid_for(data: bytes) -> str:
    """The CIDv1 (raw, sha2-256, base32 "b...") of `data`."""
    return "b" + _base32(HEADER + hashlib.sha256(data).digest())


def parse_cid(text: str) -> bytes:
    """The sha2-256 digest in `text`, which must be a CIDv1/raw/sha2-256 CID in base32 ("bafkrei...")."""
    if not isinstance(text, str):
        raise BlobError(f"a CID must be a string (not {text!r})")
    if text.startswith("Qm"):
        raise BlobError(f"{text!r} is a CIDv0; FlowNet blobs are CIDv1 raw sha2-256 in base32 ('{CID_PREFIX}...')")
    if not text.startswith("b"):
        raise BlobError(
            f"{text!r} is not a base32 CIDv1 (multibase prefix 'b'); FlowNet blobs look like '{CID_PREFIX}...'"
        )
    try:
        raw = _unbase32(text[1:])
    except (binascii.Error, ValueError):
        raise BlobError(f"{text!r} is not a valid CID: not valid lowercase base32 after the 'b' prefix") from None
    if text[1:] != _base32(raw):
        raise BlobError(f"{text!r} is not a valid CID: not canonical lowercase base32")
    if len(raw) >= 2 and raw[0] == CIDV1 and raw[1] != RAW:
        codec = CODECS.get(raw[1], hex(raw[1]))
        raise BlobError(f"{text!r} is a {codec} CID; FlowNet blobs use the raw codec (0x55), '{CID_PREFIX}...'")
    if len(raw) != len(HEADER) + DIGEST_SIZE or raw[: len(HEADER)] != HEADER:
        raise BlobError(f"{text!r} is not a CIDv1 with raw codec and a sha2-256 multihash ('{CID_PREFIX}...')")
    return raw[len(HEADER) :]


def check_size(size: int) -> None:
    """Reject blobs over MAX_BLOB_SIZE (one raw block)."""
    if size > MAX_BLOB_SIZE:
        raise BlobError(
            f"blob is {size:,} bytes, over the limit of {MAX_BLOB_SIZE:,} bytes (1 MiB); "
            "larger blobs are not supported yet"
        )


def verify_blob(cid: str, data: bytes) -> bytes:
    """Return `data` if it hashes to `cid`, else raise BlobError naming both CIDs."""
    digest = parse_cid(cid)
    if hashlib.sha256(data).digest() != digest:
        raise BlobError(
            f"blob {cid} does not match its CID: its {len(data):,} bytes hash to {cid_for(data)} "
            "(corrupted or tampered)"
        )
    return data
