"""Turning stored receipts into money: batch redemption on chain.

A receipt is worth redeeming when what it adds over the last redemption reaches a threshold (so the
value outweighs the gas), or when its order is ending — it is fully paid, or it expires within the
margin (after expiry plus grace the client can reclaim the rest) — and always when the provider shuts
down. Due receipts go out in one `redeemMany` transaction; if that reverts (one order was closed
meanwhile, say), each is retried alone so one bad receipt never blocks the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flownet.chain.market import FlowNet, SignedReceipt
from flownet.core.units import format_flow
from flownet.errors import FlowNetError
from flownet.tunnel.book import PaymentBook, StoredReceipt

__all__ = ["Redeemer"]

log = logging.getLogger("flownet.redeem")


class Redeemer:
    def __init__(
        self,
        book: PaymentBook,
        net: FlowNet,
        threshold: int,
        margin: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if threshold < 0:
            raise ValueError(f"redeem threshold must be non-negative (not {threshold})")
        self.book = book
        self.net = net
        self.threshold = threshold
        self.margin = margin
        self.clock = clock
        self.redeemed_total = 0
        self.transactions = 0

    def due(self, force: bool = False) -> list[StoredReceipt]:
        now = self.clock()
        due = []
        for stored in self.book.outstanding():
            order = stored.order
            ending = stored.receipt.cumulative_amount >= order.deposit or order.expiry - now <= self.margin
            if force or ending or stored.outstanding >= self.threshold:
                due.append(stored)
        return due

    def redeem(self, force: bool = False) -> int:
        """Redeem what is due (everything outstanding if `force`); returns the FLOW units paid out."""
        due = self.due(force)
        if not due:
            return 0
        signed = [SignedReceipt(s.order, s.receipt, s.signature) for s in due]
        try:
            sent = self.net.redeem_many(signed) if len(signed) > 1 else self.net.redeem(signed[0])
            self.transactions += 1
            paid = self._settled(due)
            log.info(
                "redeemed %d receipt(s) for %s in tx %s (gas %d)",
                len(due),
                format_flow(paid),
                sent.tx_hash,
                sent.gas_used,
            )
            return paid
        except FlowNetError as exc:
            if len(due) == 1:
                log.warning("redeeming order 0x%s… failed: %s", due[0].order.order_id.hex()[:12], exc)
                self._resync(due[0])
                return 0
            log.warning("batch redemption failed (%s); redeeming one by one", exc)
        paid = 0
        for stored in due:
            try:
                self.net.redeem(SignedReceipt(stored.order, stored.receipt, stored.signature))
                self.transactions += 1
                paid += self._settled([stored])
            except FlowNetError as exc:
                log.warning("redeeming order 0x%s… failed: %s", stored.order.order_id.hex()[:12], exc)
                self._resync(stored)
        return paid

    def _settled(self, done: list[StoredReceipt]) -> int:
        paid = 0
        for stored in done:
            self.book.mark_redeemed(stored.order.order_id, stored.receipt.cumulative_amount)
            paid += stored.outstanding
        self.redeemed_total += paid
        return paid

    def _resync(self, stored: StoredReceipt) -> None:
        """After a failure, take what the market says was paid, so a dead receipt is not retried forever."""
        try:
            paid, status = self.net.order_state(stored.order)
        except FlowNetError:
            return
        if status != 1 or paid >= stored.receipt.cumulative_amount:
            self.book.mark_redeemed(stored.order.order_id, stored.receipt.cumulative_amount)
            log.info(
                "order 0x%s… is settled on chain (paid %d, status %d)", stored.order.order_id.hex()[:12], paid, status
            )

    def run(self, stop: threading.Event, interval: float) -> None:
        """Redeem what is due every `interval` seconds until `stop`, then everything outstanding."""
        while not stop.wait(interval):
            try:
                self.redeem()
            except Exception:  # the loop must survive an RPC outage
                log.exception("redemption round failed")
        self.redeem(force=True)
