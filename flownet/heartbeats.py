"""The provider's heartbeat signer: every heartbeat FlowNet signs goes through `HeartbeatSigner`.

Two heartbeats of one provider and epoch naming different endpoints are slashable equivocation, so
the signer keeps flownet.core.heartbeat_guard's rule across threads, processes and restarts: before it
signs a heartbeat for (provider, epoch, endpoint) it records, in one ``BEGIN IMMEDIATE`` transaction
of an SQLite file, the endpoint of that epoch (the first one asked for) and commits it with
``synchronous=FULL`` — durable before the signature leaves the process — then signs only if the
epoch's recorded endpoint is the one asked for. Every sender of one wallet sharing one
``FLOWNET_HOME`` shares the record ``$FLOWNET_HOME/provider/<address>.heartbeats.sqlite``.

`HeartbeatSender` is what the send loops (``flownet provider heartbeat``, ``flownet provider serve
--fullnode``) call once per heartbeat: it re-reads the endpoint, signs through the signer and, when
the endpoint changed within an epoch, keeps signing the epoch's recorded endpoint and logs that the
change waits for the next epoch.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from flownet.core.heartbeat import (
    DEFAULT_EPOCH_SECONDS,
    Heartbeat,
    HeartbeatDomain,
    HeartbeatRejected,
    SignedHeartbeat,
    sign_heartbeat,
)
from flownet.core.heartbeat_guard import (
    EndpointAlreadySigned,
    EpochEndpoint,
    check_endpoint,
    floor_after,
)

__all__ = ["Beat", "HeartbeatRecord", "HeartbeatSender", "HeartbeatSigner", "record_path"]

log = logging.getLogger("flownet.heartbeat")

SCHEMA = """
CREATE TABLE IF NOT EXISTS signed_epochs (
    chain_id      INTEGER NOT NULL,
    staking       TEXT NOT NULL,          -- checksummed: the heartbeat domain's verifyingContract
    provider      TEXT NOT NULL,          -- checksummed
    epoch         INTEGER NOT NULL,
    endpoint      TEXT NOT NULL,          -- the only endpoint heartbeats of this epoch may name
    endpoint_hash TEXT NOT NULL,          -- 0x keccak256(endpoint)
    recorded_at   REAL NOT NULL,
    PRIMARY KEY (chain_id, staking, provider, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS floors (
    chain_id      INTEGER NOT NULL,
    staking       TEXT NOT NULL,
    provider      TEXT NOT NULL,
    floor         INTEGER NOT NULL,       -- epochs below it are forgotten: refused
    PRIMARY KEY (chain_id, staking, provider)
) WITHOUT ROWID;
"""

BUSY_TIMEOUT = 30.0


def record_path(home: Path, provider: str) -> Path:
    """Where the heartbeat record of `provider` lives under FLOWNET_HOME (next to its payment book)."""
    return home / "provider" / f"{provider}.heartbeats.sqlite"


class HeartbeatRecord:
    """The endpoint signed in each epoch, in SQLite; any number of processes may share one file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)

    def claim(self, domain: HeartbeatDomain, provider: str, epoch: int, endpoint: str) -> EpochEndpoint:
        """Record `endpoint` for (domain, provider, epoch) unless the epoch has one; commit durably.

        Raises HeartbeatRefused (EndpointAlreadySigned, EpochTooOld) unless heartbeats of `epoch` may
        name `endpoint`; on return the record says they may, and says so durably.
        """
        provider = to_checksum_address(provider)
        key = (domain.chain_id, to_checksum_address(domain.staking), provider)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT endpoint FROM signed_epochs WHERE chain_id = ? AND staking = ? AND provider = ?"
                    " AND epoch = ?",
                    (*key, epoch),
                ).fetchone()
                found = self._conn.execute(
                    "SELECT floor FROM floors WHERE chain_id = ? AND staking = ? AND provider = ?", key
                ).fetchone()
                floor = int(found[0]) if found else 0
                recorded = EpochEndpoint(provider, epoch, str(row[0])) if row else None
                check_endpoint(recorded, provider, epoch, endpoint, floor)
                if recorded is None:
                    recorded = EpochEndpoint(provider, epoch, endpoint)
                    self._conn.execute(
                        "INSERT INTO signed_epochs VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (*key, epoch, endpoint, "0x" + recorded.endpoint_hash.hex(), time.time()),
                    )
                    new_floor = floor_after(floor, epoch)
                    if new_floor != floor:
                        self._conn.execute(
                            "INSERT INTO floors VALUES (?, ?, ?, ?)"
                            " ON CONFLICT (chain_id, staking, provider) DO UPDATE SET floor = excluded.floor",
                            (*key, new_floor),
                        )
                        self._conn.execute(
                            "DELETE FROM signed_epochs WHERE chain_id = ? AND staking = ? AND provider = ?"
                            " AND epoch < ?",
                            (*key, new_floor),
                        )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return recorded

    def endpoint_of(self, domain: HeartbeatDomain, provider: str, epoch: int) -> str | None:
        """The endpoint recorded for (domain, provider, epoch), None if none is."""
        key = (domain.chain_id, to_checksum_address(domain.staking), to_checksum_address(provider))
        with self._lock:
            row = self._conn.execute(
                "SELECT endpoint FROM signed_epochs WHERE chain_id = ? AND staking = ? AND provider = ? AND epoch = ?",
                (*key, epoch),
            ).fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class HeartbeatSigner:
    """Signs `account`'s heartbeats for `domain`, never two endpoints in one epoch (see the module doc)."""

    def __init__(
        self,
        account: LocalAccount,
        domain: HeartbeatDomain,
        record: HeartbeatRecord,
        *,
        epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self.domain = domain
        self.record = record
        self.epoch_seconds = epoch_seconds
        self.clock = clock

    def sign(self, endpoint: str, load: int, timestamp: int | None = None) -> SignedHeartbeat:
        """The heartbeat for `endpoint` at `timestamp` (default: now), signed once the record allows it.

        Raises EndpointAlreadySigned if the epoch already has heartbeats for another endpoint.
        """
        at = int(self.clock()) if timestamp is None else timestamp
        hb = Heartbeat.create(self.account.address, endpoint, load, at, self.epoch_seconds)
        problems = hb.problems()
        if problems:
            raise HeartbeatRejected("invalid", "; ".join(problems))
        self.record.claim(self.domain, hb.provider, hb.epoch, endpoint)
        return sign_heartbeat(self.account, self.domain, hb)


@dataclass(frozen=True)
class Beat:
    """One heartbeat as sent: `endpoint` is the one it names; `deferred` the newer endpoint still waiting."""

    signed: SignedHeartbeat
    endpoint: str
    deferred: str | None = None

    @property
    def epoch(self) -> int:
        return self.signed.heartbeat.epoch


class HeartbeatSender:
    """One heartbeat per `beat()` call, with the endpoint re-read each time by `read_endpoint`.

    If the endpoint changed within an epoch, the beat keeps the epoch's recorded endpoint (so the
    provider stays live) and the change is logged, once per epoch, as waiting for the next epoch. If
    the endpoint cannot be read, the last one read is used (and the failure logged); with none yet, the
    error propagates.
    """

    def __init__(self, signer: HeartbeatSigner, read_endpoint: Callable[[], str], logger: logging.Logger = log) -> None:
        self.signer = signer
        self.read_endpoint = read_endpoint
        self.log = logger
        self.endpoint: str | None = None
        self._announced: set[tuple[int, str]] = set()

    def current_endpoint(self) -> str:
        try:
            endpoint = self.read_endpoint()
        except Exception as exc:
            if self.endpoint is None:
                raise
            self.log.warning("cannot re-read the endpoint (%s); still using %s", exc, self.endpoint)
            return self.endpoint
        if self.endpoint is not None and endpoint != self.endpoint:
            self.log.info("endpoint changed from %s to %s", self.endpoint, endpoint)
        self.endpoint = endpoint
        return endpoint

    def beat(self, load: int, timestamp: int | None = None) -> Beat:
        """Sign the next heartbeat (raises HeartbeatRefused only if the epoch is too old to check)."""
        wanted = self.current_endpoint()
        at = int(self.signer.clock()) if timestamp is None else timestamp
        try:
            return Beat(self.signer.sign(wanted, load, at), wanted)
        except EndpointAlreadySigned as refused:
            if (refused.epoch, wanted) not in self._announced:
                self._announced = {k for k in self._announced if k[0] == refused.epoch} | {(refused.epoch, wanted)}
                self.log.warning(
                    "endpoint %s waits for epoch %d: epoch %d already has heartbeats signed for %s, and two "
                    "endpoints in one epoch are slashable equivocation; signing %s until the epoch ends",
                    wanted,
                    refused.epoch + 1,
                    refused.epoch,
                    refused.signed_endpoint,
                    refused.signed_endpoint,
                )
            signed = self.signer.sign(refused.signed_endpoint, load, at)
            return Beat(signed, refused.signed_endpoint, wanted)
