"""An honest provider's defence: strike each accuser of a dispute with its own service proof.

A dispute can only be answered with evidence its accusers cannot deny: a ServiceProof for the disputed
epoch signed by an accusing verifier as the client of one of its orders with this provider. Verifiers
probe as paying clients and sign such a proof in-band when they judged an epoch's service acceptable;
the tunnel server keeps the best one per (order, epoch) in the payment book. Each proof strikes its
signer (the contract burns its bond) and the dispute is rebutted once fewer than the quorum of accusers
remain. A client that is not an accuser (any other order, the provider's own) cannot rebut anything.

`Defender.rebut` answers one dispute (`flownet provider rebut`); `Defender.run` watches the provider's
local index for open disputes against it and strikes, within the challenge window, every accuser whose
proof the book holds (`flownet provider serve` runs it in a thread). Everything it does is logged.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flownet.chain.slashing import DisputeView, Slashing
from flownet.chain.tx import Sent
from flownet.errors import ConfigError, FlowNetError, TransactionFailed
from flownet.tunnel.book import PaymentBook, StoredProof

__all__ = ["Defender"]

log = logging.getLogger("flownet.defence")


class Defender:
    def __init__(
        self,
        book: PaymentBook,
        slashing: Slashing,
        provider: str,
        index_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.book = book
        self.slashing = slashing
        self.provider = provider
        self.index_path = index_path
        self.clock = clock
        self.done: set[int] = set()  # disputes no longer open, or whose strikes the chain refused
        self._no_proof: set[int] = set()  # disputes already logged as undefendable (for now)

    def strikes(self, view: DisputeView) -> list[StoredProof]:
        """The stored proofs that strike an accuser of `view` (one per accuser not struck yet)."""
        found = (self.book.proof(self.provider, view.epoch, client=accuser) for accuser in view.accusers)
        return [proof for proof in found if proof is not None]

    def rebut(self, dispute_id: int) -> list[Sent]:
        """Strike every accuser of dispute `dispute_id` (read from the chain) whose own proof for its epoch
        the book holds; the transactions sent, in order. The dispute is rebutted once fewer than the
        quorum remain (the chain decides; the last strikes may find it closed already)."""
        view = self.slashing.dispute(dispute_id)
        if view.status != "open":
            raise ConfigError(f"dispute {dispute_id} is {view.status}, not open")
        if view.provider.lower() != self.provider.lower():
            raise ConfigError(f"dispute {dispute_id} is against {view.provider}, not {self.provider}")
        proofs = self.strikes(view)
        if not proofs:
            raise ConfigError(
                f"no service proof for epoch {view.epoch} signed by an accuser of dispute {dispute_id} "
                f"({', '.join(view.accusers)}) in {self.book.path}: cannot rebut (only an accuser's own proof counts)"
            )
        sent: list[Sent] = []
        for proof in proofs:
            if sent and self.slashing.dispute(dispute_id).status != "open":
                log.info("dispute %d is closed: %d strike(s) were enough", dispute_id, len(sent))
                break
            log.info(
                "striking accuser %s from dispute %d (epoch %d) with its own proof of %d bytes on order 0x%s…",
                proof.order.client,
                dispute_id,
                view.epoch,
                proof.bytes_served,
                proof.order.order_id.hex()[:12],
            )
            sent.append(self.slashing.rebut(dispute_id, proof.order, proof.bytes_served, proof.signature))
        return sent

    def open_disputes(self) -> list[tuple[int, int, int]]:
        """(id, epoch, challenge_ends) of the disputes against this provider the index has as open."""
        if self.index_path is None:
            return []
        conn = sqlite3.connect(f"file:{self.index_path.resolve()}?mode=ro", uri=True, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=2000")
            rows = conn.execute(
                "SELECT id, epoch, challenge_ends FROM disputes WHERE status = 'open' AND lower(provider) = lower(?)"
                " ORDER BY id",
                (self.provider,),
            ).fetchall()
        finally:
            conn.close()
        return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]

    def check_once(self) -> list[int]:
        """Strike the accusers of every open dispute against us that we can; the ids acted on."""
        acted: list[int] = []
        now = self.clock()
        for dispute_id, epoch, challenge_ends in self.open_disputes():
            if dispute_id in self.done or challenge_ends <= now:
                continue
            try:
                sent = self.rebut(dispute_id)
            except TransactionFailed as exc:  # the chain said no: do not try again
                self.done.add(dispute_id)
                log.warning("could not rebut dispute %d: %s", dispute_id, exc)
                continue
            except ConfigError as exc:  # no accuser's proof (yet), or closed meanwhile
                if dispute_id not in self._no_proof:
                    self._no_proof.add(dispute_id)
                    log.warning(
                        "dispute %d against us (epoch %d, window ends %d): %s", dispute_id, epoch, challenge_ends, exc
                    )
                continue
            except FlowNetError as exc:  # e.g. the RPC endpoint is down: try again next round
                log.warning("could not rebut dispute %d yet: %s", dispute_id, exc)
                continue
            if self.slashing.dispute(dispute_id).status != "open":
                self.done.add(dispute_id)
            acted.append(dispute_id)
            log.info("dispute %d: %d accuser(s) struck (%s)", dispute_id, len(sent), ", ".join(s.tx_hash for s in sent))
        return acted

    def run(self, stop: threading.Event, interval: float = 3.0) -> None:
        """Check every `interval` seconds until `stop` (errors are logged, never fatal)."""
        log.info("watching the index for disputes against %s every %.0f s", self.provider, interval)
        while not stop.wait(interval):
            try:
                self.check_once()
            except Exception as exc:  # the watch must outlive any one failure
                log.warning("dispute watch skipped a round: %s", exc)
