"""Read-only queries behind the HTTP API, as plain functions of a SQLite connection.

Amounts come out as Python ints (the API renders them as decimal strings); rows as dicts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flownet.core.heartbeat import DEFAULT_EPOCH_SECONDS
from indexer import db

SORTS = {"price": "price", "stake": "active", "last_seen": "last_seen"}
ORDERS = ("asc", "desc")
LIVE_EPOCHS = 3  # live: a heartbeat signed within the last 3 epochs
MAX_AMOUNT = 10**30 - 1  # the widest zero-padded amount text
NEUTRAL_TRUST = 500  # TrustRegistry.NEUTRAL_SCORE: what an unscored subject's score reads


def open_reader(path: Path | str) -> sqlite3.Connection:
    """A read-only connection tuned for the API: a 64 MiB page cache, read through mmap."""
    conn = db.connect(path, readonly=True)
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA mmap_size=268435456")
    return conn


@dataclass(frozen=True)
class ProviderQuery:
    region: str | None = None
    max_price: int | None = None
    min_trust: float | None = None
    live: bool | None = None
    sort: str = "price"
    order: str = "asc"
    limit: int = 50
    offset: int = 0


_PROVIDER_COLUMNS = (
    "s.address, s.role, s.active, s.locked, s.thawing, s.thaw_end, s.price, s.metadata_cid, s.slashed, "
    "s.updated_block, m.cid AS meta_cid, m.endpoint, m.endpoint_hash AS meta_endpoint_hash, m.region, "
    "m.capacity_mbps, m.fetched, m.error AS meta_error, l.epoch AS hb_epoch, l.endpoint_hash AS hb_endpoint_hash, "
    "l.load AS hb_load, l.timestamp AS hb_timestamp, l.received_at AS hb_received_at, "
    f"COALESCE(t.score, {NEUTRAL_TRUST}) AS trust_score"
)
_PROVIDER_JOINS = (
    "FROM stakers s LEFT JOIN provider_meta m ON m.address = s.address "
    "LEFT JOIN liveness l ON l.provider = s.address LEFT JOIN scores t ON t.subject = s.address AND t.domain = 0"
)


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """Run several reads on one snapshot (one read transaction), so they agree while writers commit."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def live_since(now: float, epoch_seconds: int = DEFAULT_EPOCH_SECONDS) -> int:
    """The earliest heartbeat timestamp that still makes a provider live at `now`."""
    return int(now) - LIVE_EPOCHS * epoch_seconds


def search_providers(
    conn: sqlite3.Connection, q: ProviderQuery, now: float, epoch_seconds: int = DEFAULT_EPOCH_SECONDS
) -> tuple[int, list[dict[str, Any]]]:
    """(total matching, one page of providers) for `q`.

    Filters and sorts run on `provider_search` (one compact row per provider, kept in step with
    stakers, provider_meta and liveness by triggers, with a covering index per sort order); only the
    page's rows are then joined for their details.
    """
    # Each filter twice: as written, for the count (any covering index may drive it), and with unary
    # "+" for the page, so no filter but region drives it: SQLite then reads the index in sort order
    # and stops after the page instead of sorting every match.
    count_where: list[str] = []
    page_where: list[str] = []
    params: list[Any] = []
    if q.region is not None:
        count_where.append("region = ?")
        page_where.append("region = ?")
        params.append(q.region)
    if q.max_price is not None:
        count_where.append("price > ? AND price <= ?")  # price 0: no offer, never within a budget
        page_where.append("+price > ? AND +price <= ?")
        params += [f"{0:030d}", f"{min(q.max_price, MAX_AMOUNT):030d}"]
    if q.live is not None:
        operator = ">=" if q.live else "<"  # never seen: last_seen 0
        count_where.append(f"last_seen {operator} ?")
        page_where.append(f"+last_seen {operator} ?")
        params.append(live_since(now, epoch_seconds))
    if q.min_trust is not None:
        count_where.append("trust >= ?")
        page_where.append("+trust >= ?")
        params.append(q.min_trust)
    direction = "DESC" if q.order == "desc" else "ASC"
    if q.sort == "last_seen" and q.order == "asc":
        order = "last_seen = 0, last_seen, address"  # never-seen providers last either way
    else:
        order = f"{SORTS[q.sort]} {direction}, address {direction}"

    def where(parts: list[str]) -> str:
        return f"WHERE {' AND '.join(parts)}" if parts else ""

    with snapshot(conn):
        total = conn.execute(f"SELECT COUNT(*) FROM provider_search {where(count_where)}", params).fetchone()[0]
        page = [
            r[0]
            for r in conn.execute(
                f"SELECT address FROM provider_search {where(page_where)} ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, q.limit, q.offset],
            )
        ]
        if not page:
            return total, []
        rows = conn.execute(
            f"SELECT {_PROVIDER_COLUMNS} {_PROVIDER_JOINS} WHERE s.address IN ({', '.join('?' * len(page))})",
            page,
        ).fetchall()
    by_address = {r["address"]: dict(r) for r in rows}
    return total, [by_address[a] for a in page if a in by_address]


def provider(conn: sqlite3.Connection, address: str) -> dict[str, Any] | None:
    """The staker row of `address` joined with its metadata and liveness (any role)."""
    row = conn.execute(
        f"SELECT {_PROVIDER_COLUMNS} {_PROVIDER_JOINS} WHERE s.address = ?",
        (address,),
    ).fetchone()
    return dict(row) if row else None


def recent_heartbeats(conn: sqlite3.Connection, address: str, limit: int = 10) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT epoch, endpoint_hash, load, timestamp, signature, received_at FROM heartbeats "
        "WHERE provider = ? ORDER BY epoch DESC, timestamp DESC LIMIT ?",
        (address, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def equivocating_epochs(conn: sqlite3.Connection, address: str, limit: int = 10) -> list[int]:
    """Epochs in which `address` signed heartbeats naming different endpoints (newest first), from the
    kept evidence (migration 0006), which outlives the per-epoch heartbeat cap."""
    rows = conn.execute(
        "SELECT epoch FROM equivocations WHERE provider = ? ORDER BY epoch DESC LIMIT ?", (address, limit)
    ).fetchall()
    return [r[0] for r in rows]


def order(conn: sqlite3.Connection, order_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    return dict(row) if row else None


def receipts(conn: sqlite3.Connection, order_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM receipts WHERE order_id = ? ORDER BY block_number, log_index", (order_id,)
    ).fetchall()
    return [dict(r) for r in rows]


def _prefix_bounds(prefix: str) -> tuple[str, str]:
    return prefix, prefix + "\U0010ffff"


def accounts(conn: sqlite3.Connection, prefix: str, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    low, high = _prefix_bounds(prefix)
    total = conn.execute("SELECT COUNT(*) FROM balances WHERE account >= ? AND account < ?", (low, high)).fetchone()[0]
    rows = conn.execute(
        "SELECT account, balance FROM balances WHERE account >= ? AND account < ? ORDER BY account LIMIT ? OFFSET ?",
        (low, high, limit, offset),
    ).fetchall()
    return total, [dict(r) for r in rows]


def balance(conn: sqlite3.Connection, account: str) -> int | None:
    row = conn.execute("SELECT balance FROM balances WHERE account = ?", (account,)).fetchone()
    return int(row[0]) if row else None


def entries(conn: sqlite3.Connection, account: str, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """Journal entries moving tokens into or out of `account`, newest first."""
    total = conn.execute(
        "SELECT (SELECT COUNT(*) FROM journal WHERE debit = ?) + (SELECT COUNT(*) FROM journal WHERE credit = ?)",
        (account, account),
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT * FROM (SELECT * FROM journal WHERE debit = ? UNION ALL SELECT * FROM journal WHERE credit = ?) "
        "ORDER BY block_number DESC, log_index DESC, seq DESC LIMIT ? OFFSET ?",
        (account, account, limit, offset),
    ).fetchall()
    return total, [dict(r) for r in rows]


def events(conn: sqlite3.Connection, from_block: int, from_log_index: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM raw_logs WHERE (block_number, log_index) >= (?, ?) ORDER BY block_number, log_index LIMIT ?",
        (from_block, from_log_index, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def deployment(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """{"chain_id": ..., "contracts": {name: address}} as the indexer recorded it, if it did."""
    text = meta(conn, "deployment")
    return json.loads(text) if text else None


def head(conn: sqlite3.Connection) -> int | None:
    """The chain head the indexer last saw (meta 'head': a block number, or JSON with a "number")."""
    text = meta(conn, "head")
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            value = json.loads(text)
            return int(value["number"] if isinstance(value, dict) else value)
        except (ValueError, KeyError, TypeError):
            return None


def cursor(conn: sqlite3.Connection) -> tuple[int, str] | None:
    row = conn.execute("SELECT block_number, block_hash FROM cursor WHERE id = 1").fetchone()
    return (row[0], row[1]) if row else None


def counts(conn: sqlite3.Connection, now: float, epoch_seconds: int = DEFAULT_EPOCH_SECONDS) -> dict[str, Any]:
    """Row counts for /metrics."""

    def one(sql: str, *params: Any) -> int:
        return int(conn.execute(sql, params).fetchone()[0])

    return {
        "providers": one("SELECT COUNT(*) FROM stakers WHERE role = 'provider'"),
        "verifiers": one("SELECT COUNT(*) FROM stakers WHERE role = 'verifier'"),
        "providers_live": one("SELECT COUNT(*) FROM liveness WHERE timestamp >= ?", live_since(now, epoch_seconds)),
        "orders": {
            status: one("SELECT COUNT(*) FROM orders WHERE status = ?", status) for status in ("open", "closed")
        },
        "events": one("SELECT COUNT(*) FROM raw_logs"),
        "heartbeats_stored": one("SELECT COUNT(*) FROM heartbeats"),
        "attestations_stored": one("SELECT COUNT(*) FROM attestations"),
        "disputes": {
            status: one("SELECT COUNT(*) FROM disputes WHERE status = ?", status)
            for status in ("open", "rebutted", "executed", "superseded")
        },
        "slashes": {
            route: one("SELECT COUNT(*) FROM slashes WHERE route = ?", route) for route in ("equivocation", "dispute")
        },
    }
