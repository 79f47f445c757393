"""The client's side of the tunnel: a local SOCKS5 server whose connections become streams to the provider.

One TLS session to the provider carries every SOCKS connection as a stream (it is opened on the first
connection, and again after it drops). The provider's certificate must name the order's provider
wallet and pass `provider_check` (registered and unrevoked), or the handshake fails. The client counts
the bytes of every stream in both directions and signs a cumulative receipt each `receipt_interval`
bytes, and once traffic goes quiet, so the provider is paid for everything that flowed; its latest
receipt is kept in `ReceiptLog` so a restarted client continues the count instead of starting at 0.
The provider's own count for the order arrives in METER frames and is kept in `provider_metered`,
so the client's count (`total`) can be compared with what the provider says it metered.

With `proofs` set (a `ServiceProofSigner` for the deployment's SlashingManager) and `epoch_seconds`,
the client also counts the bytes carried in each SlashingManager epoch and sends the provider a
signed ServiceProof (SERVICE_PROOF frame) for every epoch in which bytes flowed: when the epoch rolls
over, when traffic goes quiet and on stop. The provider keeps them to rebut disputes about those epochs.
With `auto_proofs` False the client sends none of its own accord: `vouch(epoch, bytes_served)` signs
and sends exactly one when asked (a verifier vouches only for an epoch whose probe round passed).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flownet.core.receipts import MarketDomain, Order, Receipt
from flownet.errors import ProtocolError, TunnelError
from flownet.tunnel import frames as fr
from flownet.tunnel import socks5
from flownet.tunnel.mux import CloseReason, Session, Stream
from flownet.tunnel.payment import ReceiptSigner, ServiceProofSigner
from flownet.tunnel.tls import CertCheck, Identity, TlsLink, make_context

__all__ = ["ClientConfig", "ClientTunnel", "ReceiptLog"]

log = logging.getLogger("flownet.client")

MIB = 1 << 20

_SOCKS_CODE = {
    fr.OpenStatus.NOT_ALLOWED: socks5.ReplyCode.NOT_ALLOWED,
    fr.OpenStatus.HOST_UNREACHABLE: socks5.ReplyCode.HOST_UNREACHABLE,
    fr.OpenStatus.CONNECTION_REFUSED: socks5.ReplyCode.CONNECTION_REFUSED,
}


class ReceiptLog:
    """The latest receipt the client signed per order (SQLite), so a restart continues the cumulative count."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS signed (order_id TEXT PRIMARY KEY, cumulative_bytes TEXT NOT NULL,"
            " cumulative_amount TEXT NOT NULL, signature BLOB NOT NULL, signed_at REAL NOT NULL) WITHOUT ROWID"
        )

    def latest(self, order_id: bytes) -> Receipt | None:
        row = self._conn.execute(
            "SELECT cumulative_bytes, cumulative_amount FROM signed WHERE order_id = ?", ("0x" + order_id.hex(),)
        ).fetchone()
        return Receipt(order_id, int(row[0]), int(row[1])) if row else None

    def record(self, receipt: Receipt, signature: bytes) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO signed VALUES (?, ?, ?, ?, ?)",
            (
                "0x" + receipt.order_id.hex(),
                str(receipt.cumulative_bytes),
                str(receipt.cumulative_amount),
                signature,
                time.time(),
            ),
        )

    def close(self) -> None:
        self._conn.close()


@dataclass
class ClientConfig:
    identity: Identity
    order: Order
    domain: MarketDomain
    signer: ReceiptSigner
    provider_host: str
    provider_port: int
    provider_check: CertCheck
    receipts: ReceiptLog
    listen_host: str = "127.0.0.1"
    listen_port: int = 1080
    receipt_interval: int = 4 * MIB
    settle_delay: float = 0.05  # seconds of quiet after which the traffic so far is paid
    connect_timeout: float = 10.0
    pay: bool = True  # False only in tests: a client that stops paying
    # ServiceProofs for the SlashingManager (None: none are sent); both must be set for the feature
    proofs: ServiceProofSigner | None = None
    epoch_seconds: int | None = None
    auto_proofs: bool = True  # False: only the proofs `ClientTunnel.vouch` is asked to send
    clock: Callable[[], float] = time.time  # the chain's epochs are unix time // epoch_seconds


class ClientStream(Stream):
    """A SOCKS5 connection: greeting, CONNECT, then a tunnelled stream."""

    def __init__(self, tunnel: ClientTunnel) -> None:
        # joins a session once CONNECT arrives; the provider grants its first window with the OPEN's answer
        super().__init__(None, 0, send_credit=0)  # type: ignore[arg-type]
        self.tunnel = tunnel
        self.state = "greeting"
        self.head = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.state == "open":
            self.session.local_data(self, data)
            return
        self.head += data
        try:
            self._negotiate()
        except ProtocolError as exc:
            log.info("SOCKS client refused: %s", exc)
            code = exc.reply_code if exc.reply_code is not None else socks5.ReplyCode.GENERAL_FAILURE
            self._refuse(code, greeting=self.state == "greeting")

    def _negotiate(self) -> None:
        if self.state == "greeting":
            parsed = socks5.parse_greeting(bytes(self.head))
            if isinstance(parsed, socks5.NeedMore):
                return
            greeting, used = parsed
            del self.head[:used]
            method = socks5.choose_method(greeting)
            self.write_local(socks5.method_selection(method))
            if method == socks5.METHOD_NO_ACCEPTABLE:
                self.close_local()
                return
            self.state = "request"
        if self.state == "request":
            parsed_request = socks5.parse_request(bytes(self.head))
            if isinstance(parsed_request, socks5.NeedMore):
                return
            request, used = parsed_request
            del self.head[:used]
            self.state = "opening"
            assert self.transport is not None
            self.transport.pause_reading()
            self.reading = False
            self.tunnel.request(self, request)

    def _refuse(self, code: int, greeting: bool = False) -> None:
        if self.transport is not None:
            reply = socks5.method_selection(code) if greeting else socks5.build_reply(code)
            self.transport.write(reply)
        self.state = "refused"
        self.close_local()

    def eof_received(self) -> bool:
        if self.state == "open":
            return super().eof_received()
        self.close_local()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state == "open":
            super().connection_lost(exc)
        else:
            self.transport = None
            self.state = "closed"


class ClientSession(Session):
    def __init__(self, tunnel: ClientTunnel) -> None:
        super().__init__()
        self.tunnel = tunnel
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # OPENs awaiting the provider's answer: stream, request, timeout
        self.opening: dict[int, tuple[ClientStream, socks5.Request, asyncio.TimerHandle]] = {}
        self.next_id = 1

    def on_frame(self, frame: fr.Frame) -> None:
        if frame.stream_id == 0 and isinstance(frame, fr.Window):
            if not self.ready.done():  # the provider accepted our certificate
                self.ready.set_result(None)
            return
        if not self.ready.done():
            raise ProtocolError(f"{type(frame).__name__} frame before the provider accepted the session")
        super().on_frame(frame)

    def on_down(self, error: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(error or TunnelError("the provider closed the connection"))
        for stream_id in list(self.opening):
            self.tunnel.opened(self, stream_id, fr.OpenStatus.GENERAL_FAILURE)
        if self.tunnel.session is self:
            self.tunnel.session = None
        if error is not None and self.ready.done() and self.ready.exception() is None:
            log.warning("tunnel session to the provider ended: %s", error)

    def on_sent(self, stream: Stream, size: int) -> None:
        stream.bytes_up += size
        self.tunnel.count(size)

    def on_received(self, stream: Stream, size: int) -> None:
        stream.bytes_down += size
        self.tunnel.count(size)

    def on_stream_end(self, stream: Stream) -> None:
        self.tunnel.settle_soon()

    def on_reset_by_peer(self, stream: Stream, reason: int) -> None:
        name = CloseReason(reason).name if reason in CloseReason._value2member_map_ else str(reason)
        log.info("provider closed stream %d: %s", stream.id, name)
        # acknowledge the reset: nothing more comes on this stream, so the provider can release its window
        self.send(fr.Close(stream.id, CloseReason.RESET))

    def on_unknown(self, frame: fr.Data | fr.Window | fr.Close) -> None:
        opening = self.opening.get(frame.stream_id)
        if opening is not None and isinstance(frame, fr.Window):  # the first window comes before the answer
            stream = opening[0]
            stream.send_credit += frame.credit
            if stream.send_credit > 1 << 31:
                raise ProtocolError(f"stream {frame.stream_id}: the provider granted more than 2 GiB of credit")

    def on_control(self, frame: fr.Frame) -> None:
        if isinstance(frame, fr.OpenResult):
            self.tunnel.opened(self, frame.stream_id, frame.status)
        elif isinstance(frame, fr.ReceiptAck):
            self.tunnel.acknowledged = max(self.tunnel.acknowledged, frame.cumulative_amount)
        elif isinstance(frame, fr.Meter):
            if frame.order_id != self.tunnel.order_id:
                raise ProtocolError(f"METER for order 0x{frame.order_id.hex()}, not this session's order")
            self.tunnel.provider_metered = frame.metered_bytes
            self.tunnel.stats["meters"] += 1
        else:
            raise ProtocolError(f"unexpected {type(frame).__name__} frame from the provider")


class ClientTunnel:
    """The SOCKS5 listener, the session to the provider, and the receipts."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.order_id = config.order.order_id
        self.session: ClientSession | None = None
        self._connecting: asyncio.Lock | None = None
        self._server: asyncio.Server | None = None
        self._settle: asyncio.TimerHandle | None = None
        self._quiet: asyncio.TimerHandle | None = None
        self._quiet_mark = 0
        self.context = make_context(config.identity, config.provider_check, server=False)
        last = config.receipts.latest(self.order_id)
        self.total = last.cumulative_bytes if last else 0  # bytes both ways, all sessions, this order
        self.signed_bytes = self.total
        self.signed_amount = last.cumulative_amount if last else 0
        self.acknowledged = 0
        self.provider_metered: int | None = None  # the provider's latest METER count for the order
        self.exhausted_warned = False
        self.stats = {"streams": 0, "refused": 0, "receipts": 0, "meters": 0, "proofs": 0}
        self.proving = config.proofs is not None and bool(config.epoch_seconds) and config.auto_proofs
        self.epoch_bytes: dict[int, int] = {}  # bytes carried per SlashingManager epoch (this run)
        self.proved: dict[int, int] = {}  # per epoch, the bytes of the last proof sent

    async def start(self) -> None:
        self._connecting = asyncio.Lock()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientStream(self), self.config.listen_host, self.config.listen_port, backlog=1024
        )
        self.config.listen_port = self._server.sockets[0].getsockname()[1]
        log.info(
            "SOCKS5 on %s:%d, tunnelling to %s:%d for order 0x%s",
            self.config.listen_host,
            self.config.listen_port,
            self.config.provider_host,
            self.config.provider_port,
            self.order_id.hex(),
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None
        self.settle()
        self.prove()
        session = self.session
        if session is not None:
            for stream in list(session.streams.values()):
                session.reset(stream, CloseReason.SHUTDOWN)
            session.flush()
            await asyncio.sleep(0.05)  # let the final receipt reach the provider
            if session.link is not None:
                session.link.close()

    async def connect(self) -> ClientSession:
        """The live session to the provider, opening one if needed."""
        assert self._connecting is not None
        async with self._connecting:
            if self.session is not None and not self.session.closed:
                return self.session
            session = ClientSession(self)
            loop = asyncio.get_running_loop()
            try:
                await asyncio.wait_for(
                    loop.create_connection(
                        lambda: TlsLink(self.context, session, server=False),
                        self.config.provider_host,
                        self.config.provider_port,
                    ),
                    self.config.connect_timeout,
                )
                await asyncio.wait_for(session.ready, self.config.connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise TunnelError(
                    f"cannot reach the provider at {self.config.provider_host}:{self.config.provider_port}: "
                    f"{exc or type(exc).__name__}"
                ) from None
            log.info("tunnel session to %s:%d up", self.config.provider_host, self.config.provider_port)
            self.session = session
            return session

    def request(self, stream: ClientStream, request: socks5.Request) -> None:
        """A SOCKS CONNECT arrived: send the OPEN now if the session is up (no task, no extra loop turn)."""
        session = self.session
        if session is not None and not session.closed and session.ready.done():
            self._send_open(session, stream, request)
        else:
            asyncio.get_running_loop().create_task(self.open(stream, request))

    async def open(self, stream: ClientStream, request: socks5.Request) -> None:
        """Connect the session first (the first CONNECT, or after the session dropped), then open."""
        try:
            session = await self.connect()
        except TunnelError as exc:
            log.warning("%s", exc)
            self.stats["refused"] += 1
            stream._refuse(socks5.ReplyCode.GENERAL_FAILURE)
            return
        if stream.transport is None:  # the SOCKS client gave up meanwhile
            return
        self._send_open(session, stream, request)

    def _send_open(self, session: ClientSession, stream: ClientStream, request: socks5.Request) -> None:
        stream_id = session.next_id
        session.next_id += 2
        stream.session = session
        stream.id = stream_id
        timer = asyncio.get_running_loop().call_later(
            self.config.connect_timeout + 5, self.opened, session, stream_id, fr.OpenStatus.GENERAL_FAILURE
        )
        session.opening[stream_id] = (stream, request, timer)
        session.send(fr.Open(stream_id, self.order_id, request.port, request.host))
        session.flush()

    def opened(self, session: ClientSession, stream_id: int, status: int) -> None:
        """The provider answered an OPEN (or it timed out, or the session ended): answer the SOCKS client."""
        entry = session.opening.pop(stream_id, None)
        if entry is None:
            return
        stream, request, timer = entry
        timer.cancel()
        if status != fr.OpenStatus.OK:
            name = fr.OpenStatus(status).name
            log.info("CONNECT %s:%d refused by the provider: %s", request.host, request.port, name)
            self.stats["refused"] += 1
            stream._refuse(_SOCKS_CODE.get(fr.OpenStatus(status), socks5.ReplyCode.GENERAL_FAILURE))
            return
        if stream.transport is None or session.closed:
            if not session.closed:
                session.streams[stream_id] = stream
                session.reset(stream, CloseReason.RESET)
            return
        self.stats["streams"] += 1
        session.streams[stream_id] = stream
        stream.state = "open"
        stream.write_local(socks5.build_reply(socks5.ReplyCode.SUCCEEDED))
        if stream.head:  # bytes the SOCKS client sent before our reply
            early, stream.head = bytes(stream.head), bytearray()
            session.local_data(stream, early)
        stream.reading = False
        session.update_reading(stream)

    # payment

    def epoch(self) -> int:
        assert self.config.epoch_seconds
        return int(self.config.clock()) // self.config.epoch_seconds

    def count(self, size: int) -> None:
        self.total += size
        if self.proving:
            epoch = self.epoch()
            if epoch not in self.epoch_bytes and self.epoch_bytes:
                self.epoch_bytes[epoch] = size
                self.prove()  # the epoch rolled over: prove the ones before
            else:
                self.epoch_bytes[epoch] = self.epoch_bytes.get(epoch, 0) + size
        if self.total - self.signed_bytes >= self.config.receipt_interval:
            self.pay()
        elif self._quiet is None:
            self._quiet_mark = self.total
            self._quiet = asyncio.get_running_loop().call_later(self.config.settle_delay, self._when_quiet)

    def _when_quiet(self) -> None:
        """Pay once traffic pauses for settle_delay (a provider holding the order is waiting for exactly this)."""
        self._quiet = None
        if self.total != self._quiet_mark:  # still flowing: look again later
            self._quiet_mark = self.total
            self._quiet = asyncio.get_running_loop().call_later(self.config.settle_delay, self._when_quiet)
        else:
            if self.total > self.signed_bytes:
                self.pay()
            self.prove()

    def settle_soon(self) -> None:
        if self._settle is None:
            self._settle = asyncio.get_running_loop().call_later(self.config.settle_delay, self.settle)

    def settle(self) -> None:
        """Pay for everything that flowed so far."""
        self._settle = None
        if self.total > self.signed_bytes:
            self.pay()
        self.prove()

    def prove(self) -> None:
        """Sign and send a ServiceProof for each epoch whose bytes have grown since its last proof."""
        session = self.session
        proofs = self.config.proofs
        if not self.proving or proofs is None or session is None or session.closed:
            return
        current = self.epoch()
        sent = False
        for epoch, carried in sorted(self.epoch_bytes.items()):
            if carried > self.proved.get(epoch, 0):
                signature = proofs.sign(self.order_id, epoch, carried)
                session.send(fr.ServiceProofFrame(0, self.order_id, epoch, carried, signature))
                self.proved[epoch] = carried
                self.stats["proofs"] += 1
                sent = True
                log.debug("service proof: order 0x%s… epoch %d, %d bytes", self.order_id.hex()[:12], epoch, carried)
        for epoch in [e for e in self.epoch_bytes if e < current and self.proved.get(e) == self.epoch_bytes[e]]:
            del self.epoch_bytes[epoch]  # proved and over: nothing more can flow in it
            self.proved.pop(epoch, None)
        if sent:
            session.flush()

    def vouch(self, epoch: int, bytes_served: int) -> None:
        """Sign one ServiceProof(order, `epoch`, `bytes_served`), send it to the provider and flush.

        For a client with automatic proofs off (`auto_proofs=False`) that decides itself which epochs it
        vouches for. TunnelError if there is no proof signer, nothing to prove or no live session.
        """
        proofs = self.config.proofs
        if proofs is None:
            raise TunnelError(f"cannot vouch for epoch {epoch}: this client has no service proof signer")
        if bytes_served <= 0:
            raise TunnelError(f"cannot vouch for epoch {epoch} with {bytes_served} bytes served: it must be above 0")
        session = self.session
        if session is None or session.closed:
            raise TunnelError(f"cannot vouch for epoch {epoch}: no live session to the provider")
        signature = proofs.sign(self.order_id, epoch, bytes_served)
        session.send(fr.ServiceProofFrame(0, self.order_id, epoch, bytes_served, signature))
        session.flush()
        self.stats["proofs"] += 1

    def pay(self) -> None:
        """Sign and send a receipt for all bytes so far (capped by the deposit)."""
        session = self.session
        if not self.config.pay or session is None or session.closed:
            return
        order = self.config.order
        amount = order.max_amount(self.total)
        if amount <= self.signed_amount:
            if self.signed_amount >= order.deposit and not self.exhausted_warned:
                self.exhausted_warned = True
                log.warning("order 0x%s… is exhausted: the deposit is spent", self.order_id.hex()[:12])
            self.signed_bytes = self.total  # nothing more to pay for these bytes (rounding, or no deposit left)
            return
        receipt = Receipt(self.order_id, self.total, amount)
        signature = self.config.signer.sign(receipt)
        self.config.receipts.record(receipt, signature)
        self.signed_bytes, self.signed_amount = self.total, amount
        self.stats["receipts"] += 1
        session.send(fr.ReceiptFrame(0, self.order_id, receipt.cumulative_bytes, amount, signature))
        session.flush()


def provider_identity_check(order: Order, chain_id: int, registered: Callable[[bytes], bool]) -> CertCheck:
    """A check for the provider's certificate: it names the order's provider on this chain, is in its
    validity period, and `registered(cert_hash)` (the registry, or a local index) says it is valid."""
    from cryptography import x509

    from flownet.pki import inspect

    def check(der: bytes) -> str | None:
        try:
            info = inspect(x509.load_der_x509_certificate(der))
        except Exception as exc:
            return f"the provider's certificate is unreadable: {exc}"
        if info.chain_id != chain_id:
            return f"the provider's certificate is for chain {info.chain_id}, not {chain_id}"
        if info.wallet != order.provider:
            return f"the certificate names {info.wallet}, not the order's provider {order.provider}"
        now = time.time()
        if not info.not_before <= now < info.not_after:
            return "the provider's certificate is outside its validity period"
        if not registered(info.cert_hash):
            return f"the provider's certificate 0x{info.cert_hash.hex()} is not registered and valid on chain"
        return None

    return check
