"""The provider's payment book: the latest signed receipt of every order, kept in SQLite.

It also keeps the clients' ServiceProofs (bytes served for an order in a SlashingManager epoch, signed
by the order's client): the one with the most bytes per (order, epoch), the provider's defence
against a dispute about that epoch.

A receipt is the provider's only claim to its money until it is redeemed, so each accepted receipt
is committed before it is acknowledged to the client (WAL, synchronous=FULL: it survives a crash of
the process or the machine). `redeemed_amount` records what the market has paid for the order, so the
redeemer knows what is outstanding.

`BookWriter` is the tunnel's one writer thread. Receipts are cumulative and a proof is kept only if it
claims more, so a newer write for the same order (or order and epoch) replaces one still waiting: the
backlog is bounded by the orders and epochs in use, never by how fast clients send.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flownet.core.receipts import Order, Receipt

__all__ = ["BookWriter", "PaymentBook", "StoredProof", "StoredReceipt"]

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    order_id          TEXT PRIMARY KEY,   -- 0x hex
    nonce             INTEGER NOT NULL,
    client            TEXT NOT NULL,
    provider          TEXT NOT NULL,
    deposit           TEXT NOT NULL,
    price             TEXT NOT NULL,
    expiry            INTEGER NOT NULL,
    cumulative_bytes  TEXT NOT NULL,
    cumulative_amount TEXT NOT NULL,
    signature         BLOB NOT NULL,
    redeemed_amount   TEXT NOT NULL DEFAULT '0',
    updated_at        REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS service_proofs (
    order_id      TEXT NOT NULL,          -- 0x hex
    epoch         INTEGER NOT NULL,       -- SlashingManager epoch
    nonce         INTEGER NOT NULL,
    client        TEXT NOT NULL,
    provider      TEXT NOT NULL,
    deposit       TEXT NOT NULL,
    price         TEXT NOT NULL,
    expiry        INTEGER NOT NULL,
    bytes_served  INTEGER NOT NULL,       -- below 2**63 (the server refuses larger claims)
    signature     BLOB NOT NULL,
    updated_at    REAL NOT NULL,
    PRIMARY KEY (order_id, epoch)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS service_proofs_provider ON service_proofs (provider, epoch);
"""


@dataclass(frozen=True)
class StoredReceipt:
    order: Order
    receipt: Receipt
    signature: bytes
    redeemed_amount: int

    @property
    def outstanding(self) -> int:
        return self.receipt.cumulative_amount - self.redeemed_amount


@dataclass(frozen=True)
class StoredProof:
    """A client's signed ServiceProof: `bytes_served` for `order` in SlashingManager epoch `epoch`."""

    order: Order
    epoch: int
    bytes_served: int
    signature: bytes


class PaymentBook:
    """Thread-safe: the tunnel's event loop writes receipts, the redeemer thread marks them redeemed."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)

    def record(self, order: Order, receipt: Receipt, signature: bytes) -> None:
        """Store `receipt` as the order's latest (callers have verified it is newer and valid)."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO receipts (order_id, nonce, client, provider, deposit, price, expiry, cumulative_bytes,"
                " cumulative_amount, signature, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (order_id) DO UPDATE SET cumulative_bytes = excluded.cumulative_bytes,"
                " cumulative_amount = excluded.cumulative_amount, signature = excluded.signature,"
                " updated_at = excluded.updated_at",
                (
                    "0x" + order.order_id.hex(),
                    order.nonce,
                    order.client,
                    order.provider,
                    str(order.deposit),
                    str(order.price_per_gib),
                    order.expiry,
                    str(receipt.cumulative_bytes),
                    str(receipt.cumulative_amount),
                    signature,
                    time.time(),
                ),
            )

    def latest(self, order_id: bytes) -> StoredReceipt | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM receipts WHERE order_id = ?", ("0x" + order_id.hex(),)).fetchone()
        return _stored(row) if row else None

    def outstanding(self) -> list[StoredReceipt]:
        """Receipts worth more than the market has paid for their order."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM receipts WHERE cumulative_amount != redeemed_amount").fetchall()
        return [s for s in map(_stored, rows) if s.outstanding > 0]

    def mark_redeemed(self, order_id: bytes, amount: int) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE receipts SET redeemed_amount = ? WHERE order_id = ?", (str(amount), "0x" + order_id.hex())
            )

    def record_proof(self, order: Order, epoch: int, bytes_served: int, signature: bytes) -> bool:
        """Keep this proof if it claims more bytes than the one held for (order, epoch); True if kept."""
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO service_proofs (order_id, epoch, nonce, client, provider, deposit, price, expiry,"
                " bytes_served, signature, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (order_id, epoch) DO UPDATE SET bytes_served = excluded.bytes_served,"
                " signature = excluded.signature, updated_at = excluded.updated_at"
                " WHERE excluded.bytes_served > service_proofs.bytes_served",
                (
                    "0x" + order.order_id.hex(),
                    epoch,
                    order.nonce,
                    order.client,
                    order.provider,
                    str(order.deposit),
                    str(order.price_per_gib),
                    order.expiry,
                    bytes_served,
                    signature,
                    time.time(),
                ),
            )
            return cursor.rowcount > 0

    def proof(self, provider: str, epoch: int, client: str | None = None) -> StoredProof | None:
        """The proof with the most bytes that `provider` holds for `epoch` (over all its orders, or only
        those of `client`)."""
        where = " AND lower(client) = lower(?)" if client is not None else ""
        args: tuple[object, ...] = (provider, epoch) if client is None else (provider, epoch, client)
        with self._lock:
            row = self._conn.execute(
                "SELECT nonce, client, provider, deposit, price, expiry, epoch, bytes_served, signature"
                " FROM service_proofs WHERE lower(provider) = lower(?) AND epoch = ? AND bytes_served > 0"
                f"{where} ORDER BY bytes_served DESC LIMIT 1",
                args,
            ).fetchone()
        if row is None:
            return None
        order = Order(int(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]), int(row[5]))
        return StoredProof(order, int(row[6]), int(row[7]), bytes(row[8]))

    def proofs(self, order_id: bytes) -> list[StoredProof]:
        """Every proof held for the order, by epoch."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT nonce, client, provider, deposit, price, expiry, epoch, bytes_served, signature"
                " FROM service_proofs WHERE order_id = ? ORDER BY epoch",
                ("0x" + order_id.hex(),),
            ).fetchall()
        return [
            StoredProof(
                Order(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), int(r[5])),
                int(r[6]),
                int(r[7]),
                bytes(r[8]),
            )
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_COLUMNS = (
    "order_id",
    "nonce",
    "client",
    "provider",
    "deposit",
    "price",
    "expiry",
    "cumulative_bytes",
    "cumulative_amount",
    "signature",
    "redeemed_amount",
    "updated_at",
)


def _stored(row: tuple[object, ...]) -> StoredReceipt:
    r = dict(zip(_COLUMNS, row, strict=True))
    order = Order(
        int(str(r["nonce"])),
        str(r["client"]),
        str(r["provider"]),
        int(str(r["deposit"])),
        int(str(r["price"])),
        int(str(r["expiry"])),
    )
    receipt = Receipt(order.order_id, int(str(r["cumulative_bytes"])), int(str(r["cumulative_amount"])))
    return StoredReceipt(order, receipt, bytes(r["signature"]), int(str(r["redeemed_amount"])))  # type: ignore[call-overload]


#: A write: what to run on the writer thread, and what to call (on that thread) with its result or error.
Write = tuple[Callable[[], Any], Callable[[Any, BaseException | None], None]]


class BookWriter:
    """One thread running the book's writes, at most one waiting per key (a newer write replaces it)."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, Write] = {}  # insertion order: a replaced write keeps its turn
        self._cond = threading.Condition()
        self._closing = False
        self.written = 0
        self.replaced = 0
        self._thread = threading.Thread(target=self._run, name="payment-book", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Writes waiting for the thread."""
        return len(self._pending)

    def submit(
        self, key: Hashable, write: Callable[[], Any], done: Callable[[Any, BaseException | None], None]
    ) -> None:
        """Run `write()` on the writer thread, then `done(result, error)` there; replaces a waiting write of `key`."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the payment book writer is closed")
            if key in self._pending:
                self.replaced += 1
            self._pending[key] = (write, done)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                key = next(iter(self._pending))
                write, done = self._pending.pop(key)
            try:
                result, error = write(), None
            except Exception as exc:  # reported through `done`
                result, error = None, exc
            self.written += 1
            try:
                done(result, error)
            except Exception:  # pragma: no cover - a callback must not kill the writer
                log.exception("a payment book callback failed")

    def close(self, timeout: float | None = None) -> None:
        """Finish every waiting write, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
