"""The provider's tunnel server: mutual TLS 1.3, orders and certificates checked from the local index.

A client is served only if its certificate is registered on chain by the wallet it names, unrevoked
and unexpired, and that wallet's stake counts (checked in the TLS handshake's verify callback, from the
index — no RPC call per connection; flownet.certstatus), and each stream
only if its order is open, belongs to this provider, names the certificate's wallet as its client and
has escrow left. The server meters every byte in both directions per order, verifies each in-band
receipt exactly as the market will, stores the latest in the payment book, tells the client its
metered count (a METER frame with every RECEIPT_ACK and whenever a stream ends), and holds an order's
streams (no reading, no window credit) once its unpaid bytes reach the credit window. A monitor task
closes sessions whose certificate was revoked (or whose wallet, a provider or verifier, has nothing
bonded any more) and streams whose order ended, as the index learns of it.
With `slashing_manager` set it also verifies the clients' ServiceProofs (signed by the order's client
under the SlashingManager's EIP-712 domain) and keeps the best per (order, epoch) in the payment book,
for rebutting disputes (flownet.tunnel.defence).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from flownet.certstatus import CertificateRejected, check_certificate, invalid_among, lookup
from flownet.core.pricing import GIB, cost_of
from flownet.core.receipts import MarketDomain, Order, Receipt
from flownet.errors import ProtocolError, ReceiptError
from flownet.pki import inspect
from flownet.tunnel import frames as fr
from flownet.tunnel.book import PaymentBook
from flownet.tunnel.faults import Faults
from flownet.tunnel.mux import CloseReason, Session, Stream
from flownet.tunnel.payment import domain_separator, recover_proof_signer, recover_signer, service_proof_separator
from flownet.tunnel.policy import DestinationPolicy, DestinationRefused
from flownet.tunnel.tls import Identity, TlsLink, make_context

__all__ = ["OrderAccount", "ProviderConfig", "ProviderServer", "ProviderSession"]

log = logging.getLogger("flownet.provider")

MIB = 1 << 20


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
    credit_window: int = 16 * MIB  # unpaid bytes tolerated before an order's streams are held
    payment_timeout: float = 30.0  # seconds a held order may stay unpaid before its streams close
    connect_timeout: float = 10.0
    handshake_timeout: float = 10.0  # seconds a connection may take to complete the TLS handshake
    monitor_interval: float = 0.25
    max_streams: int = 1024  # per session
    clock: Callable[[], float] = time.time
    faults: Faults | None = None  # deliberate misbehaviour, for tests and the demo only (flownet.tunnel.faults)
    slashing_manager: str | None = None  # SlashingManager address: keep clients' ServiceProofs (None: ignore them)


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


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class OrderAccount:
    """Metering and payment state of one order (shared by every session and stream using it)."""

    def __init__(self, order: Order, accepted: Receipt | None) -> None:
        self.order = order
        self.accepted_amount = accepted.cumulative_amount if accepted else 0
        self.accepted_bytes = accepted.cumulative_bytes if accepted else 0
        self.metered = self.accepted_bytes  # bytes carried (both directions); a restart resumes from the receipt
        self.streams: set[ProviderStream] = set()
        self.held_since: float | None = None
        self.open = True
        self.checked_at = float("-inf")  # when `open` was last read from the index

    @property
    def covered_bytes(self) -> int:
        """Bytes the accepted amount pays for at the order's price."""
        price = self.order.price_per_gib
        return self.metered if price == 0 else self.accepted_amount * GIB // price

    @property
    def unpaid(self) -> int:
        return max(0, self.metered - self.covered_bytes)

    @property
    def exhausted(self) -> bool:
        """Nothing more can be paid: the accepted amount is the deposit, or the traffic already costs it."""
        return self.accepted_amount >= self.order.deposit or cost_of(self.metered, self.order.price_per_gib) >= (
            self.order.deposit
        )


class ProviderStream(Stream):
    """The connection to a destination; it reads only once the OPEN has been answered."""

    def __init__(self, session: ProviderSession, stream_id: int, account: OrderAccount) -> None:
        super().__init__(session, stream_id)
        self.account = account
        self.opened = False
        self.doomed = False  # a fault will reset this stream (flownet.tunnel.faults)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        self.reading = False
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        faults = self.session.server.config.faults  # type: ignore[attr-defined]
        if self.doomed and faults is not None:
            left = faults.drop_after - (self.bytes_up + self.bytes_down)
            if len(data) >= left:  # the fault: relay up to the limit, then reset the stream
                self.doomed = False
                if left > 0:
                    self.session.local_data(self, data[:left])
                log.warning("FAULT INJECTED: dropping stream %d after %d bytes", self.id, faults.drop_after)
                self.session.reset(self, CloseReason.RESET)
                return
        super().data_received(data)


class ProviderSession(Session):
    def __init__(self, server: ProviderServer) -> None:
        super().__init__()
        self.server = server
        self.client = ""  # the wallet named by the client's certificate
        self.cert_hash = b""
        self.cert_not_after = 0
        self.opening: set[int] = set()
        self.peer = "?"
        self.max_streams = server.config.max_streams

    def link_up(self, link: TlsLink, peer_der: bytes) -> None:
        super().link_up(link, peer_der)
        info = inspect(x509.load_der_x509_certificate(peer_der))
        self.client, self.cert_hash, self.cert_not_after = info.wallet, info.cert_hash, info.not_after
        # the handshake checked that the wallet registered it
        record = lookup(self.server.index.conn, info.cert_hash, info.wallet)
        if record is not None:  # the wallet may have registered it for less than its own validity
            self.cert_not_after = min(self.cert_not_after, record.not_after)
        self.peer = link.peer_address
        self.server.sessions.add(self)
        # TLS 1.3 clients finish their handshake before we judge their certificate: this first frame
        # (WINDOW on the control stream 0) tells the client it was accepted.
        self.send(fr.Window(0, 0))
        self.flush()
        log.info("client %s connected from %s (certificate 0x%s…)", self.client, self.peer, self.cert_hash.hex()[:12])

    def on_down(self, error: Exception | None) -> None:
        self.server.sessions.discard(self)
        if not self.client and error is not None:
            self.server.stats["refused_handshakes"] += 1
        if self.client:
            log.info("client %s disconnected%s", self.client, f": {error}" if error else "")

    # metering: on the provider, what we send goes down to the client, what we receive goes up

    def on_sent(self, stream: Stream, size: int) -> None:
        stream.bytes_down += size
        self._meter(stream, size)

    def on_received(self, stream: Stream, size: int) -> None:
        stream.bytes_up += size
        self._meter(stream, size)

    def _meter(self, stream: Stream, size: int) -> None:
        assert isinstance(stream, ProviderStream)
        account = stream.account
        faults = self.server.config.faults
        account.metered += size if faults is None else faults.metered(size)
        if account.held_since is None and (account.unpaid >= self.server.config.credit_window or account.exhausted):
            self.server.hold(account)  # exhausted: the deposit cannot pay for more, whatever the window

    def send_meter(self, account: OrderAccount) -> None:
        """Tell the client what this provider metered for the order so far."""
        if not self.closed:
            self.send(fr.Meter(0, account.order.order_id, account.metered))
            self.flush()

    def is_held(self, stream: Stream) -> bool:
        return isinstance(stream, ProviderStream) and (stream.account.held_since is not None or not stream.opened)

    def on_stream_end(self, stream: Stream) -> None:
        if isinstance(stream, ProviderStream):
            stream.account.streams.discard(stream)
            if stream.opened:
                self.send_meter(stream.account)

    # control frames

    def on_control(self, frame: fr.Frame) -> None:
        if isinstance(frame, fr.Open):
            if frame.stream_id == 0 or frame.stream_id in self.streams or frame.stream_id in self.opening:
                raise ProtocolError(f"OPEN for stream {frame.stream_id}, which is reserved or in use")
            self.opening.add(frame.stream_id)
            asyncio.get_running_loop().create_task(self._open(frame))
        elif isinstance(frame, fr.ReceiptFrame):
            self._receipt(frame)
        elif isinstance(frame, fr.ServiceProofFrame):
            self._service_proof(frame)
        else:
            raise ProtocolError(f"unexpected {type(frame).__name__} frame from a client")

    def _answer(self, stream_id: int, status: fr.OpenStatus, why: str = "") -> None:
        self.opening.discard(stream_id)
        if status != fr.OpenStatus.OK:
            log.info("stream %d of %s refused: %s (%s)", stream_id, self.client, status.name, why)
        if not self.closed:
            self.send(fr.OpenResult(stream_id, status))
            self.flush()

    async def _open(self, frame: fr.Open) -> None:
        server = self.server
        status, why, account = server.admit(self, frame.order_id)
        if account is None:
            self._answer(frame.stream_id, status, why)
            return
        if len(self.streams) + len(self.opening) > self.max_streams:
            self._answer(frame.stream_id, fr.OpenStatus.GENERAL_FAILURE, f"more than {self.max_streams} streams")
            return
        loop = asyncio.get_running_loop()
        try:
            literal = _ip_literal(frame.host)
            if literal is not None:  # no resolver round trip for an address
                address = server.config.policy.check(literal)
            else:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(frame.host, frame.port, type=socket.SOCK_STREAM), server.config.connect_timeout
                )
                address = server.config.policy.pick([str(info[4][0]) for info in infos])
        except DestinationRefused as exc:
            self._answer(frame.stream_id, fr.OpenStatus.NOT_ALLOWED, str(exc))
            return
        except (OSError, TimeoutError) as exc:
            self._answer(frame.stream_id, fr.OpenStatus.HOST_UNREACHABLE, f"cannot resolve {frame.host!r}: {exc}")
            return
        stream = ProviderStream(self, frame.stream_id, account)
        try:
            async with asyncio.timeout(server.config.connect_timeout):  # no extra task, unlike wait_for
                await loop.create_connection(lambda: stream, str(address), frame.port)
        except ConnectionRefusedError as exc:
            self._answer(frame.stream_id, fr.OpenStatus.CONNECTION_REFUSED, str(exc))
            return
        except (OSError, TimeoutError) as exc:
            self._answer(frame.stream_id, fr.OpenStatus.HOST_UNREACHABLE, str(exc) or type(exc).__name__)
            return
        if self.closed or not account.open:
            stream.close_local(abort=True)
            self._answer(frame.stream_id, fr.OpenStatus.ORDER_NOT_OPEN, "the order or session ended meanwhile")
            return
        self.streams[frame.stream_id] = stream
        account.streams.add(stream)
        stream.opened = True
        if server.config.faults is not None:
            stream.doomed = server.config.faults.doom_next_stream()
        server.stats["streams"] += 1
        self._answer(frame.stream_id, fr.OpenStatus.OK)
        self.update_reading(stream)

    def _receipt(self, frame: fr.ReceiptFrame) -> None:
        account = self.server.account(frame.order_id)
        if account is None or account.order.client != self.client:
            log.warning("receipt from %s for order 0x%s it cannot pay; ignored", self.client, frame.order_id.hex())
            return
        receipt = frame.receipt()
        try:
            signer = recover_signer(self.server.separator, receipt, frame.signature)
            if signer != account.order.client:
                raise ReceiptError(f"receipt signed by {signer}, not the order's client {account.order.client}")
            receipt.check_against(account.order)
            if receipt.cumulative_amount <= account.accepted_amount:
                raise ReceiptError(
                    f"amount {receipt.cumulative_amount} is not more than the {account.accepted_amount} accepted"
                )
            if receipt.cumulative_bytes < account.accepted_bytes:
                raise ReceiptError(f"bytes {receipt.cumulative_bytes} go back from {account.accepted_bytes}")
        except ReceiptError as exc:
            log.warning("receipt from %s rejected: %s", self.client, exc)
            return
        self.server.accept(account, receipt, frame.signature, self)

    def _service_proof(self, frame: fr.ServiceProofFrame) -> None:
        separator = self.server.proof_separator
        if separator is None:
            log.debug("service proof from %s ignored: no SlashingManager configured", self.client)
            return
        account = self.server.account(frame.order_id)
        if (
            account is None
            or account.order.client != self.client
            or account.order.provider != self.server.config.provider
        ):
            log.warning(
                "service proof from %s for order 0x%s it is not party to; ignored", self.client, frame.order_id.hex()
            )
            return
        try:
            if not 0 < frame.bytes_served < 1 << 63:
                raise ReceiptError(f"bytes served {frame.bytes_served} is outside 1..2**63-1")
            signer = recover_proof_signer(separator, frame.order_id, frame.epoch, frame.bytes_served, frame.signature)
            if signer != account.order.client:
                raise ReceiptError(f"service proof signed by {signer}, not the order's client {account.order.client}")
        except ReceiptError as exc:
            log.warning("service proof from %s rejected: %s", self.client, exc)
            return
        self.server.keep_proof(account.order, frame)


class ProviderServer:
    """Listens for clients; owns the order accounts, the payment book writer and the monitor."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.separator = domain_separator(config.domain)
        self.proof_separator = (
            service_proof_separator(config.domain.chain_id, config.slashing_manager)
            if config.slashing_manager
            else None
        )
        self.sessions: set[ProviderSession] = set()
        self.accounts: dict[bytes, OrderAccount] = {}
        self.index = IndexView(config.index_path, config.domain.chain_id, config.clock)
        self.context = make_context(config.identity, self.index.check_cert, server=True)
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="payment-book")
        self._server: asyncio.Server | None = None
        self._monitor: asyncio.Task[None] | None = None
        self.stats = {"sessions": 0, "streams": 0, "receipts": 0, "refused_handshakes": 0, "proofs": 0}
        if config.faults is not None and config.faults.active:
            log.warning("FAULT INJECTION ON (testing and demo only): %s", config.faults.describe())

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._link, self.config.host, self.config.port, backlog=1024)
        sock = self._server.sockets[0]
        self.config.port = sock.getsockname()[1]
        self._monitor = loop.create_task(self._watch())
        log.info("tunnel listening on %s:%d as %s", self.config.host, self.config.port, self.config.provider)

    def _link(self) -> TlsLink:
        self.stats["sessions"] += 1
        session = ProviderSession(self)
        link = TlsLink(self.context, session, server=True)
        asyncio.get_running_loop().call_later(self.config.handshake_timeout, self._handshake_deadline, session, link)
        return link

    def _handshake_deadline(self, session: ProviderSession, link: TlsLink) -> None:
        """Drop a connection that has not completed its handshake in time (it would hold a socket forever)."""
        if session.link is None and not link.closed:
            log.info(
                "no TLS handshake from %s within %.0f s: closing", link.peer_address, self.config.handshake_timeout
            )
            link.close()

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            for stream in list(session.streams.values()):
                session.reset(stream, CloseReason.SHUTDOWN)
            session.fail(ConnectionAbortedError("the provider is shutting down"))
        self._writer.shutdown(wait=True)
        self.index.close()

    # orders

    def account(self, order_id: bytes) -> OrderAccount | None:
        account = self.accounts.get(order_id)
        if account is None:
            found = self.index.order(order_id)
            if found is None:
                return None
            stored = self.config.book.latest(order_id)
            account = OrderAccount(found[0], stored.receipt if stored else None)
            account.open = found[1] == "open"
            self.accounts[order_id] = account
        return account

    def admit(self, session: ProviderSession, order_id: bytes) -> tuple[fr.OpenStatus, str, OrderAccount | None]:
        """Whether `session` may open a stream on `order_id` now; the account if so.

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
                return fr.OpenStatus.ORDER_NOT_OPEN, f"order 0x{order_id.hex()} is not in the index", None
            order, status = found
            if account is None:
                stored = self.config.book.latest(order_id)
                account = OrderAccount(order, stored.receipt if stored else None)
                self.accounts[order_id] = account
            account.open, account.checked_at = status == "open", now
        if order.provider != self.config.provider:
            return fr.OpenStatus.ORDER_NOT_OPEN, f"order is for provider {order.provider}", None
        if order.client != session.client:
            return fr.OpenStatus.CERT_NOT_AUTHORISED, f"order belongs to {order.client}, not {session.client}", None
        if status != "open" or order.expiry <= now:
            return fr.OpenStatus.ORDER_NOT_OPEN, f"order is {status}, expiry {order.expiry}", None
        if account.exhausted:
            return fr.OpenStatus.ORDER_EXHAUSTED, f"deposit {order.deposit} used up", None
        if account.held_since is not None:
            return fr.OpenStatus.PAYMENT_REQUIRED, f"{account.unpaid} bytes unpaid", None
        return fr.OpenStatus.OK, "", account

    def hold(self, account: OrderAccount) -> None:
        account.held_since = self.config.clock()
        log.info(
            "order 0x%s…: %d bytes unpaid, holding its %d stream(s) until a receipt arrives",
            account.order.order_id.hex()[:12],
            account.unpaid,
            len(account.streams),
        )
        for stream in account.streams:
            stream.set_reading(False)

    def accept(self, account: OrderAccount, receipt: Receipt, signature: bytes, session: ProviderSession) -> None:
        account.accepted_amount = receipt.cumulative_amount
        account.accepted_bytes = receipt.cumulative_bytes
        self.stats["receipts"] += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._writer, self.config.book.record, account.order, receipt, signature)

        def stored(done: asyncio.Future[None]) -> None:
            if done.exception() is not None:
                log.error("could not store a receipt for order 0x%s: %s", receipt.order_id.hex(), done.exception())
            elif not session.closed:
                session.send(fr.ReceiptAck(0, receipt.cumulative_amount))
                session.send_meter(account)

        future.add_done_callback(stored)
        if account.held_since is not None and account.unpaid < self.config.credit_window and not account.exhausted:
            account.held_since = None
            for stream in list(account.streams):
                if not stream.done:
                    stream.session.flush_pending(stream)
                    stream.session.acknowledge(stream, force=True)

    def keep_proof(self, order: Order, frame: fr.ServiceProofFrame) -> None:
        """Store a verified ServiceProof in the book (from the writer thread, like receipts)."""
        self.stats["proofs"] += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._writer, self.config.book.record_proof, order, frame.epoch, frame.bytes_served, frame.signature
        )

        def stored(done: asyncio.Future[bool]) -> None:
            if done.exception() is not None:
                log.error("could not store a service proof for order 0x%s: %s", order.order_id.hex(), done.exception())
            elif done.result():
                log.debug(
                    "service proof: order 0x%s… epoch %d, %d bytes",
                    order.order_id.hex()[:12],
                    frame.epoch,
                    frame.bytes_served,
                )

        future.add_done_callback(stored)

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
                if account.held_since is None and account.unpaid == 0:
                    # reloaded from the index and the book when next used; an unpaid balance is kept
                    self.accounts.pop(order_id, None)
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
        log.info("order 0x%s…: closing %d stream(s): %s", account.order.order_id.hex()[:12], len(account.streams), why)
        for stream in list(account.streams):
            stream.session.reset(stream, reason)
