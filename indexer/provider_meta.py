"""Fill `provider_meta` from the providers' signed metadata documents in the blob store.

`refresh(store, get, now)` fetches, for every provider whose on-chain metadata CID is new (or whose
last fetch failed more than `retry_after` seconds ago), the document with ``get(cid) -> bytes``
(``flownet.blobs.open_store(settings).get`` in a full node, a dict's ``__getitem__`` in tests),
checks that the provider signed it, and stores endpoint, region and capacity. A document that
cannot be fetched or is not signed by its provider is stored with `error` set, so it is not
fetched again on every pass.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flownet.core.heartbeat import endpoint_hash
from flownet.core.metadata import ProviderMetadata
from indexer.apistore import ApiStore

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 300.0


@dataclass(frozen=True)
class RefreshResult:
    fetched: int
    failed: int


def document_row(address: str, cid: str, raw: bytes, now: float) -> dict[str, Any]:
    """The provider_meta row for `raw`, the document behind `cid`; error set if it is not `address`'s."""
    row: dict[str, Any] = {"address": address, "cid": cid, "fetched": now}
    try:
        meta, signature = ProviderMetadata.from_document(raw)
        signer = meta.signer(signature)
    except Exception as exc:  # a malformed document or signature
        return {**row, "error": f"not a valid metadata document: {exc}"}
    if meta.provider != address or signer != address:
        return {**row, "error": f"document names {meta.provider} and is signed by {signer}, not by {address}"}
    return {
        **row,
        "endpoint": meta.endpoint,
        "endpoint_hash": "0x" + endpoint_hash(meta.endpoint).hex(),
        "region": meta.region,
        "capacity_mbps": meta.capacity_mbps,
        "error": None,
    }


def stale_providers(conn: sqlite3.Connection, now: float, retry_after: float = DEFAULT_RETRY_AFTER) -> list[Any]:
    """(address, cid) of providers whose metadata row is missing, outdated, or failed long enough ago."""
    return conn.execute(
        "SELECT s.address, s.metadata_cid FROM stakers s LEFT JOIN provider_meta m ON m.address = s.address "
        "WHERE s.role = 'provider' AND s.metadata_cid IS NOT NULL AND s.metadata_cid != '' "
        "AND (m.address IS NULL OR m.cid != s.metadata_cid OR (m.error IS NOT NULL AND m.fetched < ?)) "
        "ORDER BY s.address",
        (now - retry_after,),
    ).fetchall()


def refresh(
    store: ApiStore,
    get: Callable[[str], bytes],
    now: float,
    retry_after: float = DEFAULT_RETRY_AFTER,
    batch: int = 100,
) -> RefreshResult:
    """Fetch every stale provider's metadata (outside any transaction) and store it in batches."""
    with store.lock:
        todo = [(r[0], r[1]) for r in stale_providers(store.conn, now, retry_after)]
    fetched = failed = 0
    rows: list[dict[str, Any]] = []
    for address, cid in todo:
        try:
            row = document_row(address, cid, get(cid), now)
        except Exception as exc:  # the blob store is down, the blob is missing, ...
            row = {"address": address, "cid": cid, "fetched": now, "error": f"cannot fetch {cid}: {exc}"}
        if row.get("error"):
            failed += 1
            log.info("metadata of %s (%s) refused: %s", address, cid, row["error"])
        else:
            fetched += 1
        rows.append(row)
        if len(rows) >= batch:
            store.put_provider_meta(rows)
            rows = []
    store.put_provider_meta(rows)
    return RefreshResult(fetched, failed)
