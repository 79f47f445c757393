"""The API server's only writes: accepted heartbeats (and equivocation evidence), verifier attestations and
fetched provider metadata.

The indexer is the main writer of the database; the API server reads through a read-only connection
and writes through one `ApiStore` connection, serialized by a lock, each write one short
``BEGIN IMMEDIATE`` transaction (``busy_timeout`` waits out the indexer's batches).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flownet.core.heartbeat import HeartbeatRejected, SignedHeartbeat
from indexer import db

DEFAULT_MAX_PER_EPOCH = 12  # a heartbeat every 5 s fills 6 per 30 s epoch; the rest is slack


class ApiStore:
    """One writer connection; `migrate` brings the schema up to date (0001 and 0002)."""

    def __init__(self, path: Path | str, max_per_epoch: int = DEFAULT_MAX_PER_EPOCH, migrate: bool = True) -> None:
        self.path = Path(path)
        self.conn = db.connect(self.path)
        self.lock = threading.Lock()
        self.max_per_epoch = max_per_epoch
        if migrate:
            with self.lock:
                db.migrate(self.conn)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, serialized with this process's other API writes."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def is_staked_provider(self, address: str) -> bool:
        with self.lock:
            row = self.conn.execute("SELECT role, active FROM stakers WHERE address = ?", (address,)).fetchone()
        return row is not None and row["role"] == "provider" and int(row["active"]) > 0

    def record_heartbeat(self, signed: SignedHeartbeat, received_at: float) -> bool:
        """Store an accepted heartbeat; False if the same statement was already stored (idempotent).

        A heartbeat naming another endpoint than one already stored for its epoch also records the
        equivocation (`record_equivocation`), even past the cap. Raises HeartbeatRejected("too_many")
        past `max_per_epoch` different statements per epoch (the heartbeat itself is then not kept).
        """
        hb = signed.heartbeat
        row = (
            hb.provider,
            hb.epoch,
            "0x" + hb.endpoint_hash.hex(),
            hb.load,
            hb.timestamp,
            "0x" + signed.signature.hex(),
            received_at,
        )
        with self.transaction() as conn:
            inserted = conn.execute("INSERT OR IGNORE INTO heartbeats VALUES (?, ?, ?, ?, ?, ?, ?)", row).rowcount
            if not inserted:
                return False
            evidence = self.record_equivocation(conn, row)
            count = conn.execute(
                "SELECT COUNT(*) FROM heartbeats WHERE provider = ? AND epoch = ?", (hb.provider, hb.epoch)
            ).fetchone()[0]
            full = count > self.max_per_epoch
            if full:  # keep the cap: drop the heartbeat again, but not the evidence recorded above
                conn.execute(
                    "DELETE FROM heartbeats WHERE provider = ? AND epoch = ? AND signature = ?",
                    (row[0], row[1], row[5]),
                )
            else:
                conn.execute(
                    "INSERT INTO liveness (provider, epoch, endpoint_hash, load, timestamp, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (provider) DO UPDATE SET "
                    "epoch = excluded.epoch, endpoint_hash = excluded.endpoint_hash, load = excluded.load, "
                    "timestamp = excluded.timestamp, received_at = excluded.received_at "
                    "WHERE excluded.timestamp >= liveness.timestamp",
                    (row[0], row[1], row[2], row[3], row[4], received_at),
                )
        if full:
            kept = " (kept as equivocation evidence)" if evidence else ""
            raise HeartbeatRejected(
                "too_many",
                f"{hb.provider} already sent {self.max_per_epoch} different heartbeats in epoch {hb.epoch}{kept}",
            )
        return True

    @staticmethod
    def record_equivocation(conn: sqlite3.Connection, row: tuple[Any, ...]) -> bool:
        """Inside a write transaction: if heartbeat `row` (a `heartbeats` row) names another endpoint than a
        stored heartbeat of its provider and epoch, and no equivocation of that (provider, epoch) is kept
        yet, keep the earliest such heartbeat and this one in `equivocations`. True if it did."""
        provider, epoch, endpoint, load, timestamp, signature, received_at = row
        inserted = conn.execute(
            "INSERT OR IGNORE INTO equivocations SELECT provider, epoch, endpoint_hash, load, timestamp, signature, "
            "?, ?, ?, ?, ? FROM heartbeats WHERE provider = ? AND epoch = ? AND endpoint_hash != ? "
            "ORDER BY received_at, timestamp, signature LIMIT 1",
            (endpoint, load, timestamp, signature, received_at, provider, epoch, endpoint),
        ).rowcount
        return bool(inserted)

    def is_staked_verifier(self, address: str) -> bool:
        with self.lock:
            row = self.conn.execute("SELECT role, active FROM stakers WHERE address = ?", (address,)).fetchone()
        return row is not None and row["role"] == "verifier" and int(row["active"]) > 0

    def record_attestation(
        self,
        provider: str,
        epoch: int,
        kind: int,
        evidence_cid: str,
        verifier: str,
        signature: bytes,
        received_at: float,
    ) -> tuple[bool, dict[str, Any]]:
        """Store a checked attestation: (False if this verifier's attestation of that statement was already
        stored, the stored row)."""
        row = (provider, epoch, kind, evidence_cid, verifier, "0x" + signature.hex(), received_at)
        with self.transaction() as conn:
            inserted = conn.execute("INSERT OR IGNORE INTO attestations VALUES (?, ?, ?, ?, ?, ?, ?)", row).rowcount
            stored = conn.execute(
                "SELECT * FROM attestations WHERE provider = ? AND epoch = ? AND kind = ? AND evidence_cid = ? "
                "AND verifier = ?",
                row[:5],
            ).fetchone()
        return bool(inserted), dict(stored)

    def put_provider_meta(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = ("address", "cid", "endpoint", "endpoint_hash", "region", "capacity_mbps", "fetched", "error")
        with self.transaction() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO provider_meta ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [tuple(r.get(c) for c in columns) for r in rows],
            )
