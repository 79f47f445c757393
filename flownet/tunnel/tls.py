"""TLS 1.3 with DeCA certificates over asyncio: pyOpenSSL on memory BIOs under a plain transport.

Python's `ssl` module verifies a peer certificate only against a trust store; DeCA certificates are
self-issued and trusted because the chain says their wallet registered them. pyOpenSSL lets a verify
callback decide instead, so the handshake itself fails (with an alert) when the peer's certificate is
not registered, revoked, expired or bound to the wrong wallet — nothing is read from an unauthorised
peer. `TlsLink` is the asyncio protocol: it owns the TCP transport, runs the handshake, and hands
plaintext to a `LinkHandler` (the multiplexer). Flow control passes through in both directions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from OpenSSL import SSL, crypto

from flownet.errors import ConfigError, TunnelError

__all__ = ["CertCheck", "Identity", "LinkHandler", "TlsLink", "make_context"]

log = logging.getLogger(__name__)

#: Decides on a peer certificate (DER): None accepts it, a string is the reason it is refused.
CertCheck = Callable[[bytes], str | None]

READ_SIZE = 256 * 1024


@dataclass(frozen=True)
class Identity:
    """A node's certificate and its (decrypted, in memory only) private key."""

    certificate: x509.Certificate
    key_pem: bytes = field(repr=False)

    @classmethod
    def load(cls, cert_path: Path, key_path: Path, password: str) -> Identity:
        try:
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the certificate {cert_path}: {exc}") from None
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password.encode())
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot decrypt the certificate key {key_path} with the wallet's password: {exc}"
            ) from None
        return cls.of(certificate, key)

    @classmethod
    def of(cls, certificate: x509.Certificate, key: PrivateKeyTypes) -> Identity:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cls(certificate, pem)


def make_context(identity: Identity, check: CertCheck, *, server: bool) -> SSL.Context:
    """A TLS 1.3-only context presenting `identity` that requires a peer certificate `check` accepts."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    ctx.use_certificate(identity.certificate)
    ctx.use_privatekey(serialization.load_pem_private_key(identity.key_pem, None))  # type: ignore[arg-type]
    ctx.check_privatekey()
    ctx.set_options(SSL.OP_NO_TICKET)
    _whole_writes(ctx)

    def verify(conn: SSL.Connection, cert: crypto.X509, _errno: int, depth: int, _ok: int) -> bool:
        if depth != 0:
            return False  # DeCA certificates are self-issued: a chain is never sent
        der = cert.to_cryptography().public_bytes(serialization.Encoding.DER)
        try:
            reason = check(der)
        except Exception as exc:  # a failing check must refuse, never accept
            log.exception("certificate check failed")
            reason = f"certificate check failed: {exc}"
        if reason is not None:
            conn.set_app_data(reason)
            return False
        return True

    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
    return ctx


def _whole_writes(ctx: SSL.Context) -> None:
    """Let one SSL_write encrypt all it is given (pyOpenSSL enables partial writes: one 16 KiB record per call).

    Writes go to a memory BIO, which never refuses bytes, so partial writes buy nothing here and cost a
    Python round trip per record (about 0.2 CPU-seconds per GB on the provider). pyOpenSSL has no public
    call for it; without the private binding the default stays, which is only slower.
    """
    try:
        from OpenSSL._util import lib

        lib.SSL_CTX_clear_mode(ctx._context, lib.SSL_MODE_ENABLE_PARTIAL_WRITE)
    except (ImportError, AttributeError):  # pragma: no cover - another pyOpenSSL layout
        log.debug("pyOpenSSL: partial writes stay enabled")


#: Most plaintext handed over in one piece (many 16 KiB TLS records).
DRAIN_SIZE = 1 << 20

_shared = threading.local()  # the drain buffer of this thread's links


class _Reader:
    """Decrypts every whole record the memory BIO holds into one buffer.

    pyOpenSSL's `recv` returns one record (at most 16 KiB) per call, through several Python calls and a
    fresh buffer each time, and the records then have to be joined. With pyOpenSSL's own cffi binding
    this calls SSL_read straight into one preallocated buffer (a single copy out at the end), which
    halves the receiving side's per-record overhead. Without that binding it falls back to `recv`.

    The buffer is shared by every link of a thread (what is decrypted is copied out before `drain`
    returns) and allocated at the first read, so a connection costs no buffer before its handshake.
    The reader holds no reference to its link: a link that closes is freed at once, without waiting
    for the cycle collector.
    """

    def __init__(self, conn: SSL.Connection, peer: str | None = None) -> None:
        self.conn = conn
        self.peer = peer or "?"
        try:
            from OpenSSL._util import ffi, lib

            self.ffi, self.lib = ffi, lib
            self.ssl = conn._ssl
            self.fast = True
        except (ImportError, AttributeError):  # pragma: no cover - another pyOpenSSL layout
            self.fast = False

    def drain(self) -> tuple[bytes, tuple[Exception | None] | None]:
        """(plaintext, end): end is None while open, (None,) after close_notify, (error,) on a TLS error."""
        return self._drain_fast() if self.fast else self._drain_slow()

    def _drain_fast(self) -> tuple[bytes, tuple[Exception | None] | None]:
        lib, ssl = self.lib, self.ssl
        buf = getattr(_shared, "buf", None)
        if buf is None:
            buf = _shared.buf = self.ffi.new("char[]", DRAIN_SIZE)
        got = 0
        ended: tuple[Exception | None] | None = None
        while got < DRAIN_SIZE:
            n = lib.SSL_read(ssl, buf + got, DRAIN_SIZE - got)
            if n > 0:
                got += n
                continue
            error = lib.SSL_get_error(ssl, n)
            if error == lib.SSL_ERROR_WANT_READ:
                break
            if error == lib.SSL_ERROR_ZERO_RETURN:
                ended = (None,)
                break
            try:
                self.conn._raise_ssl_error(ssl, n)  # pyOpenSSL's own translation into SSL.Error
                ended = (TunnelError(f"TLS error from {self.peer}: SSL_read returned {n}"),)
            except SSL.Error as exc:
                ended = (TunnelError(f"TLS error from {self.peer}: {exc}"),)
            break
        return (self.ffi.buffer(buf, got)[:] if got else b""), ended

    def _drain_slow(self) -> tuple[bytes, tuple[Exception | None] | None]:
        chunks: list[bytes] = []
        size = 0
        ended: tuple[Exception | None] | None = None
        while size < DRAIN_SIZE:
            try:
                chunk = self.conn.recv(READ_SIZE)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                ended = (None,)
                break
            except SSL.Error as exc:
                ended = (TunnelError(f"TLS error from {self.peer}: {exc}"),)
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), ended


class LinkHandler(Protocol):
    """What sits on top of a TlsLink (the multiplexer)."""

    def link_up(self, link: TlsLink, peer_der: bytes) -> None: ...

    def link_data(self, data: bytes) -> None: ...

    def link_down(self, error: Exception | None) -> None: ...

    def link_pause_writing(self) -> None: ...

    def link_resume_writing(self) -> None: ...


class _Detached:
    """The handler of a link that ended: nothing more reaches the multiplexer, and nothing keeps it alive."""

    def link_up(self, link: TlsLink, peer_der: bytes) -> None:
        pass

    def link_data(self, data: bytes) -> None:
        pass

    def link_down(self, error: Exception | None) -> None:
        pass

    def link_pause_writing(self) -> None:
        pass

    def link_resume_writing(self) -> None:
        pass


_DETACHED = _Detached()


def _report_info(message: str) -> None:
    log.info("%s", message)


class TlsLink(asyncio.Protocol):
    """An asyncio protocol speaking TLS (pyOpenSSL, memory BIOs) to one peer on behalf of a LinkHandler.

    `on_connect` is called once the TCP connection is accepted, before the handshake (a server uses it
    to bound connections still in their handshake), and `report` receives the one-line reason of each
    failed link (default: INFO on this module's logger; a server passes a rate-limited one). Once the
    link ends it lets go of its handler and its transport.
    """

    def __init__(
        self,
        context: SSL.Context,
        handler: LinkHandler,
        *,
        server: bool,
        on_connect: Callable[[TlsLink], None] | None = None,
        report: Callable[[str], None] = _report_info,
    ) -> None:
        self._conn = SSL.Connection(context, None)
        if server:
            self._conn.set_accept_state()
        else:
            self._conn.set_connect_state()
        self._handler: LinkHandler = handler
        self._reader = _Reader(self._conn)
        self._transport: asyncio.Transport | None = None
        self._up = False
        self._closed = False
        self._on_connect = on_connect
        self._report = report
        self.peer_address: str = "?"
        self.peer_host: str = "?"

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_address = f"{peer[0]}:{peer[1]}"
            self.peer_host = str(peer[0])
            self._reader.peer = self.peer_address
        # asyncio and uvloop set TCP_NODELAY on every TCP transport (asking for the socket here would
        # cost a socket object per connection, which adds up when connections are churned)
        if self._on_connect is not None:
            self._on_connect(self)
            if self._closed:
                return
        self._handshake()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if data:
            self._conn.bio_write(data)
        if not self._up:
            self._handshake()
            if not self._up:
                return
        while True:
            data, ended = self._reader.drain()
            if data:
                self._handler.link_data(data)
            if ended is not None or len(data) < DRAIN_SIZE or self._closed:
                break
        if ended is not None:
            self._fail(ended[0])
            return
        if self._closed:
            return
        self._flush()

    def eof_received(self) -> bool:
        self._fail(None if self._up else TunnelError(f"{self.peer_address} closed the connection during the handshake"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self._closed:
            self._closed = True
            self._detach().link_down(exc or (None if self._up else TunnelError("connection lost during the handshake")))

    def pause_writing(self) -> None:
        self._handler.link_pause_writing()

    def resume_writing(self) -> None:
        self._handler.link_resume_writing()

    # towards the peer

    def write(self, data: bytes) -> None:
        if self._closed:
            return
        self._conn.sendall(data)
        self._flush()

    def pause_reading(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.resume_reading()

    def close(self) -> None:
        """Send close_notify and close the transport (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._up:
            with contextlib.suppress(SSL.Error):
                self._conn.shutdown()
            self._flush()
        if self._transport is not None:
            self._transport.close()
        self._detach().link_down(None)

    def abort(self) -> None:
        """Reset the TCP connection (no close_notify); the handler hears of it when the transport is gone."""
        if self._transport is not None:
            self._transport.abort()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def write_backlog(self) -> int:
        """Encrypted bytes waiting to be sent (the peer is not reading them yet)."""
        return self._transport.get_write_buffer_size() if self._transport is not None else 0

    @property
    def cipher(self) -> str:
        return str(self._conn.get_cipher_name())

    # internals

    def _handshake(self) -> None:
        try:
            self._conn.do_handshake()
        except SSL.WantReadError:
            self._flush()
            return
        except SSL.Error as exc:
            self._flush()  # deliver the alert
            reason = self._conn.get_app_data()
            self._fail(TunnelError(f"TLS handshake with {self.peer_address} failed: {reason or _describe(exc)}"))
            return
        self._flush()
        peer = self._conn.get_peer_certificate(as_cryptography=True)
        if peer is None:  # VERIFY_FAIL_IF_NO_PEER_CERT makes this unreachable on both sides
            self._fail(TunnelError(f"{self.peer_address} sent no certificate"))
            return
        if self._conn.get_protocol_version_name() != "TLSv1.3":
            self._fail(TunnelError(f"{self.peer_address} negotiated {self._conn.get_protocol_version_name()}"))
            return
        self._up = True
        self._handler.link_up(self, peer.public_bytes(serialization.Encoding.DER))
        # application data may have arrived with the handshake's last flight
        if not self._closed:
            self.data_received(b"")

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        conn = self._conn
        while True:
            try:
                out = conn.bio_read(READ_SIZE)
            except SSL.WantReadError:
                return
            if not out:
                return
            transport.write(out)
            if len(out) < READ_SIZE:
                return  # the BIO is drained (saves the WantReadError a further read would raise)

    def _fail(self, error: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        if error is not None:
            self._report(str(error))
        if self._transport is not None:
            self._transport.close()
        self._detach().link_down(error)

    def _detach(self) -> LinkHandler:
        handler, self._handler = self._handler, _DETACHED
        self._on_connect = None
        return handler


def _describe(exc: SSL.Error) -> str:
    try:
        return "; ".join(str(part[2]) for part in exc.args[0]) or str(exc)
    except (IndexError, TypeError):
        return str(exc)
