"""Streams multiplexed over one TLS link, with per-stream flow control, shared by client and provider.

A `Stream` is the asyncio protocol of one local TCP connection (on the client: the SOCKS connection
from curl or a browser; on the provider: the connection to the destination). A `Session` owns the
TLS link and the streams on it: bytes read from a stream's socket go out as DATA frames, DATA frames
from the peer are written to the stream's socket.

Flow control is per stream, in both directions, like HTTP/2: each side may send at most the bytes
the peer granted with WINDOW frames and a side grants only bytes it has handed to a socket that is
not backed up — so one slow destination never stalls the link or the other streams. A stream starts
with `WINDOW` bytes towards the client; towards the provider it starts with none, and the provider
grants its first window (from the order's credit) in a WINDOW frame just before the OPEN's answer.
When the link itself backs up, every stream stops reading. A subclass may also hold a stream (the
provider does while its order's payment is overdue): it then neither reads its socket nor grants
window.

CLOSE with reason 0 is an end-of-file in one direction (half-close); any other reason resets the
stream at once. A subclass may bound what this side sends beyond flow control (`sendable`: the
provider sends only what the order's credit allows) and decide what a frame for a stream it does not
know means (`on_unknown`: the client ignores them; for the provider most are protocol violations).
"""

from __future__ import annotations

import asyncio
import logging
from enum import IntEnum
from typing import cast

from flownet.errors import ProtocolError, TunnelError
from flownet.tunnel import frames as fr
from flownet.tunnel.tls import TlsLink

__all__ = ["WINDOW", "CloseReason", "Session", "Stream"]

log = logging.getLogger(__name__)

#: Bytes a side may have in flight on one stream before the peer acknowledges them.
WINDOW = 1 << 20
#: Acknowledge once this many bytes have been delivered (a quarter window keeps the pipe full).
ACK_THRESHOLD = WINDOW // 4
#: Cap on one DATA frame, to keep frames interleaved fairly between streams.
CHUNK = fr.MAX_PAYLOAD
#: What `Session.sendable` returns when only flow control limits a stream.
UNLIMITED = 1 << 62


class CloseReason(IntEnum):
    EOF = 0
    RESET = 1
    PAYMENT_REQUIRED = 2
    ORDER_ENDED = 3
    CERT_REVOKED = 4
    PROTOCOL_ERROR = 5
    SHUTDOWN = 6


class Stream(asyncio.BaseProtocol):
    """One tunnelled TCP connection: the local socket's protocol, and its state on the link.

    A plain protocol (`data_received`) without being an `asyncio.Protocol`, so that a subclass can be a
    `BufferedProtocol` that decides how much each read may take (uvloop reads into a buffer only for a
    protocol that is not an `asyncio.Protocol`).
    """

    def __init__(
        self, session: Session, stream_id: int, send_credit: int = WINDOW, recv_allowance: int = WINDOW
    ) -> None:
        self.session = session
        self.id = stream_id
        self.transport: asyncio.Transport | None = None
        self.send_credit = send_credit  # bytes we may still send to the peer
        self.recv_allowance = recv_allowance  # bytes the peer may still send us
        self.unacked = 0  # bytes delivered to our socket, not yet acknowledged to the peer
        self.pending = bytearray()  # bytes read from our socket that wait for credit
        self.outq: list[bytes | memoryview] = []  # bytes from the peer for our socket, written once per batch
        self.local_eof = False  # our socket said EOF
        self.sent_close = False
        self.peer_eof = False
        self.write_blocked = False  # our socket's write buffer is above its high-water mark
        self.reading = True
        self.done = False
        self.reset_sent = False  # this side ended the stream with a reset (the peer may still have DATA in flight)
        self.bytes_up = 0  # towards the destination (client -> provider)
        self.bytes_down = 0

    # asyncio.Protocol: the local socket

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio.Transport
        tcp.set_write_buffer_limits(high=WINDOW // 2)
        self.transport = tcp

    def data_received(self, data: bytes) -> None:
        self.session.local_data(self, data)

    def eof_received(self) -> bool:
        self.local_eof = True
        self.session.flush_pending(self)
        return True  # keep the socket open for the other direction

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.done:
            if self.sent_close and self.peer_eof:
                self.session.finish(self)
            else:
                self.session.reset(self, CloseReason.RESET)

    def pause_writing(self) -> None:
        self.write_blocked = True

    def resume_writing(self) -> None:
        self.write_blocked = False
        self.session.acknowledge(self)

    # helpers

    def set_reading(self, on: bool) -> None:
        if on == self.reading or self.transport is None:
            return
        self.reading = on
        if on:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    def write_local(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def queue_local(self, data: bytes | memoryview) -> bool:
        """Queue bytes for the socket, written with the rest of the batch by `flush_local`; True if first."""
        self.outq.append(data)
        return len(self.outq) == 1

    def flush_local(self) -> None:
        """Write the queued bytes in one vectored write (no copy, one system call)."""
        if self.outq:
            out, self.outq = self.outq, []
            if self.transport is not None:
                self.transport.writelines(out)

    def close_local(self, abort: bool = False) -> None:
        transport, self.transport = self.transport, None
        if transport is not None:
            if abort:
                transport.abort()
            else:
                transport.close()


class Session:
    """The streams on one TLS link. Subclasses add opening streams, metering and payment."""

    #: True if this side numbers its streams with odd ids (the client opens streams).
    max_streams = 4096

    def __init__(self) -> None:
        self.link: TlsLink | None = None
        self.streams: dict[int, Stream] = {}
        self.decoder = fr.FrameDecoder()
        self.link_blocked = False
        self.closed = False
        self._out: list[bytes | memoryview] = []
        self._touched: list[Stream] = []  # streams with bytes queued for their socket in this batch

    # LinkHandler

    def link_up(self, link: TlsLink, peer_der: bytes) -> None:
        self.link = link

    def link_data(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except ProtocolError as exc:
            error = exc
            try:
                for frame in exc.completed:
                    self.on_frame(cast(fr.Frame, frame))
            except ProtocolError as first:  # a frame before the undecodable bytes broke the protocol first
                error = first
            self.on_violation(error)
            self.fail(TunnelError(f"protocol error from the peer: {error}"))
            return
        try:
            for frame in frames:
                if self.closed:
                    return
                try:
                    self.on_frame(frame)
                except ProtocolError as exc:
                    self.on_violation(exc)
                    self.fail(TunnelError(f"protocol error from the peer: {exc}"))
                    return
        finally:
            touched, self._touched = self._touched, []
            for stream in touched:
                stream.flush_local()
        self.flush()

    def link_down(self, error: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        streams = list(self.streams.values())
        self.streams.clear()
        for stream in streams:
            stream.done = True
            stream.pending.clear()
            stream.outq.clear()
            stream.close_local(abort=error is not None)
            self.on_stream_end(stream)
        self.on_down(error)

    def link_pause_writing(self) -> None:
        self.link_blocked = True
        for stream in self.streams.values():
            stream.set_reading(False)

    def link_resume_writing(self) -> None:
        self.link_blocked = False
        for stream in list(self.streams.values()):
            self.update_reading(stream)

    # frames out (batched: one TLS write per event-loop callback)

    def send(self, frame: fr.Frame) -> None:
        self._out.append(fr.encode(frame))

    def send_data(self, stream: Stream, data: bytes | memoryview) -> None:
        view = memoryview(data)
        header = fr.FrameType.DATA.to_bytes(1, "big") + stream.id.to_bytes(4, "big")
        for start in range(0, len(view), CHUNK):
            part = view[start : start + CHUNK]
            self._out.append(header + len(part).to_bytes(4, "big"))
            self._out.append(part)  # joined without copying it first

    def flush(self) -> None:
        if self._out and self.link is not None and not self.closed:
            out, self._out = self._out, []
            self.link.write(b"".join(out))

    # the local side of streams

    def local_data(self, stream: Stream, data: bytes) -> None:
        if stream.done:
            return
        if stream.pending or len(data) > stream.send_credit or len(data) > self.sendable(stream):
            stream.pending += data
            self.flush_pending(stream)
        else:
            self._send_stream_data(stream, data)
            self.update_reading(stream)
        self.flush()

    def flush_pending(self, stream: Stream) -> None:
        """Send what credit allows of the stream's pending bytes, then its EOF if the socket said so."""
        if stream.done:
            return
        if stream.pending and stream.send_credit > 0 and not self.is_held(stream):
            n = min(len(stream.pending), stream.send_credit, self.sendable(stream))
            if n > 0:
                chunk = bytes(stream.pending[:n])
                del stream.pending[:n]
                self._send_stream_data(stream, chunk)
        if stream.local_eof and not stream.pending and not stream.sent_close:
            stream.sent_close = True
            self.send(fr.Close(stream.id, CloseReason.EOF))
            if stream.peer_eof:
                self.finish(stream)
        self.update_reading(stream)
        self.flush()

    def _send_stream_data(self, stream: Stream, data: bytes) -> None:
        stream.send_credit -= len(data)
        self.send_data(stream, data)
        self.on_sent(stream, len(data))

    def update_reading(self, stream: Stream) -> None:
        stream.set_reading(
            not stream.done
            and not stream.local_eof
            and stream.send_credit > 0
            and not stream.pending
            and not self.link_blocked
            and not self.is_held(stream)
            and self.sendable(stream) > 0
        )

    def acknowledge(self, stream: Stream, force: bool = False) -> None:
        """Grant the peer credit for the bytes delivered to our socket, unless it is backed up or held."""
        if stream.done or stream.unacked == 0 or stream.write_blocked or self.is_held(stream):
            return
        if stream.unacked >= ACK_THRESHOLD or force:
            credit, stream.unacked = stream.unacked, 0
            stream.recv_allowance += credit
            self.send(fr.Window(stream.id, credit))
            self.flush()

    # frames in

    def on_frame(self, frame: fr.Frame) -> None:
        if isinstance(frame, fr.Data):
            self.on_data(frame)
        elif isinstance(frame, fr.Window):
            stream = self.streams.get(frame.stream_id)
            if stream is None or stream.done:
                self.on_unknown(frame)
                return
            stream.send_credit += frame.credit
            if stream.send_credit > 1 << 31:
                raise ProtocolError(f"stream {frame.stream_id}: the peer granted more than 2 GiB of credit")
            self.flush_pending(stream)
        elif isinstance(frame, fr.Close):
            self.on_close(frame)
        else:
            self.on_control(frame)

    def on_data(self, frame: fr.Data) -> None:
        stream = self.streams.get(frame.stream_id)
        if stream is None or stream.done:
            self.on_unknown(frame)  # e.g. a stream this side reset while the DATA was in flight
            return
        size = len(frame.data)
        if stream.peer_eof:
            raise ProtocolError(f"stream {frame.stream_id}: DATA after the peer's EOF")
        stream.recv_allowance -= size
        if stream.recv_allowance < 0:
            raise ProtocolError(
                f"stream {frame.stream_id}: the peer sent {-stream.recv_allowance} bytes over its window"
            )
        if stream.queue_local(frame.data):
            self._touched.append(stream)
        stream.unacked += size
        self.on_received(stream, size)
        self.acknowledge(stream)

    def on_close(self, frame: fr.Close) -> None:
        stream = self.streams.get(frame.stream_id)
        if stream is None or stream.done:
            self.on_unknown(frame)
            return
        if frame.reason != CloseReason.EOF:
            self.drop(stream, abort=True)
            self.on_reset_by_peer(stream, frame.reason)
            return
        stream.peer_eof = True
        stream.flush_local()
        if stream.transport is not None and stream.transport.can_write_eof():
            stream.transport.write_eof()
        if stream.sent_close:
            self.finish(stream)

    def on_control(self, frame: fr.Frame) -> None:
        raise ProtocolError(f"unexpected {type(frame).__name__} frame")

    # ending streams

    def finish(self, stream: Stream) -> None:
        """Both directions ended cleanly."""
        self.drop(stream, abort=False)

    def reset(self, stream: Stream, reason: CloseReason) -> None:
        """End a stream now, telling the peer why."""
        if stream.done:
            return
        self.send(fr.Close(stream.id, reason))
        stream.reset_sent = True
        self.drop(stream, abort=reason != CloseReason.RESET)
        self.flush()

    def drop(self, stream: Stream, abort: bool) -> None:
        if stream.done:
            return
        stream.done = True
        stream.pending.clear()
        self.streams.pop(stream.id, None)
        if abort:
            stream.outq.clear()
        else:
            stream.flush_local()
        stream.close_local(abort=abort)
        self.on_stream_end(stream)

    def fail(self, error: Exception) -> None:
        """Tear the whole session down (protocol violation, revocation, shutdown)."""
        self.report_failure(error)
        if self.link is not None:
            self.flush()
            self.link.close()
        self.link_down(error)

    # hooks

    def report_failure(self, error: Exception) -> None:
        log.warning("closing the tunnel session: %s", error)

    def on_violation(self, error: ProtocolError) -> None:
        """The peer broke the protocol (the session is closed right after)."""

    def is_held(self, stream: Stream) -> bool:
        return False

    def sendable(self, stream: Stream) -> int:
        """Bytes this side may send on `stream` now, flow control aside."""
        return UNLIMITED

    def on_unknown(self, frame: fr.Data | fr.Window | fr.Close) -> None:
        """A frame for a stream that is not open here (ended while it was in flight): ignored."""

    def on_sent(self, stream: Stream, size: int) -> None:
        stream.bytes_up += size

    def on_received(self, stream: Stream, size: int) -> None:
        stream.bytes_down += size

    def on_stream_end(self, stream: Stream) -> None:
        pass

    def on_reset_by_peer(self, stream: Stream, reason: int) -> None:
        pass

    def on_down(self, error: Exception | None) -> None:
        pass
