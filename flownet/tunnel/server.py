"""The provider's tunnel server: mutual TLS 1.3, orders and certificates checked from the local index.

A client is served only if its certificate is registered on chain by the wallet it names, unrevoked
and unexpired, and that wallet's stake counts (checked in the TLS handshake's verify callback, from the
index — no RPC call per connection; flownet.certstatus), and each stream
only if its order is open, belongs to this provider, names the certificate's wallet as its client and
has escrow left. The server meters every byte in both directions per order, verifies each in-band
receipt exactly as the market will, stores the latest in the payment book, tells the client its
metered count (a METER frame with every RECEIPT_ACK and whenever a stream ends), and carries bytes on
credit only within the order's and the wallet's credit windows, upload windows it granted included
(flownet.tunnel.credit); an order whose own window is used up is held until a receipt arrives. A
monitor task closes sessions whose certificate was revoked (or whose wallet, a provider or verifier,
has nothing bonded any more) and streams whose order ended, as the index learns of it. With
`slashing_manager` set it also verifies the clients' ServiceProofs (signed by the order's client under
the SlashingManager's EIP-712 domain) for epochs the order can have carried bytes in, and keeps the
best per (order, epoch) in the payment book, for rebutting disputes (flownet.tunnel.defence).

Whatever a client (or anyone who can reach the port) sends, what the provider spends on it is bounded
(flownet.tunnel.limits): connections in their handshake per address and overall, sessions per wallet
and overall, streams, name lookups (flownet.tunnel.resolver), signature checks, payment-book writes
and log lines; a session that ends releases everything it held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from flownet.certstatus import CertificateRejected, check_certificate, invalid_among
from flownet.core.receipts import MarketDomain, Order, Receipt
from flownet.errors import TunnelError
from flownet.tunnel import frames as fr
from flownet.tunnel.book import BookWriter, PaymentBook
from flownet.tunnel.checks import Checker
from flownet.tunnel.credit import OrderAccount, WalletAccount
from flownet.tunnel.faults import Faults
from flownet.tunnel.limits import LogLimiter, PendingHandshakes, TokenBucket, TunnelLimits
from flownet.tunnel.mux import CloseReason
from flownet.tunnel.payment import domain_separator, service_proof_separator
from flownet.tunnel.policy import DestinationPolicy
from flownet.tunnel.resolver import Resolver
from flownet.tunnel.session import ProviderSession, ProviderStream
from flownet.tunnel.tls import Identity, TlsLink, make_context

__all__ = ["OrderAccount", "ProviderConfig", "ProviderServer", "ProviderSession", "ProviderStream"]

log = logging.getLogger("flownet.provider")

MIB = 1 << 20
#: The largest first upload window of a stream (smaller when the credit window is small).
MAX_INITIAL_WINDOW = 64 * 1024


@dataclass
class ProviderConfig:
    identity: Identity
    provider: str  # this provider's wallet (checksum)
    domain: MarketDomain
    index_path: Path
    book: PaymentBook
    policy: DestinationPolicy = field(default_factory=DestinationPolicy)
    host: str = "127.0.0.1"
    port: int = 7443
    credit_window: int = 16 * MIB  # bytes an order may have unpaid (upload windows granted included)
    payment_timeout: float = 30.0  # seconds a held order may stay unpaid before its streams close
    connect_timeout: float = 10.0
    handshake_timeout: float = 10.0  # seconds a connection may take to complete the TLS handshake
    monitor_interval: float = 0.25
    max_streams: int = 1024  # per session
    clock: Callable[[], float] = time.time
    faults: Faults | None = None  # deliberate misbehaviour, for tests and the demo only (flownet.tunnel.faults)
    slashing_manager: str | None = None  # SlashingManager address: keep clients' ServiceProofs (None: ignore them)
    epoch_seconds: int = 30  # the SlashingManager's epoch: proofs are kept only for epochs an order can span
    epoch_clock: Callable[[], float] | None = None  # the chain's time for epochs (None: `clock`)
    limits: TunnelLimits = field(default_factory=TunnelLimits)


class IndexView:
    """Read-only queries on the local index (an indexer ledger the provider keeps in sync)."""

    def __init__(self, path: Path, chain_id: int, clock: Callable[[], float]) -> None:
        self.conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, isolation_level=None)
        self.conn.execute("PRAGMA busy_timeout=2000")
        self.chain_id = chain_id
        self.clock = clock

    def check_cert(self, der: bytes) -> str | None:
        try:
            check_certificate(self.conn, der, self.chain_id, int(self.clock()))
        except CertificateRejected as exc:
            return f"certificate {exc.reason}: {exc}"
        return None

    def order(self, order_id: bytes) -> tuple[Order, str] | None:
        """The order's terms and status ("open" | "closed"), if indexed."""
        row = self.conn.execute(
            "SELECT nonce, client, provider, deposit, price, expiry, status FROM orders WHERE order_id = ?",
            ("0x" + order_id.hex(),),
        ).fetchone()
        if row is None:
            return None
        order = Order(int(row[0]), row[1], row[2], int(row[3]), int(row[4]), int(row[5]))
        return order, str(row[6])

    def invalid(self, certs: list[tuple[str, bytes]]) -> dict[tuple[str, bytes], str]:
        """Those of `certs` (wallet, cert hash) revoked, or whose wallet's stake no longer counts."""
        return invalid_among(self.conn, certs)

    def close(self) -> None:
        self.conn.close()


class _Logs:
    """The server's rate-limited log lines, one limiter per kind."""

    def __init__(self, limits: TunnelLimits) -> None:
        def limiter(kind: str, scale: int = 1) -> LogLimiter:
            return LogLimiter(log, kind, scale * limits.log_lines_per_second, scale * limits.log_burst)

        self.refusals = limiter("stream refusal")
        self.payments = limiter("receipt and proof")
        self.handshakes = limiter("handshake")
        self.sessions = limiter("session", 10)  # what a busy provider does: bounded by the session caps
        self.violations = limiter("session failure")
        self.orders = limiter("order")
        self.all = (self.refusals, self.payments, self.handshakes, self.sessions, self.violations, self.orders)

    def flush(self) -> None:
        for limiter in self.all:
            limiter.flush()


class ProviderServer:
    """Listens for clients; owns the order accounts, the payment book writer, the resolver and the monitor."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.limits = limits = config.limits
        self.separator = domain_separator(config.domain)
        self.proof_separator = (
            service_proof_separator(config.domain.chain_id, config.slashing_manager)
            if config.slashing_manager
            else None
        )
        self.sessions: set[ProviderSession] = set()
        self.by_wallet: dict[str, list[ProviderSession]] = {}  # each wallet's sessions, oldest first
        self.accounts: dict[bytes, OrderAccount] = {}
        self.wallets: dict[str, WalletAccount] = {}
        self.index = IndexView(config.index_path, config.domain.chain_id, config.clock)
        self.context = make_context(config.identity, self.index.check_cert, server=True)
        self.logs = _Logs(limits)
        self.pending = PendingHandshakes(limits.pending_handshakes_per_address, limits.pending_handshakes)
        self.resolver = Resolver(
            limits.lookups, limits.lookups_per_session, limits.lookups_per_wallet, limits.lookup_timeout
        )
        self.writer = BookWriter()
        self.checker = Checker(self)
        self.penalties: dict[str, tuple[float, int]] = {}  # wallet -> (refused until, violations)
        self.slots = 0  # streams open or connecting, over all sessions (each a socket)
        self.max_sessions = limits.sessions
        self.max_streams_total = limits.streams
        self.max_wallet_streams = limits.streams_per_wallet
        self.initial_window = min(
            MAX_INITIAL_WINDOW, max(1024, config.credit_window // (2 * max(1, config.max_streams)))
        )
        self._waking: dict[WalletAccount, None] = {}
        self._wake: asyncio.Handle | None = None
        self._server: asyncio.Server | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._flushed_logs = time.monotonic()
        self.stats = {"sessions": 0, "streams": 0, "receipts": 0, "refused_handshakes": 0, "proofs": 0}
        self.counters = {  # what abuse cost, for tests and benchmarks
            "handshakes_given_up": 0,
            "sessions_refused": 0,
            "sessions_replaced": 0,
            "sessions_failed": 0,
            "signature_checks": 0,
            "proofs_refused": 0,
            "sessions_throttled": 0,
        }
        self.new_sessions: dict[str, TokenBucket] = {}  # per wallet
        if config.faults is not None and config.faults.active:
            log.warning("FAULT INJECTION ON (testing and demo only): %s", config.faults.describe())

    async def start(self) -> None:
        self._fit_file_limit()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._link, self.config.host, self.config.port, backlog=1024)
        sock = self._server.sockets[0]
        self.config.port = sock.getsockname()[1]
        self._monitor = loop.create_task(self._watch())
        log.info("tunnel listening on %s:%d as %s", self.config.host, self.config.port, self.config.provider)

    def _fit_file_limit(self) -> None:
        """Lower the caps on pending handshakes, sessions and streams (each a socket) to fit the open-file
        limit, so that no client can make the provider run out of sockets for the others."""
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        budget = (1 << 20 if soft == resource.RLIM_INFINITY else soft) - 64
        limits = self.limits
        self.pending.total = min(limits.pending_handshakes, max(8, budget // 8))
        self.pending.per_address = min(limits.pending_handshakes_per_address, self.pending.total)
        self.max_sessions = min(limits.sessions, max(8, budget // 4))
        self.max_streams_total = min(limits.streams, max(16, budget - self.pending.total - self.max_sessions))
        self.max_wallet_streams = min(limits.streams_per_wallet, max(16, self.max_streams_total // 2))
        if (self.pending.total, self.max_sessions, self.max_streams_total) != (
            limits.pending_handshakes,
            limits.sessions,
            limits.streams,
        ):
            log.warning(
                "open-file limit %d: at most %d pending handshakes, %d sessions and %d streams (%d per wallet)",
                soft,
                self.pending.total,
                self.max_sessions,
                self.max_streams_total,
                self.max_wallet_streams,
            )

    # connections and sessions

    def _link(self) -> TlsLink:
        self.stats["sessions"] += 1
        session = ProviderSession(self)
        link = TlsLink(self.context, session, server=True, on_connect=self._connected, report=self.logs.handshakes.info)
        session.handshake_link = link
        session.deadline = asyncio.get_running_loop().call_later(
            self.config.handshake_timeout, self._handshake_deadline, session, link
        )
        return link

    def _connected(self, link: TlsLink) -> None:
        """A TCP connection was accepted: count it as pending, giving up the oldest idle ones beyond the caps."""
        given_up = self.pending.admit(link, link.peer_host)
        if given_up:
            self.counters["handshakes_given_up"] += len(given_up)
            self.logs.handshakes.info(
                "%d connection(s) still in their handshake closed to make room for %s",
                len(given_up),
                link.peer_address,
            )
            for old in given_up:
                cast(TlsLink, old).abort()

    def _handshake_deadline(self, session: ProviderSession, link: TlsLink) -> None:
        """Drop a connection that has not completed its handshake in time (it would hold a socket forever)."""
        session.deadline = None
        if session.link is None and not link.closed:
            self.logs.handshakes.info(
                "no TLS handshake from %s within %.0f s: closing", link.peer_address, self.config.handshake_timeout
            )
            link.close()

    def handshake_over(self, session: ProviderSession) -> None:
        if session.handshake_link is not None:
            self.pending.done(session.handshake_link)
            session.handshake_link = None
        if session.deadline is not None:
            session.deadline.cancel()
            session.deadline = None

    def register(self, session: ProviderSession) -> str | None:
        """Count a session that completed its handshake; why it is refused, if it is."""
        penalty = self.penalties.get(session.client)
        if penalty is not None and time.monotonic() < penalty[0]:
            self.counters["sessions_refused"] += 1
            wait = penalty[0] - time.monotonic()
            return f"{session.client} broke the protocol: its sessions are refused for another {wait:.0f} s"
        if len(self.sessions) >= self.max_sessions:
            self.counters["sessions_refused"] += 1
            return f"the provider already serves {len(self.sessions)} sessions, its limit"
        rate = self.new_sessions.get(session.client)
        if rate is None:
            limits = self.limits
            rate = self.new_sessions[session.client] = TokenBucket(
                limits.new_sessions_per_second, limits.new_session_burst
            )
        if not rate.take():
            self.counters["sessions_refused"] += 1
            return f"{session.client} opens sessions faster than {self.limits.new_sessions_per_second:g} a second"
        mine = self.by_wallet.setdefault(session.client, [])
        while len(mine) >= self.limits.sessions_per_wallet:
            oldest = mine.pop(0)
            self.counters["sessions_replaced"] += 1
            oldest.fail(TunnelError(f"a newer session of {session.client} replaces it ({len(mine) + 1} at most)"))
        mine.append(session)
        self.sessions.add(session)
        return None

    def unregister(self, session: ProviderSession, error: Exception | None) -> None:
        """A session ended: forget it everywhere."""
        self.handshake_over(session)
        self.sessions.discard(session)
        self.checker.forget(session)
        mine = self.by_wallet.get(session.client)
        if mine is not None:
            if session in mine:
                mine.remove(session)
            if not mine:
                del self.by_wallet[session.client]
        if not session.client and error is not None:
            self.stats["refused_handshakes"] += 1

    def penalize(self, session: ProviderSession) -> None:
        """`session` broke the protocol: refuse its wallet's new sessions for a while (longer each time)."""
        if not session.client:
            return
        _, strikes = self.penalties.get(session.client, (0.0, 0))
        strikes += 1
        limits = self.limits
        cooldown = min(limits.violation_cooldown_max, limits.violation_cooldown * 2 ** min(strikes - 1, 16))
        self.penalties[session.client] = (time.monotonic() + cooldown, strikes)
        self.logs.violations.warning(
            "%s broke the protocol (%d time(s)): its new sessions are refused for %.0f s",
            session.client,
            strikes,
            cooldown,
        )

    def wallet_streams(self, wallet: str) -> int:
        return sum(len(s.streams) + len(s.opening) for s in self.by_wallet.get(wallet, ()))

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            for stream in list(session.streams.values()):
                session.reset(stream, CloseReason.SHUTDOWN)
            session.fail(ConnectionAbortedError("the provider is shutting down"))
        self.checker.stop()
        if self._wake is not None:
            self._wake.cancel()
        self.writer.close()
        self.resolver.close()
        self.logs.flush()
        self.index.close()

    # orders

    def _new_account(self, order: Order) -> OrderAccount:
        wallet = self.wallets.get(order.client)
        if wallet is None:
            window = self.limits.wallet_window(self.config.credit_window)
            wallet = self.wallets[order.client] = WalletAccount(order.client, window)
        stored = self.config.book.latest(order.order_id)
        account = OrderAccount(order, stored.receipt if stored else None, self.config.credit_window, wallet)
        self.accounts[order.order_id] = account
        return account

    def account(self, order_id: bytes) -> OrderAccount | None:
        account = self.accounts.get(order_id)
        if account is None:
            found = self.index.order(order_id)
            if found is None:
                return None
            account = self._new_account(found[0])
            account.open = found[1] == "open"
        return account

    def admit(self, session: ProviderSession, order_id: bytes) -> tuple[fr.OpenStatus, str, OrderAccount | None, bool]:
        """Whether `session` may open a stream on `order_id` now: (status, why, the account if so, whether
        the order is one the session can never use: unknown, another provider's or another client's).

        The index is read at most once per monitor interval per order (an order's terms never change,
        and its status is re-read by then), which keeps a query off most stream openings.
        """
        now = self.config.clock()
        account = self.accounts.get(order_id)
        if account is not None and now - account.checked_at < self.config.monitor_interval:
            order, status = account.order, "open" if account.open else "closed"
        else:
            found = self.index.order(order_id)
            if found is None:
                return fr.OpenStatus.ORDER_NOT_OPEN, f"order 0x{order_id.hex()} is not in the index", None, True
            order, status = found
            if account is None:
                account = self._new_account(order)
            account.open, account.checked_at = status == "open", now
        if order.provider != self.config.provider:
            return fr.OpenStatus.ORDER_NOT_OPEN, f"order is for provider {order.provider}", None, True
        if order.client != session.client:
            why = f"order belongs to {order.client}, not {session.client}"
            return fr.OpenStatus.CERT_NOT_AUTHORISED, why, None, True
        if status != "open" or order.expiry <= now:
            return fr.OpenStatus.ORDER_NOT_OPEN, f"order is {status}, expiry {order.expiry}", None, False
        if account.exhausted:
            return fr.OpenStatus.ORDER_EXHAUSTED, f"deposit {order.deposit} used up", None, False
        if account.held_since is not None:
            return fr.OpenStatus.PAYMENT_REQUIRED, f"{account.unpaid} bytes unpaid", None, False
        return fr.OpenStatus.OK, "", account, False

    def hold(self, account: OrderAccount) -> None:
        account.held_since = self.config.clock()
        self.logs.orders.info(
            "order 0x%s…: %d bytes unpaid, holding its %d stream(s) until a receipt arrives",
            account.order.order_id.hex()[:12],
            account.unpaid,
            len(account.streams),
        )
        for stream in account.streams:
            stream.set_reading(False)

    def starve(self, account: OrderAccount, stream: ProviderStream) -> None:
        """`stream` found no credit: it waits for some; the order is held once its own window is used up."""
        account.starved.add(stream)
        if account.held_since is None and account.window - account.unpaid - account.granted <= 0:
            self.hold(account)

    def wake_soon(self, account: OrderAccount) -> None:
        """Credit was freed in `account`'s wallet: let its waiting streams move (once per loop turn)."""
        wallet = account.wallet
        if any(a.starved for a in wallet.accounts):
            self._waking[wallet] = None
            if self._wake is None:
                self._wake = asyncio.get_running_loop().call_soon(self._wake_now)

    def _wake_now(self) -> None:
        self._wake = None
        wallets, self._waking = self._waking, {}
        for wallet in wallets:
            for account in list(wallet.accounts):
                starved, account.starved = account.starved, set()
                for stream in starved:
                    if not stream.done:
                        stream.session.flush_pending(stream)
                        stream.session.acknowledge(stream, force=True)

    def accept(self, account: OrderAccount, receipt: Receipt, signature: bytes, session: ProviderSession) -> None:
        account.pay(receipt)
        self.stats["receipts"] += 1
        loop = asyncio.get_running_loop()
        book, order = self.config.book, account.order

        def stored(_result: object, error: BaseException | None) -> None:  # on the writer thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: the provider stopped
                loop.call_soon_threadsafe(acknowledged, error)

        def acknowledged(error: BaseException | None) -> None:
            if error is not None:
                log.error("could not store a receipt for order 0x%s: %s", receipt.order_id.hex(), error)
            elif not session.closed:
                session.send(fr.ReceiptAck(0, receipt.cumulative_amount))
                session.send_meter(account)

        self.writer.submit(("receipt", order.order_id), lambda: book.record(order, receipt, signature), stored)
        if (
            account.held_since is not None
            and account.window - account.unpaid - account.granted > 0
            and not account.exhausted
        ):
            account.held_since = None
            for stream in list(account.streams):
                if not stream.done:
                    stream.session.flush_pending(stream)
                    stream.session.acknowledge(stream, force=True)
        self.wake_soon(account)

    def proof_epochs(self, expiry: int | None = None) -> tuple[int, int]:
        """The SlashingManager epochs a proof may name now: from `proof_max_age` ago to the current epoch
        (one more for clocks a little ahead), and for an order expiring at `expiry`, none after it."""
        now = (self.config.epoch_clock or self.config.clock)()
        seconds = self.config.epoch_seconds
        last = int(now) // seconds + 1
        if expiry is not None:
            last = min(last, expiry // seconds)
        return int(now - self.limits.proof_max_age) // seconds, last

    def keep_proof(self, order: Order, frame: fr.ServiceProofFrame) -> None:
        """Store a verified ServiceProof in the book (from the writer thread, like receipts)."""
        self.stats["proofs"] += 1
        loop = asyncio.get_running_loop()
        book = self.config.book

        def stored(kept: object, error: BaseException | None) -> None:  # on the writer thread
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(logged, kept, error)

        def logged(kept: object, error: BaseException | None) -> None:
            if error is not None:
                log.error("could not store a service proof for order 0x%s: %s", order.order_id.hex(), error)
            elif kept:
                log.debug(
                    "service proof: order 0x%s… epoch %d, %d bytes",
                    order.order_id.hex()[:12],
                    frame.epoch,
                    frame.bytes_served,
                )

        self.writer.submit(
            ("proof", order.order_id, frame.epoch),
            lambda: book.record_proof(order, frame.epoch, frame.bytes_served, frame.signature),
            stored,
        )

    # the monitor: revocations, ended orders, unpaid orders

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.monitor_interval)
            try:
                self.check_once()
            except sqlite3.Error as exc:  # the indexer may hold a write lock briefly
                log.debug("monitor skipped a round: %s", exc)

    def check_once(self) -> None:
        now = self.config.clock()
        if time.monotonic() - self._flushed_logs >= 10:
            self._flushed_logs = time.monotonic()
            self.logs.flush()
            forgiven = time.monotonic() - self.limits.violation_cooldown_max
            for wallet, (until, _) in list(self.penalties.items()):
                if until < forgiven:
                    del self.penalties[wallet]
            for wallet, rate in list(self.new_sessions.items()):
                if rate.wait() == 0 and rate.tokens >= rate.burst:
                    del self.new_sessions[wallet]
        if self.sessions:
            sessions = list(self.sessions)
            invalid = self.index.invalid([(s.client, s.cert_hash) for s in sessions])
            for session in sessions:
                why = invalid.get((session.client, session.cert_hash))
                if why is not None or session.cert_not_after <= now:
                    why = why or "expired"
                    log.warning("certificate of %s was %s: closing its session", session.client, why)
                    for stream in list(session.streams.values()):
                        session.reset(stream, CloseReason.CERT_REVOKED)
                    session.fail(ConnectionAbortedError(f"client certificate {why}"))
        for order_id, account in list(self.accounts.items()):
            if not account.streams:
                if account.idle:
                    # reloaded from the index and the book when next used; an unpaid balance is kept
                    self.accounts.pop(order_id, None)
                    account.forget()
                    if not account.wallet.accounts:
                        self.wallets.pop(account.order.client, None)
                continue
            found = self.index.order(order_id)
            ended = found is None or found[1] != "open" or found[0].expiry <= now
            if ended:
                account.open = False
                self._end(account, CloseReason.ORDER_ENDED, "the order ended")
            elif account.held_since is not None and account.accepted_amount >= account.order.deposit:
                self._end(account, CloseReason.ORDER_ENDED, f"deposit used up with {account.unpaid} bytes unpaid")
            elif account.held_since is not None and now - account.held_since >= self.config.payment_timeout:
                self._end(account, CloseReason.PAYMENT_REQUIRED, f"{account.unpaid} bytes unpaid")

    def _end(self, account: OrderAccount, reason: CloseReason, why: str) -> None:
        self.logs.orders.info(
            "order 0x%s…: closing %d stream(s): %s", account.order.order_id.hex()[:12], len(account.streams), why
        )
        for stream in list(account.streams):
            stream.session.reset(stream, reason)
