"""The subset of SOCKS5 (RFC 1928) a local FlowNet proxy speaks: no authentication, CONNECT only.

Parsers are incremental and pure: each takes the bytes received so far and returns either
``NeedMore(at_least)`` (the buffer must grow to at least that many bytes before trying again) or
``(value, consumed)``. Malformed input raises ProtocolError whose ``reply_code`` is the byte to send
back (a method-selection byte for the greeting, a reply code for a request) before closing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum

from flownet.errors import ProtocolError

__all__ = [
    "ATYP_DOMAIN",
    "ATYP_IPV4",
    "ATYP_IPV6",
    "CMD_CONNECT",
    "METHOD_NO_ACCEPTABLE",
    "METHOD_NO_AUTH",
    "SOCKS_VERSION",
    "Greeting",
    "NeedMore",
    "Reply",
    "ReplyCode",
    "Request",
    "build_reply",
    "choose_method",
    "method_selection",
    "parse_greeting",
    "parse_reply",
    "parse_request",
]

SOCKS_VERSION = 0x05
METHOD_NO_AUTH = 0x00
METHOD_NO_ACCEPTABLE = 0xFF
CMD_CONNECT = 0x01
CMD_BIND = 0x02
CMD_UDP_ASSOCIATE = 0x03
ATYP_IPV4 = 0x01
ATYP_DOMAIN = 0x03
ATYP_IPV6 = 0x04


class ReplyCode(IntEnum):
    """The REP field of a SOCKS5 reply."""

    SUCCEEDED = 0x00
    GENERAL_FAILURE = 0x01
    NOT_ALLOWED = 0x02
    NETWORK_UNREACHABLE = 0x03
    HOST_UNREACHABLE = 0x04
    CONNECTION_REFUSED = 0x05
    TTL_EXPIRED = 0x06
    COMMAND_NOT_SUPPORTED = 0x07
    ADDRESS_TYPE_NOT_SUPPORTED = 0x08


@dataclass(frozen=True)
class NeedMore:
    """Not enough bytes yet: call again once the buffer holds at least `at_least` bytes."""

    at_least: int


@dataclass(frozen=True)
class Greeting:
    """A client's version/method-selection message."""

    methods: tuple[int, ...]


@dataclass(frozen=True)
class Request:
    """A CONNECT request: `host` is a domain name or the text of an IPv4/IPv6 address."""

    atyp: int
    host: str
    port: int


@dataclass(frozen=True)
class Reply:
    """A server's reply to a request (parsed on the client side, and in tests)."""

    code: int
    atyp: int
    host: str
    port: int


def parse_greeting(buf: bytes) -> NeedMore | tuple[Greeting, int]:
    """Parse ``VER NMETHODS METHODS...``; errors carry reply_code 0xFF (no acceptable method)."""
    if len(buf) < 1:
        return NeedMore(2)
    if buf[0] != SOCKS_VERSION:
        raise ProtocolError(f"SOCKS greeting version is {buf[0]:#04x}, not 0x05", METHOD_NO_ACCEPTABLE)
    if len(buf) < 2:
        return NeedMore(2)
    count = buf[1]
    if count == 0:
        raise ProtocolError("SOCKS greeting offers no authentication methods (NMETHODS=0)", METHOD_NO_ACCEPTABLE)
    end = 2 + count
    if len(buf) < end:
        return NeedMore(end)
    return Greeting(tuple(buf[2:end])), end


def choose_method(greeting: Greeting) -> int:
    """NO AUTH (0x00) if the client offers it, else NO ACCEPTABLE METHODS (0xFF)."""
    return METHOD_NO_AUTH if METHOD_NO_AUTH in greeting.methods else METHOD_NO_ACCEPTABLE


def method_selection(method: int) -> bytes:
    """The server's ``VER METHOD`` answer to a greeting."""
    if not 0 <= method <= 0xFF:
        raise ValueError(f"method must be a byte (not {method})")
    return bytes((SOCKS_VERSION, method))


def _parse_address(buf: bytes, offset: int, atyp: int, what: str) -> NeedMore | tuple[str, int, int]:
    """Parse ``DST.ADDR DST.PORT`` of type `atyp` at `offset`: (host, port, end offset)."""
    if atyp == ATYP_IPV4:
        end = offset + 4
        if len(buf) < end + 2:
            return NeedMore(end + 2)
        host = str(ipaddress.IPv4Address(bytes(buf[offset:end])))
    elif atyp == ATYP_IPV6:
        end = offset + 16
        if len(buf) < end + 2:
            return NeedMore(end + 2)
        host = str(ipaddress.IPv6Address(bytes(buf[offset:end])))
    elif atyp == ATYP_DOMAIN:
        if len(buf) < offset + 1:
            return NeedMore(offset + 2)
        size = buf[offset]
        if size == 0:
            raise ProtocolError(f"SOCKS {what} has an empty domain name", ReplyCode.GENERAL_FAILURE)
        start, end = offset + 1, offset + 1 + size
        if len(buf) < end + 2:
            # Check what has arrived so far, so the verdict does not depend on how the bytes were chunked.
            _check_domain(bytes(buf[start : min(end, len(buf))]), what)
            return NeedMore(end + 2)
        host = _check_domain(bytes(buf[start:end]), what)
    else:
        raise ProtocolError(f"SOCKS {what} has unknown address type {atyp:#04x}", ReplyCode.ADDRESS_TYPE_NOT_SUPPORTED)
    port = int.from_bytes(buf[end : end + 2], "big")
    return host, port, end + 2


def _check_domain(raw: bytes, what: str) -> str:
    if b"\x00" in raw:
        raise ProtocolError(f"SOCKS {what} domain name contains a NUL byte: {raw!r}", ReplyCode.GENERAL_FAILURE)
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(
            f"SOCKS {what} domain name is not ASCII: {raw!r} (IDNs must be sent punycoded)", ReplyCode.GENERAL_FAILURE
        ) from None


def parse_request(buf: bytes) -> NeedMore | tuple[Request, int]:
    """Parse ``VER CMD RSV ATYP DST.ADDR DST.PORT``; only CONNECT is accepted (others: reply 0x07)."""
    if len(buf) < 1:
        return NeedMore(4)
    if buf[0] != SOCKS_VERSION:
        raise ProtocolError(f"SOCKS request version is {buf[0]:#04x}, not 0x05", ReplyCode.GENERAL_FAILURE)
    if len(buf) < 2:
        return NeedMore(4)
    if buf[1] != CMD_CONNECT:
        raise ProtocolError(
            f"SOCKS command {buf[1]:#04x} is not supported (only CONNECT, 0x01)", ReplyCode.COMMAND_NOT_SUPPORTED
        )
    if len(buf) < 3:
        return NeedMore(4)
    if buf[2] != 0x00:
        raise ProtocolError(f"SOCKS request reserved byte is {buf[2]:#04x}, not 0x00", ReplyCode.GENERAL_FAILURE)
    if len(buf) < 4:
        return NeedMore(4)
    atyp = buf[3]
    parsed = _parse_address(buf, 4, atyp, "request")
    if isinstance(parsed, NeedMore):
        return parsed
    host, port, end = parsed
    return Request(atyp, host, port), end


def _encode_address(host: str) -> bytes:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raw = host.encode("ascii", errors="strict") if host.isascii() else b""
        if not 1 <= len(raw) <= 255 or b"\x00" in raw:
            raise ValueError(f"bound address {host!r} is not an IP address or a 1..255 byte ASCII domain") from None
        return bytes((ATYP_DOMAIN, len(raw))) + raw
    if isinstance(ip, ipaddress.IPv4Address):
        return bytes((ATYP_IPV4,)) + ip.packed
    return bytes((ATYP_IPV6,)) + ip.packed


def build_reply(code: int, bnd_host: str = "0.0.0.0", bnd_port: int = 0) -> bytes:
    """``VER REP RSV ATYP BND.ADDR BND.PORT``; `bnd_host` is an IPv4/IPv6 literal or a domain name."""
    if not 0 <= code <= 0xFF:
        raise ValueError(f"reply code must be a byte (not {code})")
    if not 0 <= bnd_port <= 0xFFFF:
        raise ValueError(f"bound port must be in 0..65535 (not {bnd_port})")
    return bytes((SOCKS_VERSION, code, 0x00)) + _encode_address(bnd_host) + bnd_port.to_bytes(2, "big")


def parse_reply(buf: bytes) -> NeedMore | tuple[Reply, int]:
    """Parse a server's reply (the client side of `build_reply`)."""
    if len(buf) < 1:
        return NeedMore(4)
    if buf[0] != SOCKS_VERSION:
        raise ProtocolError(f"SOCKS reply version is {buf[0]:#04x}, not 0x05", ReplyCode.GENERAL_FAILURE)
    if len(buf) < 3:
        return NeedMore(4)
    if buf[2] != 0x00:
        raise ProtocolError(f"SOCKS reply reserved byte is {buf[2]:#04x}, not 0x00", ReplyCode.GENERAL_FAILURE)
    if len(buf) < 4:
        return NeedMore(4)
    atyp = buf[3]
    parsed = _parse_address(buf, 4, atyp, "reply")
    if isinstance(parsed, NeedMore):
        return parsed
    host, port, end = parsed
    return Reply(buf[1], atyp, host, port), end
