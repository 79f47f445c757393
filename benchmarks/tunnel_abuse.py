"""The provider's tunnel under abuse: an honest client's figures before and during each attack, and its RSS.

    .venv/bin/python benchmarks/tunnel_abuse.py [--duration 10] [--baseline 5] [--keep DIR]
    .venv/bin/python benchmarks/tunnel_abuse.py --attacks unpaid-windows,dns-starve   # a subset

A whole tunnel runs on 127.0.0.1 as users run it (`LocalTunnelNet`: a devnet, a real `flownet provider
serve` and an honest `flownet client connect`), plus three more wallets for the attackers: mallory and
trudy and eve (registered certificates, orders of their own, never paying) and a stranger (a
registered certificate, no order). The provider process is given two things a real deployment has and a loopback
test does not, through a `sitecustomize` on its PYTHONPATH: names under `.blackhole.test` whose DNS never
answers (getaddrinfo blocks 60 s, then fails: no query leaves the machine), and an open-file limit of
1,024 (soft and hard), as on a default Linux system.

The honest client is measured once a second, each time: three new TLS sessions with its certificate
up to the provider's acceptance (handshake), three SOCKS5 CONNECTs to `localhost` (resolved by the
provider) each with a 1 KiB GET up to its first byte (SOCKS round trip), the medians of both, and a
download of 8 MiB through its SOCKS proxy.
For each attack it is measured for `--baseline` seconds just before (the baseline), for `--duration`
seconds while an attacker process runs, and twice after it stopped. The provider's RSS is sampled
five times a second. Each attack is bounded in count and time:

- unpaid-windows: mallory opens 1,024 streams on one order in two sessions before any byte and pushes
  1 MiB on each, no receipt (again whenever a session is closed);
- wallet-orders: trudy downloads on 4 orders at once, 8 streams each, granting window, never paying;
- connect-reset: 9,000 TCP connections that send half a ClientHello and reset;
- idle-sockets: 1,000 idle connections held open;
- dns-starve: eve sends 1,000 OPENs to `*.blackhole.test` names every second, each time in a new
  session that leaves after a second;
- receipt-flood: eve sends valid receipts, one wei more each, 10,000 a second;
- proof-flood: eve sends validly signed service proofs for made-up epochs, 10,000 a second;
- drop-sessions: eve opens 300 sessions of 20 streams each and drops every one (TCP reset);
- unknown-streams: the stranger pushes DATA for a stream it never opened, reconnecting when cut off;
- open-refusals: the stranger sends OPENs for an order that does not exist, 10,000 a second.

The table prints, per attack, each honest figure before (baseline) and during (median of the samples;
`fail` counts samples that failed), the ratio during/baseline (baseline/during for throughput), the
provider's RSS before and at its peak, what the provider logged meanwhile, the CPU seconds the
provider and the attacker used during the attack (they share the machine with the honest client),
and what the attacker did and got (`sink_bytes`: bytes its streams delivered to its own server).
The target: every ratio within 2 and the RSS under 300 MiB through every attack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's flownet

from OpenSSL import SSL  # noqa: E402

from flownet.tunnel import frames as fr  # noqa: E402
from flownet.tunnel.tls import Identity, TlsLink, make_context  # noqa: E402

HOST = "127.0.0.1"
MIB = 1 << 20
ATTACKS = (
    "unpaid-windows",
    "wallet-orders",
    "connect-reset",
    "idle-sockets",
    "dns-starve",
    "receipt-flood",
    "proof-flood",
    "drop-sessions",
    "unknown-streams",
    "open-refusals",
)
SHIM = '''"""benchmarks/tunnel_abuse.py: for `flownet provider serve` only, names under .blackhole.test never
resolve (a DNS server that never answers: getaddrinfo blocks 60 s, then fails) and the open-file limit
is FLOWNET_BENCH_NOFILE, soft and hard."""
import os
import sys

if "provider" in sys.argv and "serve" in sys.argv:
    import resource
    import socket
    import time

    _real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith(".blackhole.test"):
            time.sleep(60)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return _real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    _nofile = int(os.environ.get("FLOWNET_BENCH_NOFILE", "0"))
    if _nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_nofile, _nofile))
'''


def log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- the honest client


@dataclass
class Sample:
    handshake_ms: float | None = None
    rtt_ms: float | None = None
    mb_s: float | None = None


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:  # bounded: each recv returns >= 1 byte or raises
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += part
    return bytes(buf)


def socks_open(proxy: int, host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((HOST, proxy), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"\x05\x01\x00")
    if recv_exact(sock, 2) != b"\x05\x00":
        raise ConnectionError("SOCKS greeting refused")
    name = host.encode()
    sock.sendall(b"\x05\x01\x00\x03" + bytes((len(name),)) + name + port.to_bytes(2, "big"))
    head = recv_exact(sock, 4)
    if head[1] != 0:
        raise ConnectionError(f"SOCKS reply {head[1]}")
    recv_exact(sock, {1: 4, 4: 16}.get(head[3], 0) + 2)
    return sock


class Honest:
    """The honest client's three measurements."""

    def __init__(self, identity: Identity, provider_port: int, socks_port: int, web_port: int) -> None:
        self.context = make_context(identity, lambda _der: None, server=False)
        self.provider_port = provider_port
        self.socks_port = socks_port
        self.web_port = web_port

    def handshake(self) -> float:
        start = time.perf_counter()
        with socket.create_connection((HOST, self.provider_port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)  # pyOpenSSL needs a blocking socket; the kernel bounds each wait instead
            for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
                sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", 10, 0))
            conn = SSL.Connection(self.context, sock)
            conn.set_connect_state()
            conn.do_handshake()
            accept = fr.encode(fr.Window(0, 0))
            got = b""
            while len(got) < len(accept):  # the provider's acceptance, after it judged our certificate
                part = conn.recv(len(accept) - len(got))
                if not part:
                    raise ConnectionError("the provider closed the session")
                got += part
            elapsed = time.perf_counter() - start
            if got != accept:
                raise ConnectionError(f"unexpected first frame {got!r}")
            with contextlib.suppress(SSL.Error):
                conn.shutdown()
        return elapsed * 1000

    def round_trip(self) -> float:
        start = time.perf_counter()
        with socks_open(self.socks_port, "localhost", self.web_port, 10) as sock:
            sock.sendall(b"GET /small HTTP/1.0\r\nHost: localhost\r\n\r\n")
            if not sock.recv(1):
                raise ConnectionError("no answer")
            elapsed = time.perf_counter() - start
            while sock.recv(65536):  # the rest of a 1 KiB answer
                pass
        return elapsed * 1000

    def download(self) -> float:
        with socks_open(self.socks_port, HOST, self.web_port, 30) as sock:
            start = time.perf_counter()
            sock.sendall(b"GET /blob HTTP/1.0\r\nHost: x\r\n\r\n")
            got = 0
            while part := sock.recv(1 << 20):
                got += len(part)
            elapsed = time.perf_counter() - start
        if got < 8 * MIB:
            raise ConnectionError(f"only {got} bytes")
        return 8 * MIB / elapsed / 1e6

    def sample(self) -> Sample:
        """Three handshakes and three round trips (their median), and one download."""
        out = Sample()
        for name, measure, times in (
            ("handshake_ms", self.handshake, 3),
            ("rtt_ms", self.round_trip, 3),
            ("mb_s", self.download, 1),
        ):
            values = []
            for _ in range(times):
                with contextlib.suppress(OSError, SSL.Error):
                    values.append(measure())
            if len(values) == times:  # a failure fails the sample
                setattr(out, name, statistics.median(values))
        return out


def measure(honest: Honest, seconds: float) -> list[Sample]:
    """One sample a second for `seconds` (a slow sample delays the next; bounded by the deadline)."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        samples.append(honest.sample())
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return samples


class Rss:
    """The provider's resident memory, sampled 5 times a second from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.current = self.read()
        self.peak = self.current
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def read(self) -> float:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.current = self.read()
            self.peak = max(self.peak, self.current)

    def cpu(self) -> float:
        """CPU seconds the provider used so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def reset_peak(self) -> None:
        self.peak = self.current = self.read()

    def stop(self) -> None:
        self._stop.set()


# ---------------------------------------------------------------- the attacker (its own process)


class Raw:
    """A raw FlowNet client session (asyncio): frames out as they are, frames in counted and kept."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.up: asyncio.Future[TlsLink] = loop.create_future()
        self.down: asyncio.Future[None] = loop.create_future()
        self.decoder = fr.FrameDecoder()
        self.results: dict[int, int] = {}
        self.accepted = False
        self.paused = False
        self.link: TlsLink | None = None
        self.received = 0  # DATA bytes from the provider
        self.window_back = False  # grant the provider window again for what it sent (a client that reads)
        self._unacked: dict[int, int] = {}

    def link_up(self, link: TlsLink, peer_der: bytes) -> None:
        self.link = link
        self.up.set_result(link)

    def link_data(self, data: bytes) -> None:
        with contextlib.suppress(Exception):
            for frame in self.decoder.feed(data):
                if isinstance(frame, fr.OpenResult):
                    self.results[frame.stream_id] = frame.status
                elif isinstance(frame, fr.Window) and frame.stream_id == 0:
                    self.accepted = True
                elif isinstance(frame, fr.Data):
                    self.received += len(frame.data)
                    if self.window_back and self.link is not None:
                        unacked = self._unacked.get(frame.stream_id, 0) + len(frame.data)
                        if unacked >= 256 * 1024:
                            self.link.write(fr.encode(fr.Window(frame.stream_id, unacked)))
                            unacked = 0
                        self._unacked[frame.stream_id] = unacked

    def link_down(self, error: Exception | None) -> None:
        if not self.down.done():
            self.down.set_result(None)
        if not self.up.done():
            self.up.set_exception(ConnectionError(str(error)))

    def link_pause_writing(self) -> None:
        self.paused = True

    def link_resume_writing(self) -> None:
        self.paused = False

    async def send(self, data: bytes) -> None:
        if self.link is None or self.down.done():
            return
        self.link.write(data)
        await asyncio.sleep(0)  # let the loop run (and hear of a closed connection)
        for _ in range(500):  # let the socket drain (at most 5 s)
            if not self.paused or self.down.done():
                return
            await asyncio.sleep(0.01)

    def close(self) -> None:
        if self.link is not None:
            self.link.close()

    def abort(self) -> None:
        if self.link is not None:
            self.link.abort()


@dataclass
class Spec:
    provider_port: int
    web_port: int
    password: str
    home: str
    chain_id: int
    market: str
    slashing: str
    orders: dict[str, list[list[object]]] = field(default_factory=dict)  # wallet -> order fields


class Attacker:
    def __init__(self, spec: Spec, name: str, duration: float) -> None:
        self.spec = spec
        self.name = name
        self.deadline = 0.0
        self.duration = duration
        self.stats: dict[str, float] = {}
        self.sink_bytes = 0
        self.cpu_at_go = 0.0

    def identity(self, wallet: str) -> Identity:
        certs = Path(self.spec.home) / "certs"
        return Identity.load(certs / f"{wallet}.crt.pem", certs / f"{wallet}.key.pem", self.spec.password)

    def order(self, wallet: str, index: int) -> object:
        from flownet.core.receipts import Order

        fields = self.spec.orders[wallet][index]
        return Order(*fields)  # type: ignore[arg-type]

    def account(self, wallet: str) -> object:
        from flownet.wallet import Keystores

        return Keystores(Path(self.spec.home) / "keystores").unlock(wallet, self.spec.password)

    @property
    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def count(self, key: str, n: float = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    async def session(self, context: SSL.Context) -> Raw | None:
        raw = Raw()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: TlsLink(context, raw, server=False), HOST, self.spec.provider_port), 10
            )
            await asyncio.wait_for(raw.up, 10)
            for _ in range(500):
                if raw.accepted or raw.down.done():
                    break
                await asyncio.sleep(0.01)
        except (OSError, TimeoutError, ConnectionError):
            self.count("sessions_failed")
            return None
        if not raw.accepted:
            self.count("sessions_refused")
            return None
        self.count("sessions")
        return raw

    async def sink(self) -> int:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(1 << 16):
                    self.sink_bytes += len(data)
            writer.close()

        server = await asyncio.start_server(serve, HOST, 0, backlog=1024)
        return int(server.sockets[0].getsockname()[1])

    async def run(self, ready: asyncio.Event) -> dict[str, float]:
        prepare = getattr(self, "prepare_" + self.name.replace("-", "_"), None)
        state = await prepare() if prepare is not None else None
        ready.set()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # "go"
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_at_go = usage.ru_utime + usage.ru_stime
        self.deadline = time.monotonic() + self.duration
        attack = getattr(self, "attack_" + self.name.replace("-", "_"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(attack(state), self.duration + 5)
        self.stats["sink_bytes"] = self.sink_bytes
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.stats["cpu_ms"] = 1000 * (usage.ru_utime + usage.ru_stime - self.cpu_at_go)
        return self.stats

    # the attacks

    async def attack_unpaid_windows(self, _state: object) -> None:
        context = make_context(self.identity("mallory"), lambda _der: None, server=False)
        order = self.order("mallory", 0)
        port = await self.sink()
        chunk = fr.encode(fr.Data(1, bytes(fr.MAX_PAYLOAD)))[9:]

        async def one(ids: range) -> None:
            for _ in range(20):  # rounds, each until the provider closes the session
                if not self.running:
                    return
                raw = await self.session(context)
                if raw is None:
                    await asyncio.sleep(0.2)
                    continue
                await raw.send(b"".join(fr.encode(fr.Open(i, order.order_id, port, HOST)) for i in ids))  # type: ignore[attr-defined]
                for _ in range(200):
                    if len(raw.results) == len(ids) or raw.down.done():
                        break
                    await asyncio.sleep(0.01)
                for i in ids:  # 1 MiB on every stream, as if each had a 1 MiB window
                    header = bytes((fr.FrameType.DATA,)) + i.to_bytes(4, "big") + len(chunk).to_bytes(4, "big")
                    await raw.send((header + chunk) * 16)
                    self.count("pushed_bytes", 16 * len(chunk))
                    if raw.down.done():
                        break
                raw.close()

        await asyncio.gather(one(range(1, 1024, 2)), one(range(1, 1024, 2)))

    async def attack_wallet_orders(self, _state: object) -> None:
        context = make_context(self.identity("trudy"), lambda _der: None, server=False)
        got = [0]

        async def one(index: int) -> None:
            order = self.order("trudy", index)
            raw = await self.session(context)
            if raw is None:
                return
            raw.window_back = True
            ids = range(1, 17, 2)
            await raw.send(b"".join(fr.encode(fr.Open(i, order.order_id, self.spec.web_port, HOST)) for i in ids))  # type: ignore[attr-defined]
            for _ in range(500):  # the answers (at most 5 s)
                if len(raw.results) == len(ids) or raw.down.done():
                    break
                await asyncio.sleep(0.01)
            get = b"GET /big HTTP/1.0\r\nHost: x\r\n\r\n"
            for i in ids:
                if raw.results.get(i) == fr.OpenStatus.OK:
                    await raw.send(fr.encode(fr.Data(i, get)))
            while self.running and not raw.down.done():
                await asyncio.sleep(0.1)
            got[0] += raw.received
            raw.close()

        await asyncio.gather(*(one(i) for i in range(4)))
        self.stats["received_bytes"] = got[0]

    async def attack_connect_reset(self, _state: object) -> None:
        hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32)
        left = [9000]

        async def worker() -> None:
            loop = asyncio.get_running_loop()
            while left[0] > 0 and self.running:
                left[0] -= 1
                sock = socket.socket()
                sock.setblocking(False)
                try:
                    await asyncio.wait_for(loop.sock_connect(sock, (HOST, self.spec.provider_port)), 5)
                    await loop.sock_sendall(sock, hello)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.count("connections")
                except (OSError, TimeoutError):
                    self.count("connect_failed")
                finally:
                    sock.close()

        await asyncio.gather(*(worker() for _ in range(50)))

    async def attack_idle_sockets(self, _state: object) -> None:
        held = []
        for _ in range(1000):
            if not self.running:
                break
            with contextlib.suppress(OSError, TimeoutError):
                held.append(await asyncio.wait_for(asyncio.open_connection(HOST, self.spec.provider_port), 5))
        self.stats["opened"] = len(held)
        while self.running:
            await asyncio.sleep(0.1)

        async def closed(reader: asyncio.StreamReader) -> bool:
            try:
                return await asyncio.wait_for(reader.read(1), 0.2) == b""
            except TimeoutError:
                return False
            except ConnectionError:
                return True

        ended = await asyncio.gather(*(closed(r) for r, _ in held))
        self.stats["closed_by_provider"] = sum(ended)
        for _, writer in held:
            writer.close()

    async def attack_dns_starve(self, _state: object) -> None:
        context = make_context(self.identity("eve"), lambda _der: None, server=False)
        order = self.order("eve", 0)
        rounds = 0
        while self.running and rounds < 60:
            rounds += 1
            raw = await self.session(context)
            if raw is None:
                await asyncio.sleep(0.5)
                continue
            await raw.send(
                b"".join(
                    fr.encode(fr.Open(2 * i + 1, order.order_id, 80, f"r{rounds}n{i}.blackhole.test"))  # type: ignore[attr-defined]
                    for i in range(1000)
                )
            )
            self.count("opens", 1000)
            await asyncio.sleep(1.0)
            self.count("answered", len(raw.results))
            raw.close()  # the attacker leaves; the next round comes back

    async def prepare_receipt_flood(self) -> list[bytes]:
        from flownet.core.receipts import MarketDomain, Receipt
        from flownet.tunnel.payment import ReceiptSigner

        order = self.order("eve", 1)
        signer = ReceiptSigner(bytes(self.account("eve").key), MarketDomain(self.spec.chain_id, self.spec.market))  # type: ignore[attr-defined]
        oid = order.order_id  # type: ignore[attr-defined]
        batches = []
        amount = 0
        for _ in range(int(self.duration) + 1):
            frames = []
            for _ in range(10_000):
                amount += 1
                sig = signer.sign(Receipt(oid, 1, amount))
                frames.append(fr.encode(fr.ReceiptFrame(0, oid, 1, amount, sig)))
            batches.append(b"".join(frames))
        return batches

    async def attack_receipt_flood(self, batches: list[bytes]) -> None:
        context = make_context(self.identity("eve"), lambda _der: None, server=False)
        raw = await self.session(context)
        if raw is None:
            return
        for batch in batches:
            if not self.running or raw.down.done():
                break
            start = time.monotonic()
            await raw.send(batch)
            self.count("receipts", 10_000)
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
        raw.close()

    async def prepare_proof_flood(self) -> list[bytes]:
        from flownet.tunnel.payment import ServiceProofSigner

        order = self.order("eve", 2)
        signer = ServiceProofSigner(bytes(self.account("eve").key), self.spec.chain_id, self.spec.slashing)  # type: ignore[attr-defined]
        oid = order.order_id  # type: ignore[attr-defined]
        batches = []
        epoch = 0
        for _ in range(int(self.duration) + 1):
            frames = []
            for _ in range(10_000):
                epoch += 1
                frames.append(fr.encode(fr.ServiceProofFrame(0, oid, epoch, 1000, signer.sign(oid, epoch, 1000))))
            batches.append(b"".join(frames))
        return batches

    async def attack_proof_flood(self, batches: list[bytes]) -> None:
        context = make_context(self.identity("eve"), lambda _der: None, server=False)
        raw = await self.session(context)
        if raw is None:
            return
        for batch in batches:
            if not self.running or raw.down.done():
                break
            start = time.monotonic()
            await raw.send(batch)
            self.count("proofs", 10_000)
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
        raw.close()

    async def attack_drop_sessions(self, _state: object) -> None:
        context = make_context(self.identity("eve"), lambda _der: None, server=False)
        order = self.order("eve", 3)
        port = await self.sink()
        for _ in range(300):
            if not self.running:
                break
            raw = await self.session(context)
            if raw is None:
                await asyncio.sleep(0.05)
                continue
            await raw.send(b"".join(fr.encode(fr.Open(i, order.order_id, port, HOST)) for i in range(1, 41, 2)))  # type: ignore[attr-defined]
            for _ in range(100):
                if len(raw.results) == 20 or raw.down.done():
                    break
                await asyncio.sleep(0.01)
            self.count("streams", sum(1 for s in raw.results.values() if s == 0))
            raw.abort()
            self.count("dropped")

    async def attack_unknown_streams(self, _state: object) -> None:
        context = make_context(self.identity("stranger"), lambda _der: None, server=False)
        data = fr.encode(fr.Data(7, bytes(fr.MAX_PAYLOAD))) * 64  # 4 MiB a write
        for _ in range(2000):
            if not self.running:
                break
            raw = await self.session(context)
            if raw is None:
                await asyncio.sleep(0.05)
                continue
            while self.running and not raw.down.done():
                await raw.send(data)
                self.count("pushed_bytes", len(data))
            raw.close()

    async def attack_open_refusals(self, _state: object) -> None:
        context = make_context(self.identity("stranger"), lambda _der: None, server=False)
        raw = await self.session(context)
        if raw is None:
            return
        nobody = bytes(range(32))
        stream = 1
        while self.running and not raw.down.done():
            start = time.monotonic()
            frames = []
            for _ in range(10_000):
                frames.append(fr.encode(fr.Open(stream, nobody, 80, HOST)))
                stream += 2
            await raw.send(b"".join(frames))
            self.count("opens", 10_000)
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
        self.count("answered", len(raw.results))
        raw.close()


def attacker_main(name: str, spec_path: Path, duration: float) -> int:
    import uvloop

    spec = Spec(**json.loads(spec_path.read_text()))

    async def main() -> dict[str, float]:
        return await Attacker(spec, name, duration).run(asyncio.Event())

    stats = uvloop.run(main())
    print(json.dumps(stats), flush=True)
    return 0


# ---------------------------------------------------------------- the run


@dataclass
class Result:
    attack: str
    baseline: list[Sample]
    during: list[Sample]
    after: list[Sample]
    rss_before: float
    rss_peak: float
    rss_after: float
    log_bytes: int
    provider_cpu: float
    attacker: dict[str, float]


def median(samples: list[Sample], key: str) -> tuple[float, int]:
    values = [getattr(s, key) for s in samples if getattr(s, key) is not None]
    return (statistics.median(values) if values else float("nan")), len(samples) - len(values)


def ratio(result: Result, key: str) -> float:
    base, _ = median(result.baseline, key)
    during, failed = median(result.during, key)
    if failed:
        return float("inf")
    return base / during if key == "mb_s" else during / base


def cell(samples: list[Sample], key: str) -> str:
    value, failed = median(samples, key)
    text = f"{value:.1f}" if value == value else "-"
    return text + (f" ({failed} fail)" if failed else "")


@contextlib.contextmanager
def web_server(tmp: Path) -> Iterator[int]:
    root = tmp / "www"
    root.mkdir()
    (root / "blob").write_bytes(os.urandom(8 * MIB))
    (root / "big").write_bytes(os.urandom(64 * MIB))
    (root / "small").write_bytes(os.urandom(1024))
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", HOST, "--directory", str(root), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def setup(net: object, tmp: Path) -> Spec:
    from flownet.chain import logs as chain_logs
    from flownet.chain.connect import http_web3
    from flownet.chain.deploy import Deployment
    from flownet.devnet import read_state

    run = net.flownet  # type: ignore[attr-defined]
    provider = net.provider_address  # type: ignore[attr-defined]
    for wallet, orders in (("mallory", 1), ("trudy", 4), ("eve", 4), ("stranger", 0)):
        for _ in range(orders):
            run("client", "buy", "--wallet", wallet, "--provider", provider, "--deposit", "100")
        run("cert", "new", "--wallet", wallet)
        run("cert", "register", "--wallet", wallet)
    home = Path(net.home)  # type: ignore[attr-defined]
    state = read_state(home / "devnet")
    assert state is not None
    deployment = Deployment.load(Path(state.manifest))
    w3 = http_web3(state.rpc_url)
    orders: dict[str, list[list[object]]] = {}
    for wallet in ("mallory", "trudy", "eve"):
        address = run("wallet", "address", wallet).strip()
        found = sorted(chain_logs.orders(w3, deployment, client=address), key=lambda o: o.nonce)
        orders[wallet] = [[o.nonce, o.client, o.provider, o.deposit, o.price_per_gib, o.expiry] for o in found]
    time.sleep(2)  # the provider's index catches up with the new orders and certificates
    return Spec(
        provider_port=net.provider_port,  # type: ignore[attr-defined]
        web_port=0,
        password=net.cli.env["FLOWNET_PASSWORD"],  # type: ignore[attr-defined]
        home=str(home),
        chain_id=deployment.chain_id,
        market=deployment.addresses["BandwidthMarket"],
        slashing=deployment.addresses["SlashingManager"],
        orders=orders,
    )


def run_attack(
    name: str, spec_path: Path, args: argparse.Namespace, honest: Honest, rss: Rss, log_path: Path
) -> Result:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--attacker", name, "--spec", str(spec_path), "--duration", str(args.duration)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    line = proc.stdout.readline()  # "ready" once the attacker signed what it needs
    if line.strip() != "ready":
        raise RuntimeError(f"attacker {name} did not start: {line!r}")
    baseline = measure(honest, args.baseline)
    rss.reset_peak()
    rss_before = rss.current
    log_before = log_path.stat().st_size
    cpu_before = rss.cpu()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    during = measure(honest, args.duration)
    try:
        out, _ = proc.communicate(timeout=args.duration + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    stats = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    provider_cpu = rss.cpu() - cpu_before
    rss_peak = rss.peak
    after = measure(honest, 2)
    log_bytes = log_path.stat().st_size - log_before
    return Result(name, baseline, during, after, rss_before, rss_peak, rss.current, log_bytes, provider_cpu, stats)


def report(results: list[Result]) -> bool:
    log("")
    log(
        f"{'attack':16} | {'handshake ms':>22} | {'SOCKS round trip ms':>22} | {'8 MiB download MB/s':>22} | "
        f"{'provider RSS MiB':>17} | {'log KiB':>7} | {'CPU s':>11} | attacker"
    )
    log(
        f"{'':16} | {'before':>7} {'during':>8} {'x':>5} | {'before':>7} {'during':>8} {'x':>5} | "
        f"{'before':>7} {'during':>8} {'x':>5} | {'before':>7} {'peak':>9} | {'':>7} | {'prov':>5} {'att':>5} |"
    )
    good = True
    for r in results:
        cols = []
        for key in ("handshake_ms", "rtt_ms", "mb_s"):
            x = ratio(r, key)
            good &= x <= 2.0
            cols.append(f"{cell(r.baseline, key):>7} {cell(r.during, key):>8} {x:5.2f}")
        good &= r.rss_peak < 300
        cpu = r.attacker.get("cpu_ms", float("nan")) / 1000
        attacker = ", ".join(f"{k}={int(v):,}" for k, v in sorted(r.attacker.items()) if k != "cpu_ms")
        log(
            f"{r.attack:16} | {' | '.join(cols)} | {r.rss_before:7.0f} {r.rss_peak:9.0f} | "
            f"{r.log_bytes / 1024:7.1f} | {r.provider_cpu:5.1f} {cpu:5.1f} | {attacker}"
        )
    log("")
    after = [f"{r.attack}: {cell(r.after, 'rtt_ms')} ms, {cell(r.after, 'mb_s')} MB/s" for r in results]
    log("after each attack (SOCKS round trip, download): " + "; ".join(after))
    worst = max((ratio(r, k) for r in results for k in ("handshake_ms", "rtt_ms", "mb_s")), default=float("nan"))
    peak = max((r.rss_peak for r in results), default=float("nan"))
    log(
        f"target: honest client within 2x of its baseline in every attack: {'met' if worst <= 2 else 'NOT met'} "
        f"(worst {worst:.2f}x); provider RSS under 300 MiB: {'met' if peak < 300 else 'NOT met'} (peak {peak:.0f} MiB)"
    )
    return good


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacks", default=",".join(ATTACKS), help="comma-separated subset of the attacks")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds each attack runs")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of honest samples before each attack")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR and keep it (logs of every process)")
    parser.add_argument("--attacker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attacker:
        return attacker_main(args.attacker, args.spec, args.duration)
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    unknown = sorted(set(attacks) - set(ATTACKS))
    if unknown or not attacks or not 1 <= args.duration <= 120 or not 1 <= args.baseline <= 60:
        parser.error(f"--attacks takes a subset of {','.join(ATTACKS)}; --duration 1..120, --baseline 1..60")

    from flownet.tunnel.localnet import LocalTunnelNet

    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = args.keep.resolve()
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flownet-abuse-")))
        shim = tmp / "shim"
        shim.mkdir()
        (shim / "sitecustomize.py").write_text(SHIM)
        with web_server(tmp) as web_port:
            net = LocalTunnelNet(
                tmp / "net", allow=(f"{HOST}/32",), log=log, extra_wallets=("mallory", "trudy", "eve", "stranger")
            )
            net.cli.env["PYTHONPATH"] = str(shim)
            net.cli.env["FLOWNET_BENCH_NOFILE"] = "1024"
            with net:
                spec = setup(net, tmp)
                spec.web_port = web_port
                spec_path = tmp / "spec.json"
                spec_path.write_text(json.dumps(spec.__dict__))
                certs = Path(spec.home) / "certs"
                identity = Identity.load(certs / "client.crt.pem", certs / "client.key.pem", spec.password)
                honest = Honest(identity, net.provider_port, int(net.socks_port), web_port)
                proc = net.cli.procs["provider"]
                rss = Rss(proc.pid)
                log(f"provider pid {proc.pid}, RSS {rss.current:.0f} MiB; attacks: {', '.join(attacks)}")
                results = []
                for attack in attacks:
                    log(f"attack {attack}: baseline {args.baseline:.0f} s, then {args.duration:.0f} s under attack")
                    results.append(run_attack(attack, spec_path, args, honest, rss, net.cli.log_path("provider")))
                    r = results[-1]
                    log(
                        f"  {attack}: handshake {cell(r.baseline, 'handshake_ms')} -> {cell(r.during, 'handshake_ms')}"
                        f" ms, round trip {cell(r.baseline, 'rtt_ms')} -> {cell(r.during, 'rtt_ms')} ms, download "
                        f"{cell(r.baseline, 'mb_s')} -> {cell(r.during, 'mb_s')} MB/s, RSS peak {r.rss_peak:.0f} MiB"
                    )
                rss.stop()
                good = report(results)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
