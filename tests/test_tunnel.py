"""The tunnel engine end to end on one event loop: a provider, a client, a local web or echo server.

Issue 5's list: a file through curl with matching hash, metering and receipts; every refusal with the
result a user sees (SOCKS reply code, OpenStatus in the logs, TLS failure reason); revocation while
connected; malformed SOCKS and frame input; 500 concurrent streams held for 30 seconds.
Only 127.0.0.1 is used, and every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tunnel_helpers import (
    CHAIN_ID,
    MARKET,
    EchoServer,
    LocalWeb,
    MonitorRounds,
    Tunnel,
    make_node,
    random_file,
    run,
    socks_connect,
    socks_exchange,
)

from flownet.core.pricing import GIB, cost_of
from flownet.core.receipts import MarketDomain, Order, Receipt
from flownet.errors import TunnelError
from flownet.tunnel import frames as fr
from flownet.tunnel.mux import WINDOW
from flownet.tunnel.payment import ReceiptSigner, domain_separator, receipt_digest, recover_signer
from flownet.tunnel.tls import TlsLink, make_context

MIB = 1 << 20
DOMAIN = MarketDomain(CHAIN_ID, MARKET)
GENERAL_FAILURE, NOT_ALLOWED = 0x01, 0x02


async def until(predicate: object, timeout: float, step: float = 0.01) -> float:
    """Wait until `predicate()` is true (at most `timeout` seconds); the seconds it took."""
    start = time.perf_counter()
    while not predicate():  # type: ignore[operator]
        if time.perf_counter() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
    return time.perf_counter() - start


async def curl(port: int, url: str, out: Path, timeout: float = 60) -> int:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", str(timeout), "-o", str(out), "--socks5-hostname", f"127.0.0.1:{port}", url
    )
    return await asyncio.wait_for(proc.wait(), timeout + 5)


async def drain(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bool]:
    """Read until EOF/reset or `timeout` of silence: (bytes read, whether the connection ended)."""
    got = 0
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(1 << 16), timeout)
            if not chunk:
                return got, True
            got += len(chunk)
    except TimeoutError:
        return got, False
    except ConnectionError:
        return got, True


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


# 1. a file through curl, metering, receipts, signatures


def test_file_through_curl_is_metered_and_paid(tmp_path: Path) -> None:
    size = 8 * MIB

    async def main() -> None:
        t = Tunnel(tmp_path, receipt_interval=1 * MIB).standard()
        server = await t.start_provider()
        client = await t.start_client()
        with random_file(tmp_path, "f.bin", size) as f, LocalWeb(tmp_path) as web:
            want = hashlib.sha256(f.read_bytes()).hexdigest()
            out = tmp_path / "out.bin"
            assert await curl(client.config.listen_port, f"http://127.0.0.1:{web.port}/f.bin", out) == 0
            assert hashlib.sha256(out.read_bytes()).hexdigest() == want
            # both sides counted the same bytes, and the client paid for all but the last interval on the way
            await until(lambda: client.total > size and t.metered() == client.total, 15)
            assert client.total - client.signed_bytes <= t.receipt_interval
            # once settled, the book's latest receipt covers every byte at the order's price
            expect = Receipt(t.order.order_id, client.total, cost_of(client.total, t.price))

            def settled() -> bool:
                stored = t.book.latest(t.order.order_id)
                return stored is not None and stored.receipt == expect

            await until(settled, 15)
            stored = t.book.latest(t.order.order_id)
            assert stored is not None and stored.order == t.order
            assert recover_signer(domain_separator(DOMAIN), stored.receipt, stored.signature) == t.client.address
            assert stored.signature == eth_account_signature(t.client.account, stored.receipt)
            assert t.metered() == client.total == stored.receipt.cumulative_bytes
            assert client.stats["receipts"] >= size // t.receipt_interval
            assert server.stats == {
                "sessions": 1,
                "streams": 1,
                "receipts": client.stats["receipts"],
                "refused_handshakes": 0,
                "proofs": 0,
            }
        await client.stop()
        await server.stop()

    run(main(), 60)


def eth_account_signature(account: object, receipt: Receipt) -> bytes:
    signed = account.sign_message(encode_typed_data(full_message=receipt.typed_data(DOMAIN)))  # type: ignore[attr-defined]
    return bytes(signed.signature)


@pytest.mark.parametrize(
    ("total", "amount"), [(1, 1), (8 * MIB, cost_of(8 * MIB, 10**18)), (GIB, 10**18), (2**200, 2**255 + 7)]
)
def test_fast_signatures_equal_eth_account(total: int, amount: int) -> None:
    account = Account.create()
    order = Order(3, account.address, make_node().address, 10**20, 10**18, 2_000_000_000)
    receipt = Receipt(order.order_id, total, amount)
    signer = ReceiptSigner(bytes(account.key), DOMAIN)
    assert signer.address == account.address
    digest = receipt_digest(domain_separator(DOMAIN), receipt)
    assert digest == _hash_eip191_message(encode_typed_data(full_message=receipt.typed_data(DOMAIN)))
    signature = signer.sign(receipt)
    assert signature == eth_account_signature(account, receipt)  # both RFC 6979: byte-identical
    assert recover_signer(domain_separator(DOMAIN), receipt, signature) == account.address
    assert Account._recover_hash(digest, signature=signature) == account.address


def test_upload_and_half_close(tmp_path: Path) -> None:
    """Bytes up (client to destination) are carried, flow-controlled and metered, and an EOF is half-close:
    the destination still answers after the client finished sending."""
    t = Tunnel(tmp_path).standard()
    upload = os.urandom(3 * MIB + 12345)

    async def digest_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(-1)
        writer.write(hashlib.sha256(data).digest() + len(data).to_bytes(8, "big"))
        await writer.drain()
        writer.close()

    async def main() -> None:
        await t.start_provider()
        client = await t.start_client()
        sink = await asyncio.start_server(digest_server, "127.0.0.1", 0)
        port = sink.sockets[0].getsockname()[1]
        code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", port)
        assert code == 0
        writer.write(upload)
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(-1), 10)
        assert answer == hashlib.sha256(upload).digest() + len(upload).to_bytes(8, "big")
        writer.close()
        await until(lambda: t.metered() == client.total == len(upload) + len(answer), 15)
        sink.close()
        await client.stop()
        await t.server.stop()

    run(main(), 30)


def test_a_slow_reader_backs_up_to_the_destination(tmp_path: Path) -> None:
    """Flow control end to end: a SOCKS client that stops reading stops the provider reading the destination
    (a window plus socket buffers in flight, not the whole file), and the download completes once it reads."""
    t = Tunnel(tmp_path).standard()
    size = 32 * MIB

    async def main() -> None:
        await t.start_provider()
        client = await t.start_client()
        with random_file(tmp_path, "f.bin", size) as f, LocalWeb(tmp_path) as web:
            want = hashlib.sha256(f.read_bytes()).digest()
            code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", web.port)
            assert code == 0
            writer.transport.pause_reading()  # type: ignore[attr-defined]
            writer.write(b"GET /f.bin HTTP/1.0\r\nHost: x\r\n\r\n")
            await asyncio.sleep(0.5)
            stalled = t.metered()
            await asyncio.sleep(0.3)
            assert t.metered() == stalled  # nothing moves while the reader sleeps
            assert stalled < 12 * MIB, stalled  # ~5.5 MB measured: 1 MiB window + loopback socket buffers
            writer.transport.resume_reading()  # type: ignore[attr-defined]
            body = await asyncio.wait_for(reader.read(-1), 20)
            writer.close()
            assert hashlib.sha256(body[body.index(b"\r\n\r\n") + 4 :]).digest() == want
        await client.stop()
        await t.server.stop()

    run(main(), 40)


def test_restarts_continue_the_cumulative_receipt(tmp_path: Path) -> None:
    """A restarted client continues its count from its receipt log, a restarted provider from its book."""
    t = Tunnel(tmp_path, receipt_interval=1 * MIB).standard()

    async def session(web: LocalWeb) -> int:
        await t.start_provider()
        client = await t.start_client()
        out = tmp_path / "out.bin"
        assert await curl(client.config.listen_port, f"http://127.0.0.1:{web.port}/f.bin", out) == 0
        await until(
            lambda: (s := t.book.latest(t.order.order_id)) is not None and s.receipt.cumulative_bytes == client.total,
            15,
        )
        total = client.total
        await client.stop()
        await t.server.stop()
        return total

    with random_file(tmp_path, "f.bin", 2 * MIB), LocalWeb(tmp_path) as web:
        first = run(session(web), 30)
        second = run(session(web), 30)
    assert first > 2 * MIB and second - first == first  # the same download again, counted on top
    stored = t.book.latest(t.order.order_id)
    assert stored is not None and stored.receipt == Receipt(t.order.order_id, second, cost_of(second, t.price))
    assert recover_signer(domain_separator(DOMAIN), stored.receipt, stored.signature) == t.client.address


# 2. refusals


async def refused_connect(t: Tunnel, lenient: bool = False, **client: object) -> int:
    """Start the tunnel and return the SOCKS reply code of one CONNECT (the connection must then close)."""
    await t.start_provider()
    tunnel = await t.start_client(**client)  # type: ignore[arg-type]
    if lenient:  # accept any provider certificate
        tunnel.context = make_context(tunnel.config.identity, lambda _der: None, server=False)
    async with EchoServer() as echo:
        code, reader, writer = await socks_connect(tunnel.config.listen_port, "127.0.0.1", echo.port)
        if code == 0:
            writer.close()
        else:
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
    await tunnel.stop()
    await t.server.stop()
    return code


@pytest.mark.parametrize(
    ("case", "provider_log", "client_log"),
    [
        ("unregistered", "certificate unregistered", "alert unknown ca"),
        ("revoked", "certificate revoked", "alert unknown ca"),
        ("expired", "certificate expired", "alert unknown ca"),
    ],
)
def test_client_certificate_refused_in_handshake(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str, provider_log: str, client_log: str
) -> None:
    caplog.set_level(logging.INFO)
    t = Tunnel(tmp_path)
    t.index.register(t.provider)
    t.index.add_order(t.order)
    if case == "revoked":
        t.index.register(t.client)
        t.index.revoke(t.client)
    elif case == "expired":
        t.index.register(t.client, not_after=int(time.time()) - 60)
    assert run(refused_connect(t), 30) == GENERAL_FAILURE
    assert logged(caplog, provider_log)  # the provider's verify callback names the reason
    assert logged(caplog, client_log)  # the client sees the alert (TLS 1.3: after its own Finished)
    assert t.server.stats["refused_handshakes"] == 1
    assert t.server.stats["streams"] == 0 and not t.accounts  # no OPEN was ever read


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("another client's order", "CERT_NOT_AUTHORISED"),
        ("closed", "ORDER_NOT_OPEN"),
        ("expired", "ORDER_NOT_OPEN"),
        ("unknown", "ORDER_NOT_OPEN"),
        ("another provider's order", "ORDER_NOT_OPEN"),
    ],
)
def test_order_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str, status: str) -> None:
    caplog.set_level(logging.INFO)
    t = Tunnel(tmp_path)
    t.index.register(t.provider)
    t.index.register(t.client)
    kwargs: dict[str, object] = {}
    order = t.order
    if case == "another client's order":
        intruder = make_node()
        t.index.register(intruder)
        kwargs["node"] = intruder
    elif case == "closed":
        pass
    elif case == "expired":
        order = Order(2, t.client.address, t.provider.address, t.deposit, t.price, int(time.time()) - 1)
        kwargs["order"] = order
    elif case == "another provider's order":
        order = Order(2, t.client.address, make_node().address, t.deposit, t.price, int(time.time()) + 3600)
        kwargs["order"] = order
    if case != "unknown":
        t.index.add_order(order, "closed" if case == "closed" else "open")
    # the client must get past its own check of the provider to ask about another provider's order
    code = run(refused_connect(t, lenient=case == "another provider's order", **kwargs), 30)
    assert code == GENERAL_FAILURE
    assert logged(caplog, f"refused: {status}")  # the provider's log line
    assert logged(caplog, f"refused by the provider: {status}")  # the client's


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "0.0.0.0"])
def test_private_destination_not_allowed(tmp_path: Path, caplog: pytest.LogCaptureFixture, host: str) -> None:
    caplog.set_level(logging.INFO)
    t = Tunnel(tmp_path).standard()

    async def main() -> int:
        await t.start_provider(allow=("10.99.0.0/16",))
        tunnel = await t.start_client()
        async with EchoServer() as echo:
            code, reader, writer = await socks_connect(tunnel.config.listen_port, host, echo.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            assert echo.connections == 0  # the provider never connected
        await tunnel.stop()
        await t.server.stop()
        return code

    assert run(main(), 30) == NOT_ALLOWED
    assert logged(caplog, "refused: NOT_ALLOWED")


@pytest.mark.parametrize("case", ["another wallet", "unregistered", "revoked"])
def test_client_refuses_provider_certificate(tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str) -> None:
    caplog.set_level(logging.INFO)
    t = Tunnel(tmp_path)
    t.index.register(t.client)
    t.index.add_order(t.order)
    impostor = make_node()
    if case == "another wallet":
        t.index.register(t.provider)
        t.index.register(impostor)  # a valid certificate, for a wallet that is not the order's provider
    elif case == "revoked":
        t.index.register(t.provider)
        t.index.revoke(t.provider)
    want = {
        "another wallet": f"names {impostor.address}, not the order's provider {t.provider.address}",
        "unregistered": "is not registered and valid on chain",
        "revoked": "is not registered and valid on chain",
    }[case]

    async def main() -> int:
        await t.start_provider(node=impostor if case == "another wallet" else None)
        tunnel = await t.start_client()
        with pytest.raises(TunnelError, match="TLS handshake with .* failed: .*" + want):
            await tunnel.connect()
        async with EchoServer() as echo:
            code, reader, writer = await socks_connect(tunnel.config.listen_port, "127.0.0.1", echo.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            assert echo.connections == 0
        assert not t.server.sessions
        await tunnel.stop()
        await t.server.stop()
        return code

    assert run(main(), 30) == GENERAL_FAILURE


def test_exhausted_order_ends_streams_and_refuses_new_ones(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    deposit = cost_of(2 * MIB, 10**18)  # pays for 2 MiB, the file is 16
    t = Tunnel(tmp_path, deposit=deposit, credit_window=1 * MIB, receipt_interval=256 * 1024).standard()

    async def main() -> None:
        await t.start_provider()
        client = await t.start_client()
        with random_file(tmp_path, "f.bin", 16 * MIB), LocalWeb(tmp_path) as web:
            code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", web.port)
            assert code == 0
            writer.write(b"GET /f.bin HTTP/1.0\r\nHost: x\r\n\r\n")
            got, ended = await drain(reader, 5)
            writer.close()
            assert ended, "the provider must end the stream of an exhausted order"
            # held as soon as the traffic costs the deposit: at most the data already read goes beyond it
            assert 2 * MIB <= got <= 2 * MIB + WINDOW
            assert logged(caplog, "provider closed stream 1: ORDER_ENDED")
            stored = t.book.latest(t.order.order_id)
            assert stored is not None and stored.receipt.cumulative_amount == deposit
            code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", web.port)
            assert code == GENERAL_FAILURE
            writer.close()
            assert logged(caplog, "refused: ORDER_EXHAUSTED")
        await client.stop()
        await t.server.stop()

    run(main(), 30)


def test_client_that_stops_paying_is_cut_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    window = 1 * MIB
    t = Tunnel(tmp_path, pay=False, credit_window=window, payment_timeout=0.5).standard()

    async def main() -> None:
        server = await t.start_provider()
        rounds = MonitorRounds(server)
        client = await t.start_client()
        with random_file(tmp_path, "f.bin", 16 * MIB), LocalWeb(tmp_path) as web:
            code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", web.port)
            assert code == 0
            start, first_round = time.perf_counter(), rounds.count
            writer.write(b"GET /f.bin HTTP/1.0\r\nHost: x\r\n\r\n")
            got, ended = await drain(reader, 30)
            elapsed = time.perf_counter() - start
            writer.close()
            assert ended
            # never before the timeout; at the latest in the first monitor round after it (each round
            # sleeps at least the interval, so the timeout spans at most this many rounds, plus the one
            # that was under way when the stream opened and the one that cuts it off)
            assert t.payment_timeout <= elapsed
            assert rounds.count - first_round <= -(-t.payment_timeout // server.config.monitor_interval) + 2
            assert window // 2 <= got <= window + WINDOW  # stopped near the credit window
            assert t.metered() <= window + WINDOW
            assert logged(caplog, "provider closed stream 1: PAYMENT_REQUIRED")
            assert t.book.latest(t.order.order_id) is None
            # the unpaid order takes no new streams
            code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", web.port)
            assert code == GENERAL_FAILURE
            writer.close()
            assert logged(caplog, "refused: PAYMENT_REQUIRED")
        await client.stop()
        await t.server.stop()

    run(main(), 30)


def test_paying_client_is_not_cut_off_by_a_small_credit_window(tmp_path: Path) -> None:
    """A provider whose credit window is smaller than the client's receipt interval holds the order; the
    client must notice the quiet and pay, or a paying client would be cut off after the payment timeout."""
    t = Tunnel(tmp_path, credit_window=1 * MIB, receipt_interval=4 * MIB, payment_timeout=5.0).standard()
    size = 8 * MIB

    async def main() -> None:
        await t.start_provider()
        client = await t.start_client()
        with random_file(tmp_path, "f.bin", size) as f, LocalWeb(tmp_path) as web:
            want = hashlib.sha256(f.read_bytes()).hexdigest()
            out = tmp_path / "out.bin"
            assert await curl(client.config.listen_port, f"http://127.0.0.1:{web.port}/f.bin", out, timeout=20) == 0
            assert hashlib.sha256(out.read_bytes()).hexdigest() == want
        await client.stop()
        await t.server.stop()

    run(main(), 40)


def test_unpaid_bytes_are_not_forgotten_between_streams(tmp_path: Path) -> None:
    """A client that never pays cannot reset its debt by closing its streams and waiting for the monitor."""
    window = 1 * MIB
    t = Tunnel(tmp_path, pay=False, credit_window=window, payment_timeout=0.3).standard()

    async def main() -> None:
        await t.start_provider()
        client = await t.start_client()
        with random_file(tmp_path, "f.bin", 300 * 1024), LocalWeb(tmp_path) as web:
            delivered = 0
            for _ in range(8):  # 2.4 MB in small downloads, each below the credit window
                code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", web.port)
                if code != 0:
                    writer.close()
                    break
                writer.write(b"GET /f.bin HTTP/1.0\r\nHost: x\r\n\r\n")
                got, _ended = await drain(reader, 2)
                writer.close()
                delivered += got
                await asyncio.sleep(5 * t.monitor_interval)  # the monitor runs meanwhile
            assert delivered <= window + WINDOW
        await client.stop()
        await t.server.stop()

    run(main(), 40)


# 3. revocation while connected


def test_revocation_closes_a_live_session(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    t = Tunnel(tmp_path).standard()

    async def main() -> None:
        server = await t.start_provider()
        client = await t.start_client()
        async with EchoServer() as echo:
            streams = []
            for _ in range(3):
                code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", echo.port)
                assert code == 0
                writer.write(b"ping")
                assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
                streams.append((reader, writer))
            assert len(server.sessions) == 1
            rounds = MonitorRounds(server)
            t.index.revoke(t.client)  # between two rounds: this test and the server share one event loop
            revoked_at = rounds.count
            ends = await asyncio.gather(*(drain(r, 30) for r, _ in streams))
            assert all(ended for _, ended in ends)
            # the first monitor round after the revocation closed the session and all its streams
            assert rounds.round_emptied == revoked_at + 1, (revoked_at, rounds.round_emptied)
            assert not server.sessions
            await until(lambda: client.session is None and echo.open == 0, 15)
            for _, writer in streams:
                writer.close()
            # and a new session is refused in the handshake
            code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", echo.port)
            assert code == GENERAL_FAILURE
            writer.close()
        await client.stop()
        await server.stop()

    run(main(), 30)
    assert logged(caplog, "was revoked: closing its session")
    assert logged(caplog, "certificate revoked")


@pytest.mark.parametrize("case", ["order closed", "order expired", "registration expired"])
def test_live_streams_end_when_order_or_registration_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """What the index learns while streams are open ends them within the monitor interval."""
    caplog.set_level(logging.INFO)
    t = Tunnel(tmp_path)
    end_at = time.time() + 1.5
    if case == "order expired":
        t.order = Order(7, t.client.address, t.provider.address, t.deposit, t.price, int(end_at) + 1)
    t.index.register(t.provider)
    # the wallet registered its certificate until end_at, well before the certificate's own not-after
    t.index.register(t.client, not_after=int(end_at) + 1 if case == "registration expired" else None)
    t.index.add_order(t.order)

    async def main() -> float:
        server = await t.start_provider()
        client = await t.start_client()
        async with EchoServer() as echo:
            code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", echo.port)
            assert code == 0
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
            if case == "order closed":
                t.index.set_status(t.order, "closed")
                ended_at = time.time()
            else:
                ended_at = int(end_at) + 1
            _, ended = await drain(reader, 4)
            late = time.time() - ended_at
            writer.close()
            assert ended
            await until(lambda: echo.open == 0, 15)
        await client.stop()
        await server.stop()
        return late

    late = run(main(), 30)
    assert late < 1.0, late  # type: ignore[operator]
    if case == "registration expired":
        assert logged(caplog, "was expired: closing its session")
    else:
        assert logged(caplog, "provider closed stream 1: ORDER_ENDED")


# 4. malformed input


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        (b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00", b"\x05\xff"),  # SOCKS4
        (b"\x05\x00", b"\x05\xff"),  # no methods
        (b"\x05\x01\x02", b"\x05\xff"),  # username/password only
        (b"\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x00\x05\x07"),  # BIND
        (b"\x05\x01\x00\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x00\x05\x07"),  # UDP ASSOCIATE
        (b"\x05\x01\x00\x05\x01\x00\x05\x7f\x00\x00\x01\x00\x50", b"\x05\x00\x05\x08"),  # ATYP 5
        (b"\x05\x01\x00\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x00\x05\x01"),  # request version 4
        (b"\x05\x01\x00\x05\x01\x01\x01\x7f\x00\x00\x01\x00\x50", b"\x05\x00\x05\x01"),  # reserved byte 1
        (b"\x05\x01\x00\x05\x01\x00\x03\x03a\x00b\x00\x50", b"\x05\x00\x05\x01"),  # NUL in the name
    ],
)
def test_malformed_socks_gets_reply_and_close(tmp_path: Path, payload: bytes, answer: bytes) -> None:
    t = Tunnel(tmp_path).standard()

    async def main() -> None:
        await t.start_provider()
        client = await t.start_client()
        async with EchoServer() as echo:
            reply = await socks_exchange(client.config.listen_port, payload)
            want = answer + b"\x00\x01" + bytes(6) if answer.startswith(b"\x05\x00\x05") else answer
            assert reply == want  # a request's reply has the bound address 0.0.0.0:0
            assert echo.connections == 0
            await check_still_serving(client.config.listen_port, echo.port)
        await client.stop()
        await t.server.stop()

    run(main(), 30)


async def check_still_serving(socks_port: int, echo_port: int) -> None:
    code, reader, writer = await socks_connect(socks_port, "127.0.0.1", echo_port)
    assert code == 0
    writer.write(b"still here")
    assert await asyncio.wait_for(reader.readexactly(10), 5) == b"still here"
    writer.close()


@pytest.mark.parametrize("cut", [1, 2, 4, 7])
def test_truncated_socks_then_closed(tmp_path: Path, cut: int) -> None:
    t = Tunnel(tmp_path).standard()
    full = b"\x05\x01\x00" + b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"

    async def main() -> None:
        await t.start_provider()
        client = await t.start_client()
        async with EchoServer() as echo:
            for close in ("eof", "abort"):
                reader, writer = await asyncio.open_connection("127.0.0.1", client.config.listen_port)
                writer.write(full[:cut])
                if close == "eof":
                    writer.write_eof()
                    rest = await asyncio.wait_for(reader.read(), 5)  # the listener closes its side too
                    assert rest in (b"", b"\x05\x00")
                    assert rest == (b"\x05\x00" if cut >= 3 else b"")
                writer.transport.abort()
            await asyncio.sleep(0.05)
            assert echo.connections == 0
            await check_still_serving(client.config.listen_port, echo.port)
        await client.stop()
        await t.server.stop()

    run(main(), 30)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """A tunnel and an echo server on a loop in a thread, for blocking-socket property tests: (SOCKS, echo) ports."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    t = Tunnel(tmp_path_factory.mktemp("live")).standard()
    echo = EchoServer()

    async def start() -> tuple[int, int]:
        await t.start_provider()
        client = await t.start_client()
        await echo.__aenter__()
        t.live_client = client  # type: ignore[attr-defined]
        return client.config.listen_port, echo.port

    async def stop() -> None:
        await t.live_client.stop()  # type: ignore[attr-defined]
        await t.server.stop()
        await echo.__aexit__()

    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = sock.recv(size - len(out))
        if not chunk:
            break
        out += chunk
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    domain=st.booleans(),
    methods=st.lists(st.integers(1, 255), max_size=4).map(lambda m: [*m, 0]),
    early=st.binary(max_size=3000),
    cuts=st.lists(st.integers(0, 4000), max_size=8),
)
def test_socks_any_chunking_end_to_end(
    live: tuple[int, int], domain: bool, methods: list[int], early: bytes, cuts: list[int]
) -> None:
    """Greeting, request and early data split anywhere still make one working stream through the tunnel."""
    socks_port, echo_port = live
    address = b"\x03\x09127.0.0.1" if domain else b"\x01\x7f\x00\x00\x01"
    message = bytes((5, len(methods), *methods)) + b"\x05\x01\x00" + address + echo_port.to_bytes(2, "big") + early
    points = sorted({c % (len(message) + 1) for c in cuts} | {0, len(message)})
    with socket.create_connection(("127.0.0.1", socks_port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for a, b in itertools.pairwise(points):
            sock.sendall(message[a:b])
            time.sleep(0.002)
        assert _recv_exactly(sock, 12) == b"\x05\x00" + b"\x05\x00\x00\x01" + bytes(6)
        assert _recv_exactly(sock, len(early)) == early
        sock.sendall(b"after")
        assert _recv_exactly(sock, 5) == b"after"


@pytest.mark.parametrize("sent", [b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"])
def test_provider_drops_a_connection_without_handshake(tmp_path: Path, sent: bytes) -> None:
    """Silent or stalled connections to the provider's public port do not hold a socket forever."""
    t = Tunnel(tmp_path).standard()

    async def main() -> None:
        server = await t.start_provider()
        server.config.handshake_timeout = 0.3
        async with EchoServer() as echo:
            client = await t.start_client()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.config.port)
            writer.write(sent)  # nothing, or the start of a ClientHello
            start = time.perf_counter()
            # dropped, and not before the handshake timeout (how much later depends on the machine's load)
            assert await asyncio.wait_for(reader.read(), 30) == b""
            assert time.perf_counter() - start > 0.25
            writer.close()
            await check_still_serving(client.config.listen_port, echo.port)
            await asyncio.sleep(0.5)  # a session that completed its handshake is not dropped
            await check_still_serving(client.config.listen_port, echo.port)
            assert len(server.sessions) == 1
        await client.stop()
        await server.stop()

    run(main(), 30)


class RawHandler:
    """A LinkHandler that records what a raw TLS client receives."""

    def __init__(self) -> None:
        self.up = asyncio.get_running_loop().create_future()
        self.down = asyncio.get_running_loop().create_future()
        self.frames: list[fr.Frame] = []
        self.decoder = fr.FrameDecoder()

    def link_up(self, link: TlsLink, peer_der: bytes) -> None:
        self.up.set_result(link)

    def link_data(self, data: bytes) -> None:
        self.frames += self.decoder.feed(data)

    def link_down(self, error: Exception | None) -> None:
        if not self.down.done():
            self.down.set_result(error)

    def link_pause_writing(self) -> None:
        pass

    def link_resume_writing(self) -> None:
        pass


def frame_bytes(frame: fr.Frame) -> bytes:
    return fr.encode(frame)


def malformed_cases(order_id: bytes, port: int) -> dict[str, list[bytes]]:
    open_ok = frame_bytes(fr.Open(1, order_id, port, "127.0.0.1"))
    return {
        "unknown type": [b"\x09" + bytes(8)],
        "oversized length": [b"\x03\x00\x00\x00\x01" + (1 << 20).to_bytes(4, "big")],
        "OPEN on stream 0": [frame_bytes(fr.Open(0, order_id, port, "127.0.0.1"))],
        "short OPEN": [b"\x01\x00\x00\x00\x01\x00\x00\x00\x05hello"],
        "duplicate OPEN": [open_ok, open_ok],
        "OPEN_RESULT from a client": [frame_bytes(fr.OpenResult(1, 0))],
        "RECEIPT_ACK from a client": [frame_bytes(fr.ReceiptAck(0, 5))],
        "CLOSE with 2 bytes": [b"\x04\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00"],
        "credit overflow": [open_ok, "wait", frame_bytes(fr.Window(1, 0xFFFFFFFF))],  # type: ignore[list-item]
        "DATA after EOF": [open_ok, "wait", frame_bytes(fr.Close(1, 0)), frame_bytes(fr.Data(1, b"x"))],  # type: ignore[list-item]
    }


CASES = list(malformed_cases(bytes(32), 1))


@pytest.mark.parametrize("case", CASES)
def test_malformed_frames_close_only_that_session(tmp_path: Path, case: str) -> None:
    t = Tunnel(tmp_path).standard()

    async def main() -> None:
        server = await t.start_provider()
        client = await t.start_client()
        async with EchoServer() as echo:
            # a healthy session with a live stream
            code, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", echo.port)
            assert code == 0
            # the attacker: the same registered client identity, speaking raw frames
            handler = RawHandler()
            context = make_context(t.client.identity, lambda _der: None, server=False)
            loop = asyncio.get_running_loop()
            await loop.create_connection(
                lambda: TlsLink(context, handler, server=False), "127.0.0.1", server.config.port
            )
            link = await asyncio.wait_for(handler.up, 5)
            await until(lambda: len(server.sessions) == 2, 15)
            for part in malformed_cases(t.order.order_id, echo.port)[case]:
                if part == "wait":
                    await until(lambda: any(isinstance(f, fr.OpenResult) for f in handler.frames), 15)
                    assert handler.frames[-1] == fr.OpenResult(1, fr.OpenStatus.OK)
                    continue
                link.write(part)
            await asyncio.wait_for(handler.down, 5)
            await until(lambda: len(server.sessions) == 1, 15)
            await until(lambda: echo.open == 1, 15)  # the attacker's stream (if any) is gone
            # the other session did not notice
            writer.write(b"unharmed")
            assert await asyncio.wait_for(reader.readexactly(8), 5) == b"unharmed"
            writer.close()
            await check_still_serving(client.config.listen_port, echo.port)
        await client.stop()
        await server.stop()

    run(main(), 30)


# 5. 500 concurrent streams for 30 seconds

STREAMS = 500
HOLD = 30.0


def test_500_concurrent_streams_for_30_seconds(tmp_path: Path) -> None:
    t = Tunnel(tmp_path).standard()
    errors: list[str] = []
    writers: list[asyncio.StreamWriter] = []

    last_echo: dict[int, float] = {}  # per stream, when its latest echo came back

    async def one(port: int, echo_port: int, index: int, deadline: float, alive: set[int]) -> int:
        rounds = 0
        try:
            code, reader, writer = await socks_connect(port, "127.0.0.1", echo_port, timeout=20)
            if code != 0:
                errors.append(f"stream {index}: SOCKS reply {code}")
                return 0
            alive.add(index)
            writers.append(writer)
            await asyncio.sleep((index % 100) / 100)  # spread the rounds over each second
            for rounds in range(1, int(HOLD) + 5):  # bounded: about one round a second
                message = f"{index}:{rounds}:".encode() + bytes(index % 200)
                writer.write(message)
                echo = await asyncio.wait_for(reader.readexactly(len(message)), 10)
                if echo != message:
                    errors.append(f"stream {index}: bad echo in round {rounds}")
                    return rounds
                last_echo[index] = time.monotonic()
                if last_echo[index] >= deadline:
                    break
                await asyncio.sleep(1.0)
            return rounds
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            errors.append(f"stream {index}: {type(exc).__name__} {exc}")
            alive.discard(index)
            return rounds

    async def main() -> None:
        server = await t.start_provider()
        client = await t.start_client()
        async with EchoServer() as echo:
            alive: set[int] = set()
            start = time.monotonic()
            deadline = start + HOLD
            tasks = [
                asyncio.create_task(one(client.config.listen_port, echo.port, i, deadline, alive))
                for i in range(STREAMS)
            ]
            await until(lambda: len(alive) == STREAMS or errors, 20)
            assert not errors, errors[:5]
            rounds = await asyncio.wait_for(asyncio.gather(*tasks), HOLD + 20)
            assert not errors, errors[:5]
            assert time.monotonic() - start >= HOLD
            assert len(alive) == STREAMS
            # every stream echoed until the end of the hold, however slowly a loaded machine ran its rounds
            assert len(last_echo) == STREAMS and min(last_echo.values()) >= deadline
            assert min(rounds) >= 2
            # all 500 are still open end to end at the end
            assert echo.open == STREAMS
            session = client.session
            assert session is not None and len(session.streams) == STREAMS
            assert sum(len(s.streams) for s in server.sessions) == STREAMS
            assert client.stats["refused"] == 0 and client.stats["streams"] == STREAMS
            assert server.stats["streams"] == STREAMS and server.stats["refused_handshakes"] == 0
            for writer in writers:
                writer.close()
        await client.stop()
        await server.stop()

    run(main(), HOLD + 60)


def test_provider_verifies_receipts_like_the_market(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Receipts from a raw client: only a valid, newer one is stored and acknowledged; bad ones leave the session up."""
    caplog.set_level(logging.INFO)
    t = Tunnel(tmp_path).standard()
    signer = ReceiptSigner(bytes(t.client.account.key), DOMAIN)  # type: ignore[attr-defined]
    stranger = ReceiptSigner(bytes(Account.create().key), DOMAIN)
    oid = t.order.order_id

    def frame(receipt: Receipt, signature: bytes) -> bytes:
        return fr.encode(
            fr.ReceiptFrame(0, receipt.order_id, receipt.cumulative_bytes, receipt.cumulative_amount, signature)
        )

    good = Receipt(oid, MIB, cost_of(MIB, t.price))
    sig = signer.sign(good)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = sig[:32] + (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big") + bytes((55 - sig[64],))
    greedy = Receipt(oid, MIB, cost_of(MIB, t.price) + 1)
    bad = [
        (frame(good, stranger.sign(good)), "receipt signed by"),
        (frame(good, high_s), "high s value"),
        (frame(good, sig[:64] + b"\x01"), "not 27 or 28"),
        (frame(greedy, signer.sign(greedy)), "is more than"),
        (
            frame(Receipt(oid, 2**80, t.deposit + 1), signer.sign(Receipt(oid, 2**80, t.deposit + 1))),
            "exceeds the deposit",
        ),
    ]

    async def main() -> None:
        server = await t.start_provider()
        handler = RawHandler()
        context = make_context(t.client.identity, lambda _der: None, server=False)
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: TlsLink(context, handler, server=False), "127.0.0.1", server.config.port)
        link = await asyncio.wait_for(handler.up, 5)
        for raw, why in bad:
            link.write(raw)
            await until(lambda why=why: logged(caplog, why), 15)  # type: ignore[misc]
        link.write(frame(good, sig))
        await until(lambda: fr.ReceiptAck(0, good.cumulative_amount) in handler.frames, 15)
        link.write(frame(good, sig))  # a replay
        await until(lambda: logged(caplog, "is not more than the"), 15)
        # one acknowledgement with the provider's metered count (no stream: 0 bytes), and nothing else but
        # the provider's session confirmation
        await until(lambda: fr.Meter(0, oid, 0) in handler.frames, 15)
        assert [f for f in handler.frames if f != fr.Window(0, 0)] == [
            fr.ReceiptAck(0, good.cumulative_amount),
            fr.Meter(0, oid, 0),
        ]
        assert not handler.down.done() and len(server.sessions) == 1
        stored = t.book.latest(oid)
        assert stored is not None and (stored.receipt, stored.signature) == (good, sig)
        link.close()
        await server.stop()

    run(main(), 30)


def test_tls_context_is_tls13_only_and_encrypts_whole_writes() -> None:
    from OpenSSL import SSL

    node = make_node()
    ctx = make_context(node.identity, lambda _der: None, server=True)
    partial_write = 0x1  # SSL_MODE_ENABLE_PARTIAL_WRITE: one record per SSL_write, a Python call per 16 KiB
    assert ctx.set_mode(0) & partial_write == 0
    big = os.urandom(256 * 1024)
    client = SSL.Connection(make_context(make_node().identity, lambda _der: None, server=False), None)
    client.set_connect_state()
    server = SSL.Connection(ctx, None)
    server.set_accept_state()
    for _ in range(10):  # a memory-BIO handshake
        for a, b in ((client, server), (server, client)):
            with contextlib.suppress(SSL.WantReadError):
                a.do_handshake()
            with contextlib.suppress(SSL.WantReadError):
                b.bio_write(a.bio_read(1 << 20))
    assert client.get_protocol_version_name() == "TLSv1.3"
    assert client.send(big) == len(big)  # all of it in one call, not one 16 KiB record
    # The receiving side decrypts every record into one buffer through pyOpenSSL's binding.
    from flownet.tunnel.tls import DRAIN_SIZE, _Reader

    reader = _Reader(server, None)  # type: ignore[arg-type]
    assert reader.fast
    server.bio_write(client.bio_read(1 << 20))
    data, ended = reader.drain()
    assert data == big and ended is None
    slow = _Reader(server, None)  # type: ignore[arg-type]
    slow.fast = False
    client.send(big[:1000])
    server.bio_write(client.bio_read(1 << 20))
    assert slow.drain() == (big[:1000], None)
    assert DRAIN_SIZE >= 16 * 1024
