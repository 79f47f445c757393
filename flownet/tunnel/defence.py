"""An honest provider's defence: rebut a dispute about an epoch with a client's ServiceProof for it.

The clients' proofs arrive in-band (SERVICE_PROOF frames) and the tunnel server keeps the best one per
(order, epoch) in the payment book. `Defender.rebut` answers one dispute (`flownet provider rebut`);
`Defender.run` watches the provider's local index for open disputes against it and rebuts each one,
within its challenge window, for which the book holds a proof (`flownet provider serve` runs it in a
thread). Everything it does is logged.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flownet.chain.slashing import Slashing
from flownet.chain.tx import Sent
from flownet.errors import ConfigError, FlowNetError, TransactionFailed
from flownet.tunnel.book import PaymentBook

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
        self.done: set[int] = set()  # disputes rebutted, or whose rebuttal the chain refused
        self._no_proof: set[int] = set()  # disputes already logged as undefendable (for now)

    def rebut(self, dispute_id: int) -> Sent:
        """Rebut dispute `dispute_id` (read from the chain) with the best stored proof for its epoch."""
        view = self.slashing.dispute(dispute_id)
        if view.status != "open":
            raise ConfigError(f"dispute {dispute_id} is {view.status}, not open")
        if view.provider.lower() != self.provider.lower():
            raise ConfigError(f"dispute {dispute_id} is against {view.provider}, not {self.provider}")
        proof = self.book.proof(self.provider, view.epoch)
        if proof is None:
            raise ConfigError(f"no client's service proof for epoch {view.epoch} in {self.book.path}: cannot rebut")
        log.info(
            "rebutting dispute %d (epoch %d) with order 0x%s…'s proof of %d bytes signed by %s",
            dispute_id,
            view.epoch,
            proof.order.order_id.hex()[:12],
            proof.bytes_served,
            proof.order.client,
        )
        return self.slashing.rebut(dispute_id, proof.order, proof.bytes_served, proof.signature)

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
        """Rebut every open dispute against us that we can; the ids rebutted."""
        rebutted: list[int] = []
        now = self.clock()
        for dispute_id, epoch, challenge_ends in self.open_disputes():
            if dispute_id in self.done or challenge_ends <= now:
                continue
            if self.book.proof(self.provider, epoch) is None:
                if dispute_id not in self._no_proof:
                    self._no_proof.add(dispute_id)
                    log.warning(
                        "dispute %d against us (epoch %d, window ends %d): no client's proof for that epoch yet",
                        dispute_id,
                        epoch,
                        challenge_ends,
                    )
                continue
            try:
                sent = self.rebut(dispute_id)
            except TransactionFailed as exc:  # the chain said no: do not try again
                self.done.add(dispute_id)
                log.warning("could not rebut dispute %d: %s", dispute_id, exc)
                continue
            except FlowNetError as exc:  # e.g. the RPC endpoint is down: try again next round
                log.warning("could not rebut dispute %d yet: %s", dispute_id, exc)
                continue
            self.done.add(dispute_id)
            rebutted.append(dispute_id)
            log.info("dispute %d rebutted in %s", dispute_id, sent.tx_hash)
        return rebutted

    def run(self, stop: threading.Event, interval: float = 3.0) -> None:
        """Check every `interval` seconds until `stop` (errors are logged, never fatal)."""
        log.info("watching the index for disputes against %s every %.0f s", self.provider, interval)
        while not stop.wait(interval):
            try:
                self.check_once()
            except Exception as exc:  # the watch must outlive any one failure
                log.warning("dispute watch skipped a round: %s", exc)
