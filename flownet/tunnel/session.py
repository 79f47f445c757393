"""One client's session on the provider: its streams, their credit, its receipts and service proofs.

Every stream draws on its order's credit (flownet.tunnel.credit): the provider sends towards the
client only what the credit allows, reads from a destination only what it can send at once (a
`BufferedProtocol` sized by the credit, so nothing piles up in memory), and grants the client upload
window from the same credit — the first with the OPEN's answer, then as the destination takes the
bytes, doubling a stream's window when the client uses all of it.

Anything a client is not allowed to send ends the session with the reason (a protocol violation):
DATA for a stream that is not open (or past its window), stream ids that do not increase, frames for
streams never opened, a burst of OPENs for orders that are not its own. DATA may still arrive for a
stream the provider reset, up to the window it had granted: it is metered and dropped, and the
client's acknowledging CLOSE releases the rest.

What a session costs the provider is bounded: frames other than DATA are read within a rate (beyond
it, and while the client does not read what it is sent, the link is not read: TCP pushes back), an
OPEN that cannot be served is answered at once without a task, and receipts and service proofs wait
in a bounded backlog for their signature checks (flownet.tunnel.checks). A session that ends cancels
its OPENs and lookups and releases its streams and their credit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from cryptography import x509

from flownet.certstatus import lookup
from flownet.errors import ProtocolError, TunnelError
from flownet.pki import inspect
from flownet.tunnel import frames as fr
from flownet.tunnel.checks import Backlog
from flownet.tunnel.credit import OrderAccount
from flownet.tunnel.limits import TokenBucket
from flownet.tunnel.mux import WINDOW, CloseReason, Session, Stream
from flownet.tunnel.policy import DestinationRefused
from flownet.tunnel.tls import TlsLink

if TYPE_CHECKING:
    from flownet.tunnel.server import ProviderServer

__all__ = ["ProviderSession", "ProviderStream"]

log = logging.getLogger("flownet.provider")

#: Most bytes read from a destination at once, and the least (a read that finds no credit left).
READ_SIZE = 256 * 1024
MIN_READ = 4096
#: Bytes waiting to be sent to a client beyond which its frames are not read until it reads ours (an
#: honest client always reads; only answers to its own control frames could pile up past this).
WRITE_BACKLOG = 4 << 20

_scratch = threading.local()  # the read buffer of this thread's destination sockets


def _read_buffer() -> bytearray:
    buf: bytearray | None = getattr(_scratch, "buf", None)
    if buf is None:
        buf = _scratch.buf = bytearray(READ_SIZE)
    return buf


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class ProviderStream(Stream, asyncio.BufferedProtocol):
    """The connection to a destination; it reads only once the OPEN has been answered, and only what it can send."""

    def __init__(self, session: ProviderSession, stream_id: int, account: OrderAccount, target: int) -> None:
        super().__init__(session, stream_id, recv_allowance=0)  # the first window is granted with the answer
        self.session: ProviderSession = session
        self.account = account
        self.opened = False
        self.doomed = False  # a fault will reset this stream (flownet.tunnel.faults)
        self.target = target  # the upload window kept granted; doubles (up to WINDOW) when the client uses it all

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        self.reading = False  # asyncio and uvloop set TCP_NODELAY on TCP transports

    def get_buffer(self, sizehint: int) -> memoryview:
        room = min(self.send_credit, self.session.sendable(self), READ_SIZE)
        return memoryview(_read_buffer())[: max(room, MIN_READ)]

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(memoryview(_read_buffer())[:nbytes]))

    def data_received(self, data: bytes) -> None:
        faults = self.session.server.config.faults
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
        self.handshake_link: TlsLink | None = None  # until the handshake ends
        self.deadline: asyncio.TimerHandle | None = None  # the handshake's
        self.tasks: set[asyncio.Task[None]] = set()  # OPENs being served
        self.resets: OrderedDict[int, ProviderStream] = OrderedDict()  # reset by us, not yet acknowledged
        self.highest_id = 0  # the last stream id opened (they increase)
        limits = server.limits
        self.checks = Backlog(limits.pending_proofs_per_session)  # receipts and proofs waiting for a check
        self.bucket = TokenBucket(limits.verifications_per_second, limits.verification_burst)
        self.check_timer: asyncio.TimerHandle | None = None
        self.control = 0  # frames other than DATA in the batch being read
        self.control_rate = TokenBucket(limits.control_frames_per_second, limits.control_frame_burst)
        self.throttled: asyncio.TimerHandle | None = None
        self.foreign = TokenBucket(limits.foreign_opens_per_second, limits.foreign_open_burst)

    def link_up(self, link: TlsLink, peer_der: bytes) -> None:
        super().link_up(link, peer_der)
        self.server.handshake_over(self)
        info = inspect(x509.load_der_x509_certificate(peer_der))
        self.client, self.cert_hash, self.cert_not_after = info.wallet, info.cert_hash, info.not_after
        # the handshake checked that the wallet registered it
        record = lookup(self.server.index.conn, info.cert_hash, info.wallet)
        if record is not None:  # the wallet may have registered it for less than its own validity
            self.cert_not_after = min(self.cert_not_after, record.not_after)
        self.peer = link.peer_address
        refused = self.server.register(self)
        if refused is not None:
            self.fail(TunnelError(refused))
            return
        # TLS 1.3 clients finish their handshake before we judge their certificate: this first frame
        # (WINDOW on the control stream 0) tells the client it was accepted.
        self.send(fr.Window(0, 0))
        self.flush()
        self.server.logs.sessions.info(
            "client %s connected from %s (certificate 0x%s…)", self.client, self.peer, self.cert_hash.hex()[:12]
        )

    def on_down(self, error: Exception | None) -> None:
        for task in self.tasks:
            task.cancel()
        self.tasks.clear()
        self.server.slots -= len(self.opening)
        self.opening.clear()
        resets, self.resets = self.resets, OrderedDict()
        for stream in resets.values():
            self._release(stream)
        self.checks.clear()
        for timer in (self.check_timer, self.throttled):
            if timer is not None:
                timer.cancel()
        self.check_timer = self.throttled = None
        self.server.unregister(self, error)
        if self.client:
            self.server.logs.sessions.info("client %s disconnected%s", self.client, f": {error}" if error else "")

    # reading: control frames within their rate

    def link_data(self, data: bytes) -> None:
        super().link_data(data)
        if self.throttled is not None or self.closed or self.link is None:
            return
        wait = 0.0
        if self.control:
            count, self.control = self.control, 0
            self.control_rate.spend(count)
            wait = self.control_rate.wait()
        if self.link.write_backlog > WRITE_BACKLOG:
            wait = max(wait, 0.05)
        if wait > 0:  # the client waits: TCP pushes back, and nothing more of it is decoded meanwhile
            self.link.pause_reading()
            self.server.counters["sessions_throttled"] += 1
            self.throttled = asyncio.get_running_loop().call_later(wait, self._unthrottle)

    def _unthrottle(self) -> None:
        self.throttled = None
        if self.closed or self.link is None:
            return
        if self.link.write_backlog > WRITE_BACKLOG // 4:  # still not reading what we sent: look again later
            self.throttled = asyncio.get_running_loop().call_later(0.05, self._unthrottle)
            return
        self.link.resume_reading()

    def on_frame(self, frame: fr.Frame) -> None:
        if not isinstance(frame, fr.Data):
            self.control += 1
        super().on_frame(frame)

    def on_violation(self, error: ProtocolError) -> None:
        self.server.penalize(self)

    def report_failure(self, error: Exception) -> None:
        self.server.counters["sessions_failed"] += 1
        self.server.logs.violations.warning("closing the session of %s (%s): %s", self.client or "?", self.peer, error)

    # credit: what may flow now

    def is_held(self, stream: Stream) -> bool:
        return not isinstance(stream, ProviderStream) or not stream.opened or stream.account.held_since is not None

    def sendable(self, stream: Stream) -> int:
        if not isinstance(stream, ProviderStream) or not stream.opened:
            return 0
        account = stream.account
        if account.held_since is not None:
            return 0
        room = account.room
        if room <= 0:
            self.server.starve(account, stream)
            return 0
        return room

    def acknowledge(self, stream: Stream, force: bool = False) -> None:
        """Top the stream's upload window back up to its target, as far as the order's credit allows."""
        if self._grant(stream, force):
            self.flush()

    def _grant(self, stream: Stream, force: bool) -> bool:
        if stream.done or stream.write_blocked or self.is_held(stream):
            return False
        assert isinstance(stream, ProviderStream)
        want = stream.target - stream.recv_allowance
        if want <= 0 or (want < stream.target // 4 and not force):
            return False
        credit = min(want, stream.account.upload_room)
        if credit <= 0:
            self.server.starve(stream.account, stream)
            return False
        stream.unacked = 0
        stream.recv_allowance += credit
        stream.account.grant(credit)
        self.send(fr.Window(stream.id, credit))
        return True

    def _release(self, stream: ProviderStream) -> None:
        """The client can no longer use what is left of the stream's window."""
        if stream.recv_allowance > 0:
            stream.account.release(stream.recv_allowance)
            stream.recv_allowance = 0
            self.server.wake_soon(stream.account)

    # metering: on the provider, what we send goes down to the client, what we receive goes up

    def on_sent(self, stream: Stream, size: int) -> None:
        stream.bytes_down += size
        self._meter(stream, size)

    def on_received(self, stream: Stream, size: int) -> None:
        assert isinstance(stream, ProviderStream)
        stream.bytes_up += size
        stream.account.release(size)  # granted window, now used
        self._meter(stream, size)
        if stream.recv_allowance == 0 and stream.target < WINDOW:
            stream.target = min(WINDOW, 2 * stream.target)  # the client had to wait for window: give more

    def _meter(self, stream: Stream, size: int) -> None:
        assert isinstance(stream, ProviderStream)
        account = stream.account
        faults = self.server.config.faults
        account.carry(size if faults is None else faults.metered(size))
        if account.held_since is None and account.exhausted:
            self.server.hold(account)  # the deposit cannot pay for more, whatever the window

    def send_meter(self, account: OrderAccount) -> None:
        """Tell the client what this provider metered for the order so far."""
        if not self.closed:
            self.send(fr.Meter(0, account.order.order_id, account.metered))
            self.flush()

    def on_stream_end(self, stream: Stream) -> None:
        if not isinstance(stream, ProviderStream):
            return
        account = stream.account
        account.streams.discard(stream)
        account.starved.discard(stream)
        if stream.reset_sent and not stream.peer_eof and stream.recv_allowance > 0 and not self.closed:
            # DATA the client sent before it heard of the reset may still come: its window stays counted
            self.resets[stream.id] = stream
            while len(self.resets) > self.max_streams:
                self._release(self.resets.popitem(last=False)[1])  # a client that never acknowledges
        else:
            self._release(stream)
        if stream.opened:
            self.server.slots -= 1
            self.send_meter(account)

    def on_unknown(self, frame: fr.Data | fr.Window | fr.Close) -> None:
        stream_id = frame.stream_id
        reset = self.resets.get(stream_id)
        if reset is not None:
            if isinstance(frame, fr.Data):  # in flight when we reset it: metered, within its window, dropped
                size = len(frame.data)
                if size > reset.recv_allowance:
                    raise ProtocolError(f"stream {stream_id}: {size} bytes after its reset, past its window")
                reset.recv_allowance -= size
                reset.account.release(size)
                self._meter(reset, size)
            elif isinstance(frame, fr.Close):  # the client acknowledges the reset: nothing more will come
                del self.resets[stream_id]
                self._release(reset)
            return
        name = type(frame).__name__.upper()
        if stream_id in self.opening:
            raise ProtocolError(f"{name} for stream {stream_id} before its OPEN was answered")
        if isinstance(frame, fr.Data):
            raise ProtocolError(f"DATA for stream {stream_id}, which is not open")
        if not 0 < stream_id <= self.highest_id:
            raise ProtocolError(f"{name} for stream {stream_id}, which was never opened")
        # a WINDOW or CLOSE for a stream that ended: it crossed our own end of it

    # control frames

    def on_control(self, frame: fr.Frame) -> None:
        if isinstance(frame, fr.Open):
            if frame.stream_id == 0 or frame.stream_id in self.streams or frame.stream_id in self.opening:
                raise ProtocolError(f"OPEN for stream {frame.stream_id}, which is reserved or in use")
            if frame.stream_id <= self.highest_id:
                raise ProtocolError(f"OPEN for stream {frame.stream_id} after stream {self.highest_id}: ids increase")
            self.highest_id = frame.stream_id
            self._admit(frame)
        elif isinstance(frame, fr.ReceiptFrame | fr.ServiceProofFrame):
            self.server.checker.queue(self, frame)
        else:
            raise ProtocolError(f"unexpected {type(frame).__name__} frame from a client")

    def _answer(self, stream_id: int, status: fr.OpenStatus, why: str = "") -> None:
        if stream_id in self.opening:
            self.opening.discard(stream_id)
            self.server.slots -= 1
        if status != fr.OpenStatus.OK:
            self.server.logs.refusals.info("stream %d of %s refused: %s (%s)", stream_id, self.client, status.name, why)
        if not self.closed:
            self.send(fr.OpenResult(stream_id, status))
            self.flush()

    def _admit(self, frame: fr.Open) -> None:
        """Answer an OPEN that cannot be served at once; start serving one that can."""
        server = self.server
        status, why, account, foreign = server.admit(self, frame.order_id)
        if account is None:
            if foreign and not self.foreign.take():
                raise ProtocolError(f"too many OPENs for orders {self.client} cannot use (the last: {why})")
            self._answer(frame.stream_id, status, why)
            return
        failure = fr.OpenStatus.GENERAL_FAILURE
        if len(self.streams) + len(self.opening) >= self.max_streams:
            self._answer(frame.stream_id, failure, f"more than {self.max_streams} streams")
        elif server.wallet_streams(self.client) >= server.max_wallet_streams:
            self._answer(frame.stream_id, failure, f"more than {server.max_wallet_streams} streams for the wallet")
        elif server.slots >= server.max_streams_total:
            self._answer(frame.stream_id, failure, f"the provider has {server.max_streams_total} streams, its limit")
        else:
            self.opening.add(frame.stream_id)
            server.slots += 1
            task = asyncio.get_running_loop().create_task(self._open(frame, account))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _open(self, frame: fr.Open, account: OrderAccount) -> None:
        server = self.server
        stream = ProviderStream(self, frame.stream_id, account, server.initial_window)
        account.opening += 1
        try:
            connected = await self._connect(frame, stream)
        except asyncio.CancelledError:  # the session ended: a connection made meanwhile is dropped
            stream.close_local(abort=True)
            raise
        finally:
            account.opening -= 1
        if not connected:
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
        self.opening.discard(frame.stream_id)
        self._grant(stream, force=True)  # the stream's first upload window, just before the answer
        self.send(fr.OpenResult(frame.stream_id, fr.OpenStatus.OK))
        self.flush()
        self.update_reading(stream)

    async def _connect(self, frame: fr.Open, stream: ProviderStream) -> bool:
        """Resolve and connect the OPEN's destination; False (and the refusal answered) if it cannot be."""
        server = self.server
        loop = asyncio.get_running_loop()
        try:
            literal = _ip_literal(frame.host)
            if literal is not None:  # no resolver round trip for an address
                address = server.config.policy.check(literal)
            else:
                found = await server.resolver.resolve(self, self.client, frame.host, frame.port)
                address = server.config.policy.pick(found)
        except DestinationRefused as exc:
            self._answer(frame.stream_id, fr.OpenStatus.NOT_ALLOWED, str(exc))
            return False
        except (OSError, TimeoutError) as exc:
            self._answer(frame.stream_id, fr.OpenStatus.HOST_UNREACHABLE, f"cannot resolve {frame.host!r}: {exc}")
            return False
        try:
            async with asyncio.timeout(server.config.connect_timeout):  # no extra task, unlike wait_for
                await loop.create_connection(lambda: stream, str(address), frame.port)
        except ConnectionRefusedError as exc:
            self._answer(frame.stream_id, fr.OpenStatus.CONNECTION_REFUSED, str(exc))
            return False
        except (OSError, TimeoutError) as exc:
            self._answer(frame.stream_id, fr.OpenStatus.HOST_UNREACHABLE, str(exc) or type(exc).__name__)
            return False
        return True

    # receipts and service proofs
