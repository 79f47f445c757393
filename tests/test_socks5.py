"""SOCKS5 (RFC 1928 subset) parsing: known answers and property tests."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flownet.errors import FlowNetError, ProtocolError, TunnelError
from flownet.tunnel.socks5 import (
    ATYP_DOMAIN,
    ATYP_IPV4,
    ATYP_IPV6,
    Greeting,
    NeedMore,
    Reply,
    ReplyCode,
    Request,
    build_reply,
    choose_method,
    method_selection,
    parse_greeting,
    parse_reply,
    parse_request,
)

FAST = settings(max_examples=300, deadline=200)
Parser = Callable[[bytes], Any]


def test_error_hierarchy() -> None:
    assert issubclass(ProtocolError, TunnelError)
    assert issubclass(TunnelError, FlowNetError)
    assert TunnelError.exit_code == 10
    assert ProtocolError("x", 7).reply_code == 7
    assert ProtocolError("x").reply_code is None


# --- greeting -----------------------------------------------------------------------------------


def test_greeting_no_auth() -> None:
    assert parse_greeting(b"\x05\x01\x00") == (Greeting((0,)), 3)
    assert choose_method(Greeting((0,))) == 0x00
    assert method_selection(0x00) == b"\x05\x00"


def test_greeting_several_methods_and_trailing_bytes() -> None:
    parsed = parse_greeting(b"\x05\x03\x02\x01\x00\x05\x01")
    assert parsed == (Greeting((2, 1, 0)), 5)
    assert choose_method(Greeting((2, 1, 0))) == 0x00


def test_greeting_without_no_auth_gets_ff() -> None:
    parsed = parse_greeting(b"\x05\x02\x01\x02")
    assert parsed == (Greeting((1, 2)), 4)
    assert choose_method(Greeting((1, 2))) == 0xFF
    assert method_selection(0xFF) == b"\x05\xff"


@pytest.mark.parametrize(
    ("buf", "need"),
    [(b"", 2), (b"\x05", 2), (b"\x05\x02", 4), (b"\x05\x02\x00", 4), (b"\x05\xff" + bytes(10), 257)],
)
def test_greeting_needs_more(buf: bytes, need: int) -> None:
    assert parse_greeting(buf) == NeedMore(need)


def test_greeting_bad_version() -> None:
    with pytest.raises(ProtocolError, match="version is 0x04") as info:
        parse_greeting(b"\x04\x01\x00")
    assert info.value.reply_code == 0xFF


def test_greeting_zero_methods() -> None:
    with pytest.raises(ProtocolError, match="NMETHODS=0") as info:
        parse_greeting(b"\x05\x00")
    assert info.value.reply_code == 0xFF


def test_method_selection_range() -> None:
    with pytest.raises(ValueError):
        method_selection(256)


# --- request ------------------------------------------------------------------------------------


def test_request_ipv4() -> None:
    raw = b"\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90"
    assert parse_request(raw) == (Request(ATYP_IPV4, "127.0.0.1", 8080), 10)


def test_request_domain() -> None:
    raw = b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"
    assert parse_request(raw + b"extra") == (Request(ATYP_DOMAIN, "example.com", 443), len(raw))


def test_request_ipv6() -> None:
    raw = b"\x05\x01\x00\x04" + ipaddress.IPv6Address("2001:db8::1").packed + b"\x00\x50"
    assert parse_request(raw) == (Request(ATYP_IPV6, "2001:db8::1", 80), 22)


def test_request_domain_255_bytes() -> None:
    name = b"a" * 255
    raw = b"\x05\x01\x00\x03\xff" + name + b"\x00\x01"
    assert parse_request(raw) == (Request(ATYP_DOMAIN, "a" * 255, 1), len(raw))


@pytest.mark.parametrize(
    ("buf", "need"),
    [
        (b"", 4),
        (b"\x05", 4),
        (b"\x05\x01", 4),
        (b"\x05\x01\x00", 4),
        (b"\x05\x01\x00\x01", 10),
        (b"\x05\x01\x00\x01\x7f\x00\x00\x01\x1f", 10),
        (b"\x05\x01\x00\x03", 6),
        (b"\x05\x01\x00\x03\x0bexam", 18),
        (b"\x05\x01\x00\x04", 22),
    ],
)
def test_request_needs_more(buf: bytes, need: int) -> None:
    assert parse_request(buf) == NeedMore(need)


@pytest.mark.parametrize(
    ("buf", "code", "text"),
    [
        (b"\x04\x01\x00\x01", ReplyCode.GENERAL_FAILURE, "version is 0x04"),
        (b"\x05\x02\x00\x01", ReplyCode.COMMAND_NOT_SUPPORTED, "command 0x02"),
        (b"\x05\x03\x00\x01", ReplyCode.COMMAND_NOT_SUPPORTED, "command 0x03"),
        (b"\x05\x00\x00\x01", ReplyCode.COMMAND_NOT_SUPPORTED, "command 0x00"),
        (b"\x05\x01\x01\x01", ReplyCode.GENERAL_FAILURE, "reserved byte is 0x01"),
        (b"\x05\x01\x00\x02", ReplyCode.ADDRESS_TYPE_NOT_SUPPORTED, "address type 0x02"),
        (b"\x05\x01\x00\x05", ReplyCode.ADDRESS_TYPE_NOT_SUPPORTED, "address type 0x05"),
        (b"\x05\x01\x00\x03\x00", ReplyCode.GENERAL_FAILURE, "empty domain"),
        (b"\x05\x01\x00\x03\x03a\x00b\x00\x50", ReplyCode.GENERAL_FAILURE, "NUL"),
        (b"\x05\x01\x00\x03\x03a\x00", ReplyCode.GENERAL_FAILURE, "NUL"),
        (b"\x05\x01\x00\x03\x02\xc3\xa9\x00\x50", ReplyCode.GENERAL_FAILURE, "not ASCII"),
    ],
)
def test_request_malformed(buf: bytes, code: int, text: str) -> None:
    with pytest.raises(ProtocolError, match=text) as info:
        parse_request(buf)
    assert info.value.reply_code == code


# --- replies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x08])
def test_reply_codes(code: int) -> None:
    assert build_reply(code) == bytes((5, code, 0, 1, 0, 0, 0, 0, 0, 0))


def test_reply_code_values() -> None:
    assert [int(c) for c in ReplyCode] == [0, 1, 2, 3, 4, 5, 6, 7, 8]


def test_reply_bound_addresses() -> None:
    assert build_reply(0, "10.1.2.3", 1080) == b"\x05\x00\x00\x01\x0a\x01\x02\x03\x04\x38"
    v6 = build_reply(0, "::1", 443)
    assert v6 == b"\x05\x00\x00\x04" + bytes(15) + b"\x01\x01\xbb"
    assert build_reply(4, "proxy.local", 7) == b"\x05\x04\x00\x03\x0bproxy.local\x00\x07"
    assert parse_reply(v6) == (Reply(0, ATYP_IPV6, "::1", 443), len(v6))


@pytest.mark.parametrize(
    ("args", "text"),
    [((256,), "reply code"), ((0, "1.2.3.4", 70000), "port"), ((0, "", 1), "domain"), ((0, "é", 1), "domain")],
)
def test_reply_invalid(args: tuple[Any, ...], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        build_reply(*args)


# --- properties ---------------------------------------------------------------------------------

hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), min_size=1, max_size=255).filter(
        lambda h: _is_not_ip(h)
    ),
)


def _is_not_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return True
    return False


def _request_bytes(host: str, port: int) -> bytes:
    # A request and a reply share their layout after the second byte.
    reply = build_reply(0, host, port)
    return b"\x05\x01" + reply[2:]


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _feed(parser: Parser, data: bytes, cuts: list[int]) -> Any:
    """Feed `data` to `parser` as a growing buffer, chunk by chunk, like a server would.

    Returns the first parse result, NeedMore if the data ran out, or the ProtocolError raised.
    """
    buf = b""
    result: Any = NeedMore(0)
    for chunk in _chunks(data, cuts):
        buf += chunk
        try:
            result = parser(buf)
        except ProtocolError as exc:
            return ("error", str(exc), exc.reply_code)
        if not isinstance(result, NeedMore):
            return result
        assert result.at_least > len(buf)
    return result


@FAST
@given(host=hosts, port=st.integers(0, 0xFFFF), tail=st.binary(max_size=8))
def test_request_round_trip(host: str, port: int, tail: bytes) -> None:
    raw = _request_bytes(host, port)
    parsed = parse_request(raw + tail)
    assert not isinstance(parsed, NeedMore)
    request, consumed = parsed
    assert consumed == len(raw)
    assert request.port == port
    if _is_not_ip(host):
        assert request.host == host and request.atyp == ATYP_DOMAIN
    else:
        assert ipaddress.ip_address(request.host) == ipaddress.ip_address(host)


@FAST
@given(code=st.integers(0, 255), host=hosts, port=st.integers(0, 0xFFFF))
def test_reply_round_trip(code: int, host: str, port: int) -> None:
    raw = build_reply(code, host, port)
    parsed = parse_reply(raw)
    assert not isinstance(parsed, NeedMore)
    assert parsed[1] == len(raw)
    assert (parsed[0].code, parsed[0].port) == (code, port)


@FAST
@given(methods=st.lists(st.integers(0, 255), min_size=1, max_size=255))
def test_greeting_round_trip(methods: list[int]) -> None:
    raw = bytes((5, len(methods), *methods))
    assert parse_greeting(raw) == (Greeting(tuple(methods)), len(raw))
    assert choose_method(Greeting(tuple(methods))) == (0x00 if 0 in methods else 0xFF)


@FAST
@given(host=hosts, port=st.integers(0, 0xFFFF))
def test_truncated_request_asks_for_more(host: str, port: int) -> None:
    raw = _request_bytes(host, port)
    for end in range(len(raw)):
        result = parse_request(raw[:end])
        assert isinstance(result, NeedMore)
        assert end < result.at_least <= len(raw)


@FAST
@given(methods=st.lists(st.integers(0, 255), min_size=1, max_size=20))
def test_truncated_greeting_asks_for_more(methods: list[int]) -> None:
    raw = bytes((5, len(methods), *methods))
    for end in range(len(raw)):
        result = parse_greeting(raw[:end])
        assert isinstance(result, NeedMore)
        assert end < result.at_least <= len(raw)


PARSERS = [parse_greeting, parse_request, parse_reply]


@FAST
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(lambda b: b"\x05" + b, st.binary(max_size=300)),
        st.builds(lambda b: b"\x05\x01\x00" + b, st.binary(max_size=300)),
    ),
    cuts=st.lists(st.integers(0, 400), max_size=10),
)
def test_arbitrary_bytes_any_chunking(data: bytes, cuts: list[int]) -> None:
    for parser in PARSERS:
        whole: Any
        try:
            whole = parser(data)
        except ProtocolError as exc:
            whole = ("error", str(exc), exc.reply_code)
        chunked = _feed(parser, data, cuts)
        if isinstance(whole, tuple) and whole[0] == "error":
            # An error is found as soon as the offending byte arrives, whatever the chunking.
            assert chunked == whole
        elif isinstance(whole, NeedMore):
            assert isinstance(chunked, NeedMore)
            assert chunked == whole or not data
        else:
            # A complete message parses the same however it was split (it may complete on a prefix).
            value, consumed = whole
            assert consumed <= len(data)
            assert chunked == (value, consumed)
