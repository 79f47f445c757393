"""Receipts and service proofs on the provider: from the wire, through their signature checks, to the book.

A receipt or proof a client sends is first looked at cheaply (a receipt not above the accepted amount,
a proof for an epoch no order can have carried bytes in now: refused at once), then waits in its
session's `Backlog` for a signature check. `Checker` runs the checks in turn between sessions, within
each session's rate and the provider's, and not while the payment book's writer is behind; a check
that passes updates the order's account and queues the book write (`ProviderServer.accept`,
`ProviderServer.keep_proof`). Receipts are cumulative and only the best proof per (order, epoch) is
kept, so while checks wait a session's backlog collapses into what can still count: however fast a
client sends, the provider spends a bounded number of signature checks and book writes on it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from typing import TYPE_CHECKING

from flownet.errors import ReceiptError
from flownet.tunnel import frames as fr
from flownet.tunnel.limits import TokenBucket
from flownet.tunnel.payment import recover_proof_signer, recover_signer

if TYPE_CHECKING:
    from flownet.tunnel.server import ProviderServer
    from flownet.tunnel.session import ProviderSession

__all__ = ["COLLAPSE_AT", "Backlog", "Check", "Checker"]

log = logging.getLogger("flownet.provider")

#: Receipts and proofs waiting for their signature check beyond which a session's backlog collapses.
COLLAPSE_AT = 16

Check = fr.ReceiptFrame | fr.ServiceProofFrame


def _key_value(frame: Check) -> tuple[tuple[bytes, int], int]:
    if isinstance(frame, fr.ReceiptFrame):
        return (frame.order_id, -1), frame.cumulative_amount
    return (frame.order_id, frame.epoch), frame.bytes_served


class Backlog:
    """Receipts and proofs waiting for their signature check.

    The first `COLLAPSE_AT` wait in order, each to be checked; beyond them only what can count is kept:
    the newest receipt per order and the best proof per (order, epoch), at most `proofs` of those.
    """

    def __init__(self, proofs: int) -> None:
        self.queue: deque[Check] = deque()
        self.latest: dict[tuple[bytes, int], Check] = {}
        self.max_proofs = proofs
        self.proofs = 0  # proofs in `latest`
        self.collapsed = 0

    def __len__(self) -> int:
        return len(self.queue) + len(self.latest)

    def add(self, frame: Check) -> bool:
        """Keep `frame` for checking; False if it was dropped (proofs for too many epochs at once)."""
        if len(self.queue) < COLLAPSE_AT and not self.latest:
            self.queue.append(frame)
            return True
        key, value = _key_value(frame)
        kept = self.latest.get(key)
        if kept is None:
            if key[1] >= 0:
                if self.proofs >= self.max_proofs:
                    self.collapsed += 1
                    return False
                self.proofs += 1
            self.latest[key] = frame
            return True
        self.collapsed += 1
        if value > _key_value(kept)[1]:
            self.latest[key] = frame
        return True

    def pop(self) -> Check | None:
        if self.queue:
            return self.queue.popleft()
        if self.latest:
            key = next(iter(self.latest))
            if key[1] >= 0:
                self.proofs -= 1
            return self.latest.pop(key)
        return None

    def clear(self) -> None:
        self.queue.clear()
        self.latest.clear()
        self.proofs = 0


class Checker:
    """The provider's signature checks of receipts and proofs: in turn between sessions, within rates."""

    def __init__(self, server: ProviderServer) -> None:
        self.server = server
        limits = server.limits
        self.rate = TokenBucket(limits.total_verifications_per_second, limits.total_verification_burst)
        self._waiting: dict[ProviderSession, None] = {}  # sessions with checks waiting, in turn
        self._running: asyncio.Handle | None = None

    def queue(self, session: ProviderSession, frame: Check) -> None:
        """Keep a receipt or proof for its signature check, unless a cheap look already refuses it."""
        server = self.server
        if isinstance(frame, fr.ServiceProofFrame):
            if server.proof_separator is None:
                log.debug("service proof from %s ignored: no SlashingManager configured", session.client)
                return
            first, last = server.proof_epochs()
            if not first <= frame.epoch <= last:
                server.counters["proofs_refused"] += 1
                server.logs.payments.warning(
                    "service proof from %s rejected: epoch %d is not one an order can have carried bytes in now "
                    "(%d..%d)",
                    session.client,
                    frame.epoch,
                    first,
                    last,
                )
                return
        else:
            account = server.accounts.get(frame.order_id)
            if account is not None and frame.cumulative_amount <= account.accepted_amount:
                server.logs.payments.warning(
                    "receipt from %s rejected: amount %d is not more than the %d accepted",
                    session.client,
                    frame.cumulative_amount,
                    account.accepted_amount,
                )
                return
        if not session.checks.add(frame):
            server.logs.payments.warning(
                "%s sent proofs for more than %d (order, epoch) pairs at once: the rest are dropped",
                session.client,
                session.checks.max_proofs,
            )
        self.soon(session)

    def soon(self, session: ProviderSession) -> None:
        if session.check_timer is None:
            self._waiting[session] = None
        if self._running is None:
            self._running = asyncio.get_running_loop().call_soon(self._run)

    def forget(self, session: ProviderSession) -> None:
        self._waiting.pop(session, None)

    def stop(self) -> None:
        if self._running is not None:
            self._running.cancel()
            self._running = None

    def _ready(self, session: ProviderSession) -> None:
        session.check_timer = None
        if not session.closed:
            self.soon(session)

    def _run(self) -> None:
        self._running = None
        loop = asyncio.get_running_loop()
        while self._waiting:
            if self.server.writer.backlog >= self.server.limits.book_backlog:  # back-pressure: the book is behind
                self._running = loop.call_later(0.01, self._run)
                return
            session = next(iter(self._waiting))
            del self._waiting[session]
            if session.closed or not session.checks:
                continue
            if not session.bucket.ready():
                session.check_timer = loop.call_later(session.bucket.wait(), self._ready, session)
                continue
            if not self.rate.take():
                self._waiting[session] = None
                self._running = loop.call_later(self.rate.wait(), self._run)
                return
            session.bucket.take()
            frame = session.checks.pop()
            try:
                if isinstance(frame, fr.ReceiptFrame):
                    self._receipt(session, frame)
                elif frame is not None:
                    self._proof(session, frame)
            except sqlite3.Error as exc:  # the indexer may hold a write lock briefly
                log.debug("a payment check waits: %s", exc)
            if session.checks and not session.closed:
                self._waiting[session] = None  # to the back of the line

    def _receipt(self, session: ProviderSession, frame: fr.ReceiptFrame) -> None:
        server = self.server
        account = server.account(frame.order_id)
        if account is None or account.order.client != session.client:
            server.logs.payments.warning(
                "receipt from %s for order 0x%s it cannot pay; ignored", session.client, frame.order_id.hex()
            )
            return
        receipt = frame.receipt()
        try:
            if receipt.cumulative_amount <= account.accepted_amount:  # before the signature: cheap
                raise ReceiptError(
                    f"amount {receipt.cumulative_amount} is not more than the {account.accepted_amount} accepted"
                )
            if receipt.cumulative_bytes < account.accepted_bytes:
                raise ReceiptError(f"bytes {receipt.cumulative_bytes} go back from {account.accepted_bytes}")
            receipt.check_against(account.order)
            server.counters["signature_checks"] += 1
            signer = recover_signer(server.separator, receipt, frame.signature)
            if signer != account.order.client:
                raise ReceiptError(f"receipt signed by {signer}, not the order's client {account.order.client}")
        except ReceiptError as exc:
            server.logs.payments.warning("receipt from %s rejected: %s", session.client, exc)
            return
        server.accept(account, receipt, frame.signature, session)

    def _proof(self, session: ProviderSession, frame: fr.ServiceProofFrame) -> None:
        server = self.server
        separator = server.proof_separator
        if separator is None:
            return
        account = server.account(frame.order_id)
        if (
            account is None
            or account.order.client != session.client
            or account.order.provider != server.config.provider
        ):
            server.logs.payments.warning(
                "service proof from %s for order 0x%s it is not party to; ignored",
                session.client,
                frame.order_id.hex(),
            )
            return
        try:
            if not 0 < frame.bytes_served < 1 << 63:
                raise ReceiptError(f"bytes served {frame.bytes_served} is outside 1..2**63-1")
            first, last = server.proof_epochs(account.order.expiry)
            if not first <= frame.epoch <= last:
                raise ReceiptError(f"epoch {frame.epoch} is outside the epochs the order can span now, {first}..{last}")
            server.counters["signature_checks"] += 1
            signer = recover_proof_signer(separator, frame.order_id, frame.epoch, frame.bytes_served, frame.signature)
            if signer != account.order.client:
                raise ReceiptError(f"service proof signed by {signer}, not the order's client {account.order.client}")
        except ReceiptError as exc:
            server.logs.payments.warning("service proof from %s rejected: %s", session.client, exc)
            return
        server.keep_proof(account.order, frame)
