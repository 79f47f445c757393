"""FlowNet tunnel frames: known answers, round trips and decoder robustness."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flownet.core.receipts import Receipt
from flownet.errors import ProtocolError
from flownet.tunnel.frames import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    Close,
    Data,
    Frame,
    FrameDecoder,
    FrameType,
    Meter,
    Open,
    OpenResult,
    OpenStatus,
    ReceiptAck,
    ReceiptFrame,
    ServiceProofFrame,
    Window,
    decode_payload,
    encode,
)

FAST = settings(max_examples=300, deadline=200)
ORDER = bytes(range(32))
SIG = bytes(range(65))


def header(frame_type: int, stream_id: int, length: int) -> bytes:
    return bytes((frame_type,)) + stream_id.to_bytes(4, "big") + length.to_bytes(4, "big")


def decode_all(data: bytes) -> list[Frame]:
    return FrameDecoder().feed(data)


# --- known answers ------------------------------------------------------------------------------


def test_type_and_status_values() -> None:
    assert [int(t) for t in FrameType] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert [int(s) for s in OpenStatus] == list(range(9))
    assert OpenStatus.PAYMENT_REQUIRED == 4 and OpenStatus.CERT_NOT_AUTHORISED == 8


def test_open_known_answer() -> None:
    frame = Open(7, ORDER, 443, "example.com")
    payload = ORDER + b"\x01\xbb" + b"\x0b" + b"example.com"
    assert encode(frame) == header(1, 7, len(payload)) + payload
    assert decode_all(encode(frame)) == [frame]


@pytest.mark.parametrize("host", ["10.0.0.1", "2001:db8::1", "a", "x" * 255])
def test_open_hosts(host: str) -> None:
    frame = Open(1, ORDER, 80, host)
    assert decode_all(encode(frame)) == [frame]


@pytest.mark.parametrize("status", list(range(9)))
def test_open_result_statuses(status: int) -> None:
    frame = OpenResult(3, status)
    assert encode(frame) == header(2, 3, 1) + bytes((status,))
    assert decode_all(encode(frame)) == [frame]


def test_data_close_window_ack_known_answers() -> None:
    assert encode(Data(1, b"hello")) == header(3, 1, 5) + b"hello"
    assert encode(Data(1, b"")) == header(3, 1, 0)
    assert encode(Close(0xFFFFFFFF, 2)) == header(4, 0xFFFFFFFF, 1) + b"\x02"
    assert encode(Window(9, 65536)) == header(7, 9, 4) + b"\x00\x01\x00\x00"
    assert encode(ReceiptAck(0, 10**18)) == header(6, 0, 32) + (10**18).to_bytes(32, "big")


def test_receipt_known_answer() -> None:
    frame = ReceiptFrame(0, ORDER, 1 << 30, 2 * 10**18, SIG)
    payload = ORDER + (1 << 30).to_bytes(32, "big") + (2 * 10**18).to_bytes(32, "big") + SIG
    assert len(payload) == 161
    assert encode(frame) == header(5, 0, 161) + payload
    assert decode_all(encode(frame)) == [frame]
    assert frame.receipt() == Receipt(ORDER, 1 << 30, 2 * 10**18)


def test_meter_known_answer() -> None:
    frame = Meter(0, ORDER, 3 * (1 << 20) + 7)
    payload = ORDER + (3 * (1 << 20) + 7).to_bytes(32, "big")
    assert encode(frame) == header(8, 0, 64) + payload
    assert decode_all(encode(frame)) == [frame]
    # the largest count a uint256 holds survives the round trip
    big = Meter(5, ORDER, (1 << 256) - 1)
    assert decode_all(encode(big)) == [big]


def test_service_proof_known_answer() -> None:
    frame = ServiceProofFrame(0, ORDER, 1_234_567, 5 * (1 << 20) + 3, SIG)
    payload = ORDER + (1_234_567).to_bytes(8, "big") + (5 * (1 << 20) + 3).to_bytes(32, "big") + SIG
    assert len(payload) == 137
    assert encode(frame) == header(9, 0, 137) + payload
    assert decode_all(encode(frame)) == [frame]
    extremes = ServiceProofFrame(7, ORDER, (1 << 64) - 1, (1 << 256) - 1, SIG)
    assert decode_all(encode(extremes)) == [extremes]


def test_meter_between_other_frames() -> None:
    batch = [ReceiptAck(0, 10**18), Meter(0, ORDER, 12345), Data(1, b"x"), Meter(0, ORDER, 12346)]
    raw = b"".join(encode(f) for f in batch)
    assert decode_all(raw) == batch
    # one byte at a time too
    decoder = FrameDecoder()
    out: list[Frame] = []
    for i in range(len(raw)):
        out.extend(decoder.feed(raw[i : i + 1]))
    assert out == batch


def test_max_payload_data() -> None:
    frame = Data(5, bytes(MAX_PAYLOAD))
    raw = encode(frame)
    assert len(raw) == HEADER_SIZE + MAX_PAYLOAD
    assert decode_all(raw) == [frame]


# --- invalid frames -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda: Data(1, bytes(MAX_PAYLOAD + 1)), "exceeds"),
        (lambda: Data(-1, b""), "stream id"),
        (lambda: Data(1 << 32, b""), "stream id"),
        (lambda: Open(1, b"short", 80, "a"), "order id"),
        (lambda: Open(1, ORDER, 65536, "a"), "port"),
        (lambda: Open(1, ORDER, 80, ""), "1..255"),
        (lambda: Open(1, ORDER, 80, "x" * 256), "1..255"),
        (lambda: Open(1, ORDER, 80, "a\x00b"), "NUL"),
        (lambda: Open(1, ORDER, 80, "é.com"), "ASCII"),
        (lambda: OpenResult(1, 9), "status 9"),
        (lambda: Close(1, 256), "CLOSE reason"),
        (lambda: ReceiptFrame(0, ORDER, -1, 0, SIG), "cumulative bytes"),
        (lambda: ReceiptFrame(0, ORDER, 0, 1 << 256, SIG), "cumulative amount"),
        (lambda: ReceiptFrame(0, ORDER, 0, 0, SIG[:64]), "signature"),
        (lambda: ReceiptFrame(0, ORDER[:31], 0, 0, SIG), "order id"),
        (lambda: ReceiptAck(0, -1), "RECEIPT_ACK"),
        (lambda: Window(0, 1 << 32), "WINDOW"),
        (lambda: Meter(0, ORDER, -1), "METER metered bytes"),
        (lambda: Meter(0, ORDER, 1 << 256), "METER metered bytes"),
        (lambda: Meter(0, ORDER[:31], 0), "METER order id"),
        (lambda: ServiceProofFrame(0, ORDER[:31], 1, 1, SIG), "SERVICE_PROOF order id"),
        (lambda: ServiceProofFrame(0, ORDER, -1, 1, SIG), "SERVICE_PROOF epoch"),
        (lambda: ServiceProofFrame(0, ORDER, 1 << 64, 1, SIG), "SERVICE_PROOF epoch"),
        (lambda: ServiceProofFrame(0, ORDER, 1, 1 << 256, SIG), "SERVICE_PROOF bytes served"),
        (lambda: ServiceProofFrame(0, ORDER, 1, 1, SIG[:64]), "SERVICE_PROOF signature"),
    ],
)
def test_invalid_frames_refused(make: Any, text: str) -> None:
    with pytest.raises(ProtocolError, match=text):
        make()


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (header(0, 1, 0), "unknown frame type 0x00"),
        (header(10, 1, 0), "unknown frame type 0x0a"),
        (header(9, 1, 0), "SERVICE_PROOF payload must be 137"),
        (header(9, 1, 136) + bytes(136), "SERVICE_PROOF payload must be 137"),
        (header(9, 1, 138) + bytes(138), "SERVICE_PROOF payload must be 137"),
        (header(8, 1, 0), "METER payload must be 64"),
        (header(8, 1, 63) + bytes(63), "METER payload must be 64"),
        (header(8, 1, 65) + bytes(65), "METER payload must be 64"),
        (header(3, 1, MAX_PAYLOAD + 1), "exceeds"),
        (header(3, 1, 0xFFFFFFFF), "exceeds"),
        (header(2, 1, 0), "OPEN_RESULT payload must be 1"),
        (header(2, 1, 1) + b"\x09", "status 9"),
        (header(4, 1, 2) + b"\x00\x00", "CLOSE payload"),
        (header(5, 1, 160) + bytes(160), "RECEIPT payload must be 161"),
        (header(6, 1, 31) + bytes(31), "RECEIPT_ACK payload"),
        (header(7, 1, 5) + bytes(5), "WINDOW payload"),
        (header(1, 1, 34) + bytes(34), "at least 35"),
        (header(1, 1, 36) + ORDER + b"\x00\x50\x02a", "OPEN payload must be 37"),
        (header(1, 1, 35) + ORDER + b"\x00\x50\x00", "1..255"),
        (header(1, 1, 36) + ORDER + b"\x00\x50\x01\x00", "NUL"),
        (header(1, 1, 36) + ORDER + b"\x00\x50\x01\xff", "ASCII"),
    ],
)
def test_malformed_streams(raw: bytes, text: str) -> None:
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError, match=text):
        decoder.feed(raw)
    # The decoder stays failed.
    with pytest.raises(ProtocolError, match=text):
        decoder.feed(encode(Data(1, b"ok")))


def test_oversized_header_refused_before_payload() -> None:
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError, match="exceeds"):
        decoder.feed(header(3, 1, MAX_PAYLOAD + 1))


def test_decode_payload_unknown_type() -> None:
    with pytest.raises(ProtocolError, match="unknown frame type 0x63"):
        decode_payload(99, 0, b"")


def test_header_only_then_payload() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(header(3, 4, 3)) == []
    assert decoder.buffered == HEADER_SIZE
    assert decoder.feed(b"ab") == []
    assert decoder.feed(b"c" + header(4, 4, 1)) == [Data(4, b"abc")]
    assert decoder.feed(b"\x00") == [Close(4, 0)]
    assert decoder.buffered == 0


# --- properties ---------------------------------------------------------------------------------

stream_ids = st.integers(0, 0xFFFFFFFF)
u256 = st.integers(0, (1 << 256) - 1)
ascii_hosts = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), min_size=1, max_size=255)

frames: st.SearchStrategy[Frame] = st.one_of(
    st.builds(Open, stream_ids, st.binary(min_size=32, max_size=32), st.integers(0, 0xFFFF), ascii_hosts),
    st.builds(OpenResult, stream_ids, st.sampled_from(list(OpenStatus)).map(int)),
    st.builds(Data, stream_ids, st.binary(max_size=2048)),
    st.builds(Close, stream_ids, st.integers(0, 255)),
    st.builds(
        ReceiptFrame,
        stream_ids,
        st.binary(min_size=32, max_size=32),
        u256,
        u256,
        st.binary(min_size=65, max_size=65),
    ),
    st.builds(ReceiptAck, stream_ids, u256),
    st.builds(Window, stream_ids, st.integers(0, 0xFFFFFFFF)),
    st.builds(Meter, stream_ids, st.binary(min_size=32, max_size=32), u256),
    st.builds(
        ServiceProofFrame,
        stream_ids,
        st.binary(min_size=32, max_size=32),
        st.integers(0, (1 << 64) - 1),
        u256,
        st.binary(min_size=65, max_size=65),
    ),
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _feed(data: bytes, cuts: list[int]) -> tuple[list[Frame], str | None, int]:
    """Frames decoded before any error, the error (if any) and the bytes left buffered."""
    decoder = FrameDecoder()
    out: list[Frame] = []
    for chunk in _chunks(data, cuts):
        try:
            out.extend(decoder.feed(chunk))
        except ProtocolError as exc:
            out.extend(exc.completed)  # type: ignore[arg-type]
            return out, str(exc), 0
        assert decoder.buffered <= HEADER_SIZE + MAX_PAYLOAD
    return out, None, decoder.buffered


@FAST
@given(frame=frames)
def test_round_trip(frame: Frame) -> None:
    raw = encode(frame)
    assert len(raw) == HEADER_SIZE + int.from_bytes(raw[5:9], "big")
    assert decode_all(raw) == [frame]
    assert decode_payload(raw[0], int.from_bytes(raw[1:5], "big"), raw[HEADER_SIZE:]) == frame


@FAST
@given(batch=st.lists(frames, max_size=8), cuts=st.lists(st.integers(0, 1 << 16), max_size=12))
def test_round_trip_any_chunking(batch: list[Frame], cuts: list[int]) -> None:
    data = b"".join(encode(f) for f in batch)
    assert _feed(data, cuts) == (batch, None, 0)


@FAST
@given(batch=st.lists(frames, min_size=1, max_size=4), data=st.data())
def test_truncated_stream_waits(batch: list[Frame], data: st.DataObject) -> None:
    raw = b"".join(encode(f) for f in batch)
    end = data.draw(st.integers(0, len(raw) - 1))
    decoded, error, buffered = _feed(raw[:end], [])
    assert error is None
    assert decoded == batch[: len(decoded)]
    assert len(decoded) < len(batch)
    assert sum(len(encode(f)) for f in decoded) + buffered == end


@FAST
@given(
    data=st.one_of(
        st.binary(max_size=600),
        st.builds(
            lambda t, body: bytes((t,)) + body,
            st.integers(1, 7),
            st.binary(max_size=600),
        ),
        st.builds(
            lambda t, n, body: header(t, 1, n) + body,
            st.integers(0, 9),
            st.integers(0, 200),
            st.binary(max_size=300),
        ),
    ),
    cuts=st.lists(st.integers(0, 1000), max_size=12),
)
def test_arbitrary_bytes_only_protocol_errors(data: bytes, cuts: list[int]) -> None:
    # Any other exception fails the test; the result must not depend on how the bytes were split.
    assert _feed(data, cuts) == _feed(data, [])


@settings(max_examples=30, deadline=500)
@given(extra=st.integers(1, 1 << 20))
def test_oversized_data_frame_never_buffered(extra: int) -> None:
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError, match="exceeds"):
        decoder.feed(header(3, 0, MAX_PAYLOAD + extra) + bytes(100))
    assert decoder.buffered == 0


def test_frames_before_a_malformed_one_survive_any_split() -> None:
    # Found by hypothesis: an empty DATA frame followed by a frame of unknown type 0x00.
    data = b"\x03" + b"\x00" * 8 + b"\x00" * 9
    whole, split = _feed(data, []), _feed(data, [9])
    assert whole == split
    assert len(whole[0]) == 1 and whole[1] is not None and "unknown frame type 0x00" in whole[1]


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, MAX_PAYLOAD), min_size=1, max_size=5),
    others=st.lists(frames, max_size=4),
    cuts=st.lists(st.integers(0, 6 * MAX_PAYLOAD), max_size=16),
)
def test_large_data_frames_any_chunking(sizes: list[int], others: list[Frame], cuts: list[int]) -> None:
    # Full-size DATA frames (what the tunnel sends at speed) interleaved with control frames, cut anywhere,
    # including inside headers and exactly at header/payload boundaries.
    batch: list[Frame] = [Data(i, bytes([i % 251]) * n) for i, n in enumerate(sizes)]
    for i, frame in enumerate(others):
        batch.insert((i * 2) % (len(batch) + 1), frame)
    data = b"".join(encode(f) for f in batch)
    boundaries = list(itertools.accumulate(len(encode(f)) for f in batch))
    assert _feed(data, cuts) == (batch, None, 0)
    assert _feed(data, [*cuts, *boundaries, *(b + HEADER_SIZE for b in boundaries)]) == (batch, None, 0)
