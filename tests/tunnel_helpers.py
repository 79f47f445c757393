"""An in-process tunnel for tests: a provider and a client on one event loop, over a hand-written index.

The index is a real migrated ledger database whose `orders`, `certificates` and `stakers` rows are
written directly (as the indexer would after the chain events), so every refusal can be staged without
a chain. `LocalWeb` serves files on 127.0.0.1 from a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from flownet.certstatus import lookup, verdict
from flownet.core.receipts import MarketDomain, Order
from flownet.pki import inspect, new_identity
from flownet.tunnel import frames as fr
from flownet.tunnel.book import PaymentBook
from flownet.tunnel.client import ClientConfig, ClientTunnel, ReceiptLog, provider_identity_check
from flownet.tunnel.faults import Faults
from flownet.tunnel.payment import ReceiptSigner, ServiceProofSigner
from flownet.tunnel.policy import DestinationPolicy
from flownet.tunnel.server import OrderAccount, ProviderConfig, ProviderServer
from flownet.tunnel.tls import Identity, TlsLink, make_context
from indexer.projections import amt, cert_key
from indexer.store import Ledger

CHAIN_ID = 31337
MARKET = "0x" + "ab" * 20
SLASHING = "0x" + "5c" * 20
GIB = 1 << 30


@dataclass
class Node:
    account: object
    identity: Identity
    cert_hash: bytes

    @property
    def address(self) -> str:
        return str(self.account.address)  # type: ignore[attr-defined]


def make_node(days: int = 30, chain_id: int = CHAIN_ID, account: object = None) -> Node:
    """A wallet (new, or `account`) with its own certificate for `chain_id`."""
    account = account or Account.create()
    key, certificate = new_identity(account.address, chain_id, days)
    return Node(account, Identity.of(certificate, key), inspect(certificate).cert_hash)


class FakeIndex:
    """A ledger database with orders and certificates written by hand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        Ledger(path, {"BandwidthMarket": MARKET}, CHAIN_ID).close()
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def register(self, node: Node, not_after: int | None = None, owner: str | None = None) -> None:
        """`owner` (default: the node's wallet) registers the node's certificate."""
        info = inspect(node.identity.certificate)
        owner = owner or node.address
        self.conn.execute(
            "INSERT INTO certificates (cert_key, cert_hash, owner, key_hash, pem_cid, not_after, registered_block)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                cert_key(owner, "0x" + info.cert_hash.hex()),
                "0x" + info.cert_hash.hex(),
                owner,
                "0x" + info.key_hash.hex(),
                "bafytest",
                info.not_after if not_after is None else not_after,
                1,
            ),
        )

    def revoke(self, node: Node, owner: str | None = None) -> None:
        """`owner` (default: the node's wallet) revokes its record of the node's certificate."""
        self.conn.execute(
            "UPDATE certificates SET revoked = 1, revoked_at = ?, reason = 1, revoked_block = 2 WHERE cert_key = ?",
            (int(time.time()), cert_key(owner or node.address, "0x" + node.cert_hash.hex())),
        )

    def stake(self, address: str, role: str, active: int, thawing: int = 0) -> None:
        """The wallet's stake as Staking's events left it (`role`: provider or verifier)."""
        self.conn.execute(
            "INSERT OR REPLACE INTO stakers (address, role, active, locked, thawing, thaw_end, price, metadata_cid,"
            " slashed, updated_block, held) VALUES (?, ?, ?, ?, ?, 0, ?, NULL, ?, 1, ?)",
            (address, role, amt(active), amt(0), amt(thawing), amt(0), amt(0), amt(0)),
        )

    def add_order(self, order: Order, status: str = "open") -> None:
        self.conn.execute(
            "INSERT INTO orders (order_id, nonce, client, provider, deposit, price, expiry, locked_stake, paid,"
            " paid_bytes, refunded, status, opened_block) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                "0x" + order.order_id.hex(),
                order.nonce,
                order.client,
                order.provider,
                str(order.deposit),
                str(order.price_per_gib),
                order.expiry,
                "0",
                "0",
                "0",
                "0",
                status,
                1,
            ),
        )

    def set_status(self, order: Order, status: str) -> None:
        self.conn.execute("UPDATE orders SET status = ? WHERE order_id = ?", (status, "0x" + order.order_id.hex()))


class _Remembering(dict[bytes, OrderAccount]):
    """The server's order accounts, also appending every account stored to `seen`."""

    def __init__(self, seen: list[OrderAccount]) -> None:
        super().__init__()
        self.seen = seen

    def __setitem__(self, key: bytes, value: OrderAccount) -> None:
        if all(value is not a for a in self.seen):
            self.seen.append(value)
        super().__setitem__(key, value)


@dataclass
class Tunnel:
    """A provider server and a client tunnel sharing one loop (run it with `asyncio.run`)."""

    tmp: Path
    price: int = 10**18  # 1 FLOW per GiB
    deposit: int = 100 * 10**18
    credit_window: int = 16 << 20
    receipt_interval: int = 4 << 20
    payment_timeout: float = 30.0
    pay: bool = True
    monitor_interval: float = 0.05
    provider: Node = field(default_factory=make_node)
    client: Node = field(default_factory=make_node)
    nonce: int = 1
    # ServiceProofs: the SlashingManager address both sides use (None: off) and the epoch length
    slashing_manager: str | None = None
    epoch_seconds: int = 60
    client_clock: object = None  # a callable returning unix time for the client's epochs (default time.time)
    # the chain's time, which the provider's SlashingManager epochs follow (default: client_clock, else time.time)
    chain_clock: object = None
    chain_id: int = CHAIN_ID  # the nodes' certificates must be made for this chain

    def __post_init__(self) -> None:
        self.index = FakeIndex(self.tmp / "index.sqlite")
        self.order = Order(
            self.nonce, self.client.address, self.provider.address, self.deposit, self.price, int(time.time()) + 3600
        )
        self.book = PaymentBook(self.tmp / "payments.sqlite")
        self.receipts = ReceiptLog(self.tmp / "client-receipts.sqlite")

    def standard(self) -> Tunnel:
        """Both certificates registered and the order open."""
        self.index.register(self.provider)
        self.index.register(self.client)
        self.index.add_order(self.order)
        return self

    async def start_provider(
        self,
        allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128"),
        node: Node | None = None,
        faults: Faults | None = None,
    ) -> ProviderServer:
        """The provider's server; `node` serves under another identity than the order's provider;
        `faults` makes it misbehave (flownet.tunnel.faults)."""
        node = node or self.provider
        config = ProviderConfig(
            identity=node.identity,
            provider=node.address,
            domain=MarketDomain(self.chain_id, MARKET),
            index_path=self.index.path,
            book=self.book,
            policy=DestinationPolicy.parse(allow),
            port=0,
            credit_window=self.credit_window,
            payment_timeout=self.payment_timeout,
            monitor_interval=self.monitor_interval,
            faults=faults,
            slashing_manager=self.slashing_manager,
            epoch_seconds=self.epoch_seconds,
            epoch_clock=self.chain_clock or self.client_clock,  # type: ignore[arg-type]
        )
        server = ProviderServer(config)
        await server.start()
        self.server = server
        self.accounts: list[OrderAccount] = []
        server.accounts = _Remembering(self.accounts)  # every account the server creates, even once evicted
        return server

    def metered(self) -> int:
        """Bytes the provider metered for the order, over every account it held for it."""
        return max((a.metered for a in self.accounts if a.order.order_id == self.order.order_id), default=0)

    def registered(self, cert_hash: bytes, owner: str | None = None) -> bool:
        """The client's view of the registry (isValid) from the index: `owner`'s (default: the order's
        provider's) record of the certificate is live and its stake counts."""
        record = lookup(self.index.conn, cert_hash, owner or self.order.provider)
        return verdict(self.index.conn, record, int(time.time())) == "valid"

    async def start_client(self, node: Node | None = None, order: Order | None = None) -> ClientTunnel:
        node = node or self.client
        order = order or self.order
        config = ClientConfig(
            identity=node.identity,
            order=order,
            domain=MarketDomain(self.chain_id, MARKET),
            signer=ReceiptSigner(bytes(node.account.key), MarketDomain(self.chain_id, MARKET)),  # type: ignore[attr-defined]
            provider_host="127.0.0.1",
            provider_port=self.server.config.port,
            provider_check=provider_identity_check(
                order, self.chain_id, functools.partial(self.registered, owner=order.provider)
            ),
            receipts=self.receipts,
            listen_port=0,
            receipt_interval=self.receipt_interval,
            pay=self.pay,
        )
        if self.slashing_manager is not None:
            config.proofs = ServiceProofSigner(bytes(node.account.key), self.chain_id, self.slashing_manager)  # type: ignore[attr-defined]
            config.epoch_seconds = self.epoch_seconds
            if self.client_clock is not None:
                config.clock = self.client_clock  # type: ignore[assignment]
        tunnel = ClientTunnel(config)
        await tunnel.start()
        return tunnel


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalWeb:
    """A threaded HTTP server on 127.0.0.1 serving `directory`."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_Quiet, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LocalWeb:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def random_file(directory: Path, name: str, size: int) -> Iterator[Path]:
    path = directory / name
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            f.write(chunk)
            left -= len(chunk)
    yield path


def run(coro: object, timeout: float = 120) -> object:
    async def bounded() -> object:
        return await asyncio.wait_for(coro, timeout)  # type: ignore[arg-type]

    if os.environ.get("FLOWNET_TEST_LOOP") == "uvloop":
        import uvloop

        return uvloop.run(bounded())
    return asyncio.run(bounded())


class EchoServer:
    """An asyncio TCP echo server on 127.0.0.1 that counts its connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> EchoServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            writer.close()


async def socks_connect(
    port: int, host: str, dest_port: int, timeout: float = 10
) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw SOCKS5 CONNECT (no auth, domain address) to the listener on `port`: (reply code, reader, writer)."""

    async def go() -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x05\x01\x00")
        selected = await reader.readexactly(2)
        assert selected == b"\x05\x00", selected
        raw = host.encode("ascii")
        writer.write(b"\x05\x01\x00\x03" + bytes((len(raw),)) + raw + dest_port.to_bytes(2, "big"))
        head = await reader.readexactly(4)
        assert head[0] == 5 and head[2] == 0, head
        rest = {1: 4, 4: 16}.get(head[3])
        if rest is None:
            rest = (await reader.readexactly(1))[0]
        await reader.readexactly(rest + 2)
        return head[1], reader, writer

    return await asyncio.wait_for(go(), timeout)


async def socks_exchange(port: int, payload: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes to the SOCKS listener, half-close, and return everything it answers until it closes."""

    async def go() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        try:
            return await reader.read(-1)
        except ConnectionResetError:
            return b"<reset>"
        finally:
            writer.close()

    return await asyncio.wait_for(go(), timeout)


class MonitorRounds:
    """Counts a provider's monitor rounds (`check_once`), so a test bounds a reaction in rounds, not seconds.

    A round is the provider's unit of reaction time: on a loaded machine its sleep stretches but a round
    is still a round. `round_emptied` is the round after which the server first had no session left.
    """

    def __init__(self, server: Any) -> None:
        self.count = 0
        self.round_emptied: int | None = None
        self._server = server
        original = server.check_once

        def counted() -> None:
            original()
            self.count += 1
            if self.round_emptied is None and not server.sessions:
                self.round_emptied = self.count

        server.check_once = counted


class RawClient:
    """A client speaking raw frames over TLS with a node's certificate: an attacker, or a precise test.

    It records every frame the provider sends; `down` resolves when the session ends (with its error).
    """

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.up: asyncio.Future[TlsLink] = loop.create_future()
        self.down: asyncio.Future[Exception | None] = loop.create_future()
        self.frames: list[fr.Frame] = []
        self.decoder = fr.FrameDecoder()
        self.link: TlsLink | None = None

    @classmethod
    async def connect(cls, node: Node, port: int, timeout: float = 10) -> RawClient:
        """A session to the provider on `port` under `node`'s certificate, once the provider accepted it."""
        raw = cls()
        context = make_context(node.identity, lambda _der: None, server=False)
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: TlsLink(context, raw, server=False), "127.0.0.1", port)
        raw.link = await asyncio.wait_for(raw.up, timeout)
        return raw

    async def accepted(self, timeout: float = 10) -> None:
        """Wait for the provider's session confirmation (WINDOW on stream 0)."""
        await wait_until(lambda: fr.Window(0, 0) in self.frames or self.down.done(), timeout)
        assert fr.Window(0, 0) in self.frames, "the provider did not accept the session"

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

    def send(self, *frames: fr.Frame | bytes) -> None:
        assert self.link is not None
        self.link.write(b"".join(f if isinstance(f, bytes) else fr.encode(f) for f in frames))

    def results(self) -> dict[int, int]:
        """OPEN_RESULT status per stream id."""
        return {f.stream_id: f.status for f in self.frames if isinstance(f, fr.OpenResult)}

    def credit(self, stream_id: int) -> int:
        """Upload window the provider granted on `stream_id` so far."""
        return sum(f.credit for f in self.frames if isinstance(f, fr.Window) and f.stream_id == stream_id)

    def close(self) -> None:
        if self.link is not None:
            self.link.close()

    def abort(self) -> None:
        """Drop the TCP connection without a goodbye (RST)."""
        if self.link is not None:
            self.link.abort()


async def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.01) -> float:
    """Wait until `predicate()` is true (at most `timeout` seconds); the seconds it took."""
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
    return time.perf_counter() - start


class Sink:
    """An asyncio TCP server on 127.0.0.1 that reads and counts everything (an upload destination)."""

    def __init__(self) -> None:
        self.received = 0
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Sink:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(1 << 16):
                self.received += len(data)
        except ConnectionError:
            pass
        finally:
            writer.close()
