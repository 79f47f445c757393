"""The provider's order keeper: cancel orders it was never asked to serve, so nobody can lock its stake.

Any client can open an order with a provider, and the order locks part of the provider's stake until
expiry plus grace (up to 31 days). The provider accepts an order by redeeming its first receipt; until
then it may cancel it (the client gets its whole deposit back). `Keeper.check_once` reads this
provider's open orders from its local index, asks `IdlePolicy` (flownet.core.cancellation) about each
with what the payment book and the tunnel know of it, and cancels those idle too long, refusing their
clients for a while in the same transaction (never a verifier that could accuse the provider: the market
ignores such a refusal, verifiers being the provider's auditors). `Keeper.run` does so every few seconds
(`flownet provider serve` runs it in a thread; `--cancel-idle` and `--refuse-idle` set the policy).

Races. A cancel and the provider's own first redemption of an order cannot both succeed: the market
refuses whichever comes second, and nobody else can redeem a first receipt. The keeper never cancels
an order whose receipt the book holds, and it looks again right before sending, so a receipt that
arrives while a cancel is being decided stops it; one that arrives while the cancel is in flight is
forfeited (the redeemer finds the order closed and drops it) — at most the tunnel's credit window.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flownet.chain.market import FlowNet
from flownet.chain.tx import Sent
from flownet.core.cancellation import FOREVER, IdlePolicy, OrderActivity, refusal_end
from flownet.core.receipts import Order
from flownet.core.units import format_flow
from flownet.errors import FlowNetError
from flownet.tunnel.book import PaymentBook

__all__ = ["Keeper"]

log = logging.getLogger("flownet.keeper")


class Keeper:
    def __init__(
        self,
        net: FlowNet,
        book: PaymentBook,
        index_path: Path,
        policy: IdlePolicy,
        busy: Callable[[bytes], bool] = lambda _: False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`busy(order_id)`: whether the tunnel has streams or unpaid bytes on the order right now."""
        self.net = net
        self.book = book
        self.index_path = index_path
        self.policy = policy
        self.busy = busy
        self.clock = clock
        self.first_seen: dict[bytes, float] = {}
        self.cancelled: list[Sent] = []

    def open_orders(self) -> list[tuple[Order, int]]:
        """(terms, paid) of every order of this provider the index has as open."""
        conn = sqlite3.connect(f"file:{self.index_path.resolve()}?mode=ro", uri=True, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=2000")
            rows = conn.execute(
                "SELECT nonce, client, provider, deposit, price, expiry, paid FROM orders"
                " WHERE provider = ? AND status = 'open' ORDER BY nonce",
                (self.net.address,),
            ).fetchall()
        finally:
            conn.close()
        return [(Order(int(r[0]), r[1], r[2], int(r[3]), int(r[4]), int(r[5])), int(r[6])) for r in rows]

    def activity(self, order: Order, paid: int, now: float) -> OrderActivity:
        first = self.first_seen.setdefault(order.order_id, now)
        return OrderActivity(
            order.order_id,
            order.client,
            paid,
            first,
            self.book.latest(order.order_id) is not None,
            self.busy(order.order_id),
        )

    def check_once(self) -> list[Sent]:
        """Cancel every open order the policy gives up on now; the transactions sent."""
        if not self.policy.active:
            return []
        now = self.clock()
        sent: list[Sent] = []
        orders = self.open_orders()
        for order, paid in orders:
            decision = self.policy.decide(self.activity(order, paid, now), now)
            if decision is None:
                continue
            # Look again right before the transaction: a receipt or a stream may have arrived meanwhile.
            if self.book.latest(order.order_id) is not None or self.busy(order.order_id):
                continue
            try:
                refuse_for = decision.refuse_for
                if refuse_for and self.net.can_accuse(order.client):
                    refuse_for = 0  # a verifier probing us: the market ignores its refusal, so do not write one
                chain_now = int(self.net.w3.eth.get_block("latest")["timestamp"]) if refuse_for else 0
                refuse_until = refusal_end(chain_now, refuse_for)
                one = self.net.cancel(order, refuse_until)
            except FlowNetError as exc:  # accepted or closed meanwhile, or the RPC is down: the index tells
                log.warning("could not cancel order %d (0x%s…): %s", order.nonce, order.order_id.hex()[:12], exc)
                continue
            sent.append(one)
            refusal = ""
            if refuse_until == FOREVER:
                refusal = "; client refused for good"
            elif refuse_until:
                refusal = f"; client refused until {refuse_until} (chain time)"
            log.info(
                "cancelled order %d of %s, idle %.0f s with nothing paid: %s refunded, stake unlocked%s (tx %s)",
                order.nonce,
                order.client,
                now - self.first_seen[order.order_id],
                format_flow(order.deposit),
                refusal,
                one.tx_hash,
            )
        open_ids = {order.order_id for order, _ in orders}
        for order_id in list(self.first_seen):
            if order_id not in open_ids:
                del self.first_seen[order_id]
        self.cancelled.extend(sent)
        return sent

    def run(self, stop: threading.Event, interval: float = 5.0) -> None:
        """Check every `interval` seconds until `stop` (errors are logged, never fatal)."""
        if not self.policy.active:
            log.info("order keeper off: idle orders are not cancelled")
            return
        log.info(
            "cancelling orders of %s idle for %.0f s with nothing paid (refusing their clients for %d s)",
            self.net.address,
            self.policy.idle_after,
            self.policy.refuse_for,
        )
        while not stop.wait(interval):
            try:
                self.check_once()
            except Exception as exc:  # the keeper must outlive any one failure
                log.warning("order keeper skipped a round: %s", exc)
