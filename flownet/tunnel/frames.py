"""FlowNet's framed protocol, spoken inside the TLS connection between a client and a provider.

Every frame is ``type (1 byte) | stream id (4 bytes, big-endian) | length (4 bytes, big-endian) | payload``
with a payload of at most 64 KiB. Frames are frozen dataclasses that validate themselves (raising
ProtocolError), `encode` turns one into bytes and `FrameDecoder` turns a byte stream back into frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from flownet.core.receipts import Receipt
from flownet.errors import ProtocolError

__all__ = [
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "Close",
    "Data",
    "Frame",
    "FrameDecoder",
    "FrameType",
    "Meter",
    "Open",
    "OpenResult",
    "OpenStatus",
    "ReceiptAck",
    "ReceiptFrame",
    "ServiceProofFrame",
    "Window",
    "decode_payload",
    "encode",
]

HEADER_SIZE = 9
MAX_PAYLOAD = 64 * 1024
MAX_STREAM_ID = 0xFFFFFFFF
MAX_UINT256 = (1 << 256) - 1
SIGNATURE_SIZE = 65
RECEIPT_PAYLOAD_SIZE = 32 + 32 + 32 + SIGNATURE_SIZE
SERVICE_PROOF_PAYLOAD_SIZE = 32 + 8 + 32 + SIGNATURE_SIZE


class FrameType(IntEnum):
    OPEN = 1
    OPEN_RESULT = 2
    DATA = 3
    CLOSE = 4
    RECEIPT = 5
    RECEIPT_ACK = 6
    WINDOW = 7
    METER = 8
    SERVICE_PROOF = 9


class OpenStatus(IntEnum):
    """The status byte of an OPEN_RESULT: 0 is success, the rest say why a stream was refused."""

    OK = 0
    NOT_ALLOWED = 1  # private or otherwise forbidden destination
    ORDER_NOT_OPEN = 2
    ORDER_EXHAUSTED = 3
    PAYMENT_REQUIRED = 4  # credit window exceeded
    HOST_UNREACHABLE = 5
    CONNECTION_REFUSED = 6
    GENERAL_FAILURE = 7
    CERT_NOT_AUTHORISED = 8  # TLS client certificate not authorised for this order


def _check_stream_id(stream_id: int) -> None:
    if not 0 <= stream_id <= MAX_STREAM_ID:
        raise ProtocolError(f"stream id {stream_id} is outside 0..{MAX_STREAM_ID}")


def _check_uint(value: int, bits: int, what: str) -> None:
    if not 0 <= value < (1 << bits):
        raise ProtocolError(f"{what} {value} does not fit in an unsigned {bits}-bit field")


@dataclass(frozen=True)
class Open:
    """Open stream `stream_id` to `host`:`port`, paid by order `order_id`."""

    stream_id: int
    order_id: bytes
    port: int
    host: str

    def __post_init__(self) -> None:
        _check_stream_id(self.stream_id)
        if len(self.order_id) != 32:
            raise ProtocolError(f"OPEN order id must be 32 bytes (got {len(self.order_id)})")
        _check_uint(self.port, 16, "OPEN port")
        if not self.host.isascii():
            raise ProtocolError(f"OPEN host {self.host!r} is not ASCII (send IDNs punycoded)")
        if not 1 <= len(self.host) <= 255:
            raise ProtocolError(f"OPEN host must be 1..255 bytes (got {len(self.host)})")
        if "\x00" in self.host:
            raise ProtocolError(f"OPEN host {self.host!r} contains a NUL byte")

    def payload(self) -> bytes:
        host = self.host.encode("ascii")
        return self.order_id + self.port.to_bytes(2, "big") + bytes((len(host),)) + host


@dataclass(frozen=True)
class OpenResult:
    """The provider's answer to an OPEN."""

    stream_id: int
    status: int

    def __post_init__(self) -> None:
        _check_stream_id(self.stream_id)
        if self.status not in OpenStatus._value2member_map_:
            raise ProtocolError(f"OPEN_RESULT status {self.status} is not one of 0..{max(OpenStatus)}")

    def payload(self) -> bytes:
        return bytes((self.status,))


@dataclass(frozen=True)
class Data:
    """Raw stream bytes (from `FrameDecoder`, a read-only view of the bytes fed to it: no copy)."""

    stream_id: int
    data: bytes | memoryview

    def __post_init__(self) -> None:
        _check_stream_id(self.stream_id)
        if len(self.data) > MAX_PAYLOAD:
            raise ProtocolError(f"DATA payload of {len(self.data)} bytes exceeds the {MAX_PAYLOAD} byte maximum")

    def payload(self) -> bytes:
        return bytes(self.data)


@dataclass(frozen=True)
class Close:
    """Close a stream, with a one-byte reason."""

    stream_id: int
    reason: int = 0

    def __post_init__(self) -> None:
        _check_stream_id(self.stream_id)
        _check_uint(self.reason, 8, "CLOSE reason")

    def payload(self) -> bytes:
        return bytes((self.reason,))


@dataclass(frozen=True)
class ReceiptFrame:
    """A client's signed cumulative receipt (EIP-712 signature r || s || v; checked elsewhere)."""

    stream_id: int
    order_id: bytes
    cumulative_bytes: int
    cumulative_amount: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_stream_id(self.stream_id)
        if len(self.order_id) != 32:
            raise ProtocolError(f"RECEIPT order id must be 32 bytes (got {len(self.order_id)})")
        _check_uint(self.cumulative_bytes, 256, "RECEIPT cumulative bytes")
        _check_uint(self.cumulative_amount, 256, "RECEIPT cumulative amount")
        if len(self.signature) != SIGNATURE_SIZE:
            raise ProtocolError(f"RECEIPT signature must be {SIGNATURE_SIZE} bytes (got {len(self.signature)})")

    def payload(self) -> bytes:
        return (
            self.order_id
            + self.cumulative_bytes.to_bytes(32, "big")
            + self.cumulative_amount.to_bytes(32, "big")
            + self.signature
        )

    def receipt(self) -> Receipt:
        """The unsigned receipt this frame carries."""
        return Receipt(self.order_id, self.cumulative_bytes, self.cumulative_amount)


@dataclass(frozen=True)
class ReceiptAck:
    """The provider accepted receipts up to `cumulative_amount`."""

    stream_id: int
    cumulative_amount: int

    def __post_init__(self) -> None:
        _check_stream_id(self.stream_id)
        _check_uint(self.cumulative_amount, 256, "RECEIPT_ACK cumulative amount")

    def payload(self) -> bytes:
        return self.cumulative_amount.to_bytes(32, "big")


@dataclass(frozen=True)
class Window:
    """Flow control: `credit` more bytes may be sent on the stream."""

    stream_id: int
    credit: int

    def __post_init__(self) -> None:
        _check_stream_id(self.stream_id)
        _check_uint(self.credit, 32, "WINDOW credit")

    def payload(self) -> bytes:
        return self.credit.to_bytes(4, "big")


@dataclass(frozen=True)
class Meter:
    """The provider's own count of the bytes it metered for order `order_id` (both directions, cumulative).

    Sent by the provider with every RECEIPT_ACK and whenever a stream ends, so the client (or a
    verifier acting as one) can compare it with its own count: an honest provider's figure matches.
    """

    stream_id: int
    order_id: bytes
    metered_bytes: int

    def __post_init__(self) -> None:
        _check_stream_id(self.stream_id)
        if len(self.order_id) != 32:
            raise ProtocolError(f"METER order id must be 32 bytes (got {len(self.order_id)})")
        _check_uint(self.metered_bytes, 256, "METER metered bytes")

    def payload(self) -> bytes:
        return self.order_id + self.metered_bytes.to_bytes(32, "big")


@dataclass(frozen=True)
class ServiceProofFrame:
    """A client's signed EIP-712 ServiceProof: `bytes_served` (both directions) for order `order_id` in
    SlashingManager epoch `epoch`, which the provider keeps to rebut a dispute about that epoch."""

    stream_id: int
    order_id: bytes
    epoch: int
    bytes_served: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_stream_id(self.stream_id)
        if len(self.order_id) != 32:
            raise ProtocolError(f"SERVICE_PROOF order id must be 32 bytes (got {len(self.order_id)})")
        _check_uint(self.epoch, 64, "SERVICE_PROOF epoch")
        _check_uint(self.bytes_served, 256, "SERVICE_PROOF bytes served")
        if len(self.signature) != SIGNATURE_SIZE:
            raise ProtocolError(f"SERVICE_PROOF signature must be {SIGNATURE_SIZE} bytes (got {len(self.signature)})")

    def payload(self) -> bytes:
        return self.order_id + self.epoch.to_bytes(8, "big") + self.bytes_served.to_bytes(32, "big") + self.signature


Frame: TypeAlias = Open | OpenResult | Data | Close | ReceiptFrame | ReceiptAck | Window | Meter | ServiceProofFrame

_TYPE_OF: dict[type[Frame], FrameType] = {
    Open: FrameType.OPEN,
    OpenResult: FrameType.OPEN_RESULT,
    Data: FrameType.DATA,
    Close: FrameType.CLOSE,
    ReceiptFrame: FrameType.RECEIPT,
    ReceiptAck: FrameType.RECEIPT_ACK,
    Window: FrameType.WINDOW,
    Meter: FrameType.METER,
    ServiceProofFrame: FrameType.SERVICE_PROOF,
}


def encode(frame: Frame) -> bytes:
    """The wire bytes of `frame`: header then payload."""
    payload = frame.payload()
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"frame payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD} byte maximum")
    header = bytes((_TYPE_OF[type(frame)],)) + frame.stream_id.to_bytes(4, "big") + len(payload).to_bytes(4, "big")
    return header + payload


def _exact(name: str, payload: bytes, size: int) -> None:
    if len(payload) != size:
        raise ProtocolError(f"{name} payload must be {size} bytes (got {len(payload)})")


def decode_payload(frame_type: int, stream_id: int, payload: bytes) -> Frame:
    """Build the frame of type `frame_type` from its payload, or raise ProtocolError."""
    if frame_type == FrameType.OPEN:
        if len(payload) < 35:
            raise ProtocolError(f"OPEN payload must be at least 35 bytes (got {len(payload)})")
        size = payload[34]
        _exact("OPEN", payload, 35 + size)
        raw = payload[35:]
        try:
            host = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ProtocolError(f"OPEN host {raw!r} is not ASCII") from None
        return Open(stream_id, payload[:32], int.from_bytes(payload[32:34], "big"), host)
    if frame_type == FrameType.OPEN_RESULT:
        _exact("OPEN_RESULT", payload, 1)
        return OpenResult(stream_id, payload[0])
    if frame_type == FrameType.DATA:
        return Data(stream_id, payload)
    if frame_type == FrameType.CLOSE:
        _exact("CLOSE", payload, 1)
        return Close(stream_id, payload[0])
    if frame_type == FrameType.RECEIPT:
        _exact("RECEIPT", payload, RECEIPT_PAYLOAD_SIZE)
        return ReceiptFrame(
            stream_id,
            payload[:32],
            int.from_bytes(payload[32:64], "big"),
            int.from_bytes(payload[64:96], "big"),
            payload[96:],
        )
    if frame_type == FrameType.RECEIPT_ACK:
        _exact("RECEIPT_ACK", payload, 32)
        return ReceiptAck(stream_id, int.from_bytes(payload, "big"))
    if frame_type == FrameType.WINDOW:
        _exact("WINDOW", payload, 4)
        return Window(stream_id, int.from_bytes(payload, "big"))
    if frame_type == FrameType.METER:
        _exact("METER", payload, 64)
        return Meter(stream_id, payload[:32], int.from_bytes(payload[32:], "big"))
    if frame_type == FrameType.SERVICE_PROOF:
        _exact("SERVICE_PROOF", payload, SERVICE_PROOF_PAYLOAD_SIZE)
        return ServiceProofFrame(
            stream_id,
            payload[:32],
            int.from_bytes(payload[32:40], "big"),
            int.from_bytes(payload[40:72], "big"),
            payload[72:],
        )
    raise ProtocolError(f"unknown frame type {frame_type:#04x}")


class FrameDecoder:
    """Incremental decoder: `feed` bytes as they arrive and iterate the frames each call completes.

    It never holds more than one header plus one maximal payload of undecoded bytes. After a
    ProtocolError the stream is unusable, and every later `feed` raises the same error.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Consume `data` and return the frames it completed, in order."""
        if self._error is not None:
            raise self._error
        view = memoryview(data)
        immutable = isinstance(data, bytes)  # a view into a bytearray could change under the frame
        done: list[Frame] = []
        try:
            while view:
                if not self._buf and len(view) >= HEADER_SIZE:
                    # Fast path: a frame that starts here; decode it straight from `data` if it is all there.
                    frame_type, length = view[0], int.from_bytes(view[5:9], "big")
                    if frame_type not in FrameType._value2member_map_:
                        raise ProtocolError(f"unknown frame type {frame_type:#04x}")
                    if length > MAX_PAYLOAD:
                        raise ProtocolError(f"frame payload length {length} exceeds the {MAX_PAYLOAD} byte maximum")
                    end = HEADER_SIZE + length
                    if len(view) >= end:
                        stream_id = int.from_bytes(view[1:5], "big")
                        if frame_type == FrameType.DATA and immutable:  # the payload stays a view: no copy
                            done.append(Data(stream_id, view[HEADER_SIZE:end]))
                        else:
                            done.append(decode_payload(frame_type, stream_id, bytes(view[HEADER_SIZE:end])))
                        view = view[end:]
                        continue
                need = self._needed()
                take = need - len(self._buf)
                self._buf += view[:take]
                view = view[take:]
                if len(self._buf) == need:
                    frame = self._complete()
                    if frame is not None:
                        done.append(frame)
        except ProtocolError as exc:
            exc.completed = tuple(done)
            self._error = exc
            self._buf.clear()
            raise
        return done

    def _needed(self) -> int:
        """Bytes of the current frame (header, or header plus payload once the header is known)."""
        if len(self._buf) < HEADER_SIZE:
            return HEADER_SIZE
        frame_type = self._buf[0]
        if frame_type not in FrameType._value2member_map_:
            raise ProtocolError(f"unknown frame type {frame_type:#04x}")
        length = int.from_bytes(self._buf[5:9], "big")
        if length > MAX_PAYLOAD:
            raise ProtocolError(f"frame payload length {length} exceeds the {MAX_PAYLOAD} byte maximum")
        return HEADER_SIZE + length

    def _complete(self) -> Frame | None:
        if len(self._buf) == HEADER_SIZE and self._needed() > HEADER_SIZE:
            return None  # header only: the payload follows
        buf = bytes(self._buf)
        self._buf.clear()
        return decode_payload(buf[0], int.from_bytes(buf[1:5], "big"), buf[HEADER_SIZE:])
