"""Read-only queries over disputes, slashes, trust scores and attestations (migration 0004)."""

from __future__ import annotations

import sqlite3
from typing import Any


def _page(
    conn: sqlite3.Connection, table: str, filters: dict[str, Any], order: str, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    where = " AND ".join(f"{column} = ?" for column in filters)
    clause = f"WHERE {where}" if where else ""
    params = list(filters.values())
    total = conn.execute(f"SELECT COUNT(*) FROM {table} {clause}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM {table} {clause} ORDER BY {order} LIMIT ? OFFSET ?", [*params, limit, offset]
    ).fetchall()
    return int(total), [dict(r) for r in rows]


def disputes(
    conn: sqlite3.Connection, provider: str | None, status: str | None, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """Disputes, newest first, optionally of one provider and/or in one status."""
    filters = {k: v for k, v in (("provider", provider), ("status", status)) if v is not None}
    return _page(conn, "disputes", filters, "id DESC", limit, offset)


def dispute(conn: sqlite3.Connection, dispute_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM disputes WHERE id = ?", (dispute_id,)).fetchone()
    return dict(row) if row else None


def slashes(conn: sqlite3.Connection, provider: str, limit: int = 50) -> list[dict[str, Any]]:
    """A provider's slashes, newest first."""
    rows = conn.execute(
        "SELECT * FROM slashes WHERE provider = ? ORDER BY block_number DESC, log_index DESC LIMIT ?",
        (provider, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def score_history(conn: sqlite3.Connection, subject: str, domain: int = 0, limit: int = 50) -> list[dict[str, Any]]:
    """Changes of a subject's score in `domain`, newest first."""
    rows = conn.execute(
        "SELECT * FROM score_history WHERE subject = ? AND domain = ? ORDER BY block_number DESC, log_index DESC "
        "LIMIT ?",
        (subject, domain, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def attestations(
    conn: sqlite3.Connection, filters: dict[str, Any], limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """Stored attestations matching `filters` (column -> value), grouped by statement."""
    return _page(conn, "attestations", filters, "epoch DESC, provider, kind, evidence_cid, verifier", limit, offset)


def verifier_stake(conn: sqlite3.Connection, address: str) -> tuple[str, int] | None:
    """(role, active stake) of a staking account, None if unknown."""
    row = conn.execute("SELECT role, active FROM stakers WHERE address = ?", (address,)).fetchone()
    return (row["role"], int(row["active"])) if row else None
