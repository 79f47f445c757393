"""The fullnode's SQLite ledger: raw logs, projections and the cursor, always committed together.

`Ledger.apply(blocks, logs, finalized)` applies one batch in one transaction: append the raw logs,
run the reducers (flownet's indexer.projections) over an in-memory overlay of the projection rows,
write the changed rows, the journal and balances, the block hashes of the unfinalized window and the
cursor. For blocks above `finalized` it also records the previous value of every changed row, so
`rollback_to(n)` can undo a reorg exactly, in one transaction. `rebuild()` recomputes every
projection from the raw logs alone. A crash at any instant leaves the last committed batch.
"""

from __future__ import annotations

import hashlib
import json
import operator
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flownet.errors import FlowNetError
from indexer import db
from indexer.events import Event, RawLog, decode
from indexer.projections import Append, Put, amt, reduce

KEYED = {
    "stakers": "address",
    "orders": "order_id",
    "balances": "account",
    "certificates": "cert_key",
    "disputes": "id",
    "scores": "score_key",
    "scorers": "scorer_key",
    "trust_authorities": "domain",
    "refusals": "refusal_key",
}
APPENDED = ("receipts", "journal", "slashes", "score_history")
PROJECTIONS = (*KEYED, *APPENDED)
# Every projection in key order, for state_hash.
_HASHED = (
    ("stakers", "address"),
    ("orders", "order_id"),
    ("receipts", "block_number, log_index"),
    ("journal", "block_number, log_index, seq"),
    ("balances", "account"),
    ("certificates", "cert_key"),
    ("disputes", "id"),
    ("slashes", "block_number, log_index"),
    ("scores", "score_key"),
    ("score_history", "block_number, log_index"),
    ("scorers", "scorer_key"),
    ("trust_authorities", "domain"),
    ("refusals", "refusal_key"),
)


def _topics(text: str) -> tuple[str, ...]:
    """Topics of a raw_logs row: a JSON array of 0x-hex strings, parsed without the json module."""
    return tuple(text[2:-2].split('","')) if text != "[]" else ()


class IndexerError(FlowNetError):
    """The index cannot continue safely (a deep reorg, another deployment's database, ...)."""

    exit_code = 9


@dataclass(frozen=True)
class Block:
    number: int
    hash: str
    parent_hash: str


class _Overlay:
    """Projection rows read once from SQLite, changed in memory, flushed at the end of a batch."""

    def __init__(self, conn: sqlite3.Connection, undo_from: int, empty: bool = False) -> None:
        self.conn = conn
        self.undo_from = undo_from
        self.empty = empty  # projections were just cleared (rebuild): a row not in memory does not exist
        self.rows: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.dirty: dict[tuple[str, str], dict[str, Any]] = {}
        self.appends: dict[str, list[dict[str, Any]]] = {t: [] for t in APPENDED}
        self.undo: list[tuple[int, str, str, str | None]] = []
        self._undone: set[tuple[int, str, str]] = set()
        # Balance changes of finalized blocks, summed per account and folded in once (no undo needed).
        self.deltas: dict[str, int] = {}

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        k = (table, key)
        if k not in self.rows:
            if self.empty:
                self.rows[k] = None
                return None
            row = self.conn.execute(f"SELECT * FROM {table} WHERE {KEYED[table]} = ?", (key,)).fetchone()
            self.rows[k] = dict(row) if row is not None else None
        return self.rows[k]

    def put(self, table: str, key: str, row: dict[str, Any], block: int) -> None:
        if block >= self.undo_from and (block, table, key) not in self._undone:
            old = self.get(table, key)
            self.undo.append((block, table, key, json.dumps(old) if old is not None else None))
            self._undone.add((block, table, key))
        self.rows[(table, key)] = row
        self.dirty[(table, key)] = row

    def apply(self, changes: Iterable[Put | Append], block: int) -> None:
        for change in changes:
            if isinstance(change, Put):
                self.put(change.table, change.key, change.row, block)
                continue
            self.appends[change.table].append(change.row)
            if change.table == "journal":
                amount = int(change.row["amount"])
                for account, delta in ((change.row["debit"], -amount), (change.row["credit"], amount)):
                    if block < self.undo_from:
                        self.deltas[account] = self.deltas.get(account, 0) + delta
                        continue
                    self._fold(account)
                    current = self.get("balances", account)
                    balance = int(current["balance"]) if current else 0
                    self.put("balances", account, {"account": account, "balance": str(balance + delta)}, block)

    def _fold(self, account: str) -> None:
        """Apply the summed finalized-block delta of `account` (blocks come in order, so before any other)."""
        delta = self.deltas.pop(account, None)
        if delta is None:
            return
        current = self.get("balances", account)
        balance = int(current["balance"]) if current else 0
        self.put("balances", account, {"account": account, "balance": str(balance + delta)}, -1)

    def flush_and_keep(self) -> None:
        """Flush, then start a new batch that still knows every row (for a replay over many batches)."""
        self.flush()
        self.dirty = {}
        self.appends = {t: [] for t in APPENDED}
        self.undo = []

    def flush(self) -> None:
        for account in list(self.deltas):
            self._fold(account)
        by_table: dict[str, list[dict[str, Any]]] = {}
        for (table, _), row in self.dirty.items():
            by_table.setdefault(table, []).append(row)
        for table, rows in [*by_table.items(), *self.appends.items()]:
            if not rows:
                continue
            columns = list(rows[0])
            sql = f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            pick = operator.itemgetter(*columns)
            self.conn.executemany(sql, map(pick, rows))
        if self.undo:
            self.conn.executemany("INSERT INTO undo (block_number, tbl, key, old) VALUES (?, ?, ?, ?)", self.undo)


class Ledger:
    """One fullnode database (the single writer)."""

    def __init__(self, path: Path | str, contracts: dict[str, str], chain_id: int, window: int = 64) -> None:
        """`contracts`: contract name -> address of the deployment this database indexes."""
        self.path = Path(path)
        self.conn = db.connect(self.path)
        db.migrate(self.conn)
        self.window = window
        self.contracts = dict(contracts)
        self.contract_of = {address: name for name, address in contracts.items()}
        identity = json.dumps({"chain_id": chain_id, "contracts": self.contracts}, sort_keys=True)
        stored = self.conn.execute("SELECT value FROM meta WHERE key = 'deployment'").fetchone()
        if stored is None:
            self.conn.execute("INSERT INTO meta VALUES ('deployment', ?)", (identity,))
        elif stored[0] != identity:
            raise IndexerError(
                f"{self.path} indexes another deployment ({stored[0]}); use another --db or the matching manifest"
            )

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ reading

    def cursor(self) -> Block | None:
        row = self.conn.execute("SELECT block_number, block_hash FROM cursor WHERE id = 1").fetchone()
        if row is None:
            return None
        parent = self.conn.execute("SELECT parent_hash FROM blocks WHERE number = ?", (row[0],)).fetchone()
        return Block(row[0], row[1], parent[0] if parent else "")

    def block_hash(self, number: int) -> str | None:
        row = self.conn.execute("SELECT hash FROM blocks WHERE number = ?", (number,)).fetchone()
        return row[0] if row else None

    def rollback_floor(self) -> int:
        """The lowest block this database can roll back to."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'rollback_floor'").fetchone()
        return int(row[0]) if row else -1

    # ------------------------------------------------------------------ writing

    def apply(
        self, blocks: Sequence[Block], logs: Sequence[RawLog], finalized: int, cursor: Block, head: int | None = None
    ) -> None:
        """Append `logs` (for blocks up to `cursor`), project them, and move the cursor, atomically.

        `blocks` are the headers of the new blocks inside the unfinalized window (and `cursor`'s);
        rows changed by blocks above `finalized` get undo records. `head` (the node's head when the batch
        was fetched) is recorded for the API's lag report.
        """
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            overlay = _Overlay(conn, undo_from=finalized + 1)
            events = [decode(log, self.contract_of) for log in logs]
            conn.executemany(
                "INSERT INTO raw_logs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [self._raw_row(log, event) for log, event in zip(logs, events, strict=True)],
            )
            for event in events:
                if event is not None:
                    overlay.apply(reduce(overlay, event, self.contract_of), event.block_number)
            overlay.flush()
            conn.executemany(
                "INSERT OR REPLACE INTO blocks VALUES (?, ?, ?)", [(b.number, b.hash, b.parent_hash) for b in blocks]
            )
            conn.execute("INSERT OR REPLACE INTO cursor VALUES (1, ?, ?)", (cursor.number, cursor.hash))
            if head is not None:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('head', ?)", (str(head),))
            floor = max(self.rollback_floor(), finalized)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('rollback_floor', ?)", (str(floor),))
            # Keep only the unfinalized window: older hashes and undo records can never be used again.
            conn.execute("DELETE FROM blocks WHERE number < ?", (floor,))
            conn.execute("DELETE FROM undo WHERE block_number <= ?", (floor,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def rollback_to(self, number: int) -> None:
        """Undo every block above `number` (a reorg's fork point), in one transaction."""
        floor = self.rollback_floor()
        if number < floor:
            raise IndexerError(
                f"reorg to block {number} is deeper than the unfinalized window (can roll back to {floor} at the "
                "earliest); refusing to rewrite finalized history — check the RPC node, or rebuild from scratch"
            )
        fork_hash = self.block_hash(number)
        if fork_hash is None:
            raise IndexerError(f"no stored hash for fork block {number}; cannot roll back")
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            undo = conn.execute(
                "SELECT tbl, key, old FROM undo WHERE block_number > ? ORDER BY seq DESC", (number,)
            ).fetchall()
            for table, key, old in undo:
                if old is None:
                    conn.execute(f"DELETE FROM {table} WHERE {KEYED[table]} = ?", (key,))
                else:
                    row = json.loads(old)
                    columns = ", ".join(row)
                    marks = ", ".join("?" * len(row))
                    conn.execute(f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))
            for table in ("undo", "raw_logs", *APPENDED):
                conn.execute(f"DELETE FROM {table} WHERE block_number > ?", (number,))
            conn.execute("DELETE FROM blocks WHERE number > ?", (number,))
            conn.execute("INSERT OR REPLACE INTO cursor VALUES (1, ?, ?)", (number, fork_hash))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def rebuild(self, batch: int = 50_000) -> int:
        """Recompute every projection from raw_logs alone (no RPC); returns the number of logs replayed."""
        conn = self.conn
        floor = self.rollback_floor()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in (*PROJECTIONS, "undo"):
                conn.execute(f"DELETE FROM {table}")
            replayed = 0
            last = (-1, -1)
            # One overlay for the whole replay: it starts from empty tables and remembers every row it
            # wrote, so it never needs to read a projection back from SQLite.
            overlay = _Overlay(conn, undo_from=floor + 1, empty=True)
            while True:
                rows = conn.execute(
                    "SELECT * FROM raw_logs WHERE (block_number, log_index) > (?, ?) "
                    "ORDER BY block_number, log_index LIMIT ?",
                    (*last, batch),
                ).fetchall()
                if not rows:
                    break
                for row in rows:
                    topics = row[5]
                    log = RawLog(row[0], row[2], row[1], row[3], row[4], _topics(topics), row[6])
                    event = decode(log, self.contract_of)
                    if event is not None:
                        overlay.apply(reduce(overlay, event, self.contract_of), log.block_number)
                overlay.flush_and_keep()
                replayed += len(rows)
                last = (rows[-1][0], rows[-1][1])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return replayed

    def state_hash(self) -> str:
        """sha256 over the cursor, the raw logs and every projection, in key order."""
        digest = hashlib.sha256()
        for table, order in (("cursor", "id"), ("raw_logs", "block_number, log_index"), *_HASHED):
            digest.update(table.encode())
            for row in self.conn.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                digest.update(json.dumps(list(row)).encode())
        return digest.hexdigest()

    def _raw_row(self, log: RawLog, event: Event | None) -> tuple[Any, ...]:
        return (
            log.block_number,
            log.log_index,
            log.block_hash,
            log.tx_hash,
            log.address,
            '["' + '","'.join(log.topics) + '"]' if log.topics else "[]",  # JSON; topics are 0x-hex
            log.data,
            self.contract_of.get(log.address),
            event.name if event else None,
        )


__all__ = ["Block", "IndexerError", "Ledger", "amt"]
