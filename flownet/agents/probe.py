"""Probing a provider as a real client would: through a running `ClientTunnel`'s SOCKS5 listener.

`probe` makes `connects` SOCKS5 CONNECTs to the probe URL's host (timing each until the provider's
answer: that includes the provider's own connection to the destination), then `downloads` HTTP/1.1
GETs of the probe URL (each whole body by Content-Length is a success; its bytes/second is a
throughput sample), then waits for the provider's METER to catch up with the client's count and
returns the `Measurements`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flownet.core.verdicts import Measurements
from flownet.errors import ConfigError, TunnelError
from flownet.tunnel.client import ClientTunnel

__all__ = ["ProbeTarget", "probe", "socks_connect"]

log = logging.getLogger("flownet.verifier")


@dataclass(frozen=True)
class ProbeTarget:
    """An http:// URL to fetch through the tunnel."""

    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> ProbeTarget:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(f"invalid probe URL {url!r}: expected http://HOST[:PORT]/PATH")
        return cls(parts.hostname, parts.port or 80, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"


async def socks_connect(
    port: int, host: str, dest_port: int, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A SOCKS5 CONNECT (no auth, domain name) through the local listener on `port`; TunnelError if refused."""

    async def go() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"\x05\x01\x00")
            if await reader.readexactly(2) != b"\x05\x00":
                raise TunnelError("the SOCKS listener refused the no-authentication method")
            raw = host.encode("idna")
            writer.write(b"\x05\x01\x00\x03" + bytes((len(raw),)) + raw + dest_port.to_bytes(2, "big"))
            head = await reader.readexactly(4)
            if head[1] != 0:
                raise TunnelError(f"CONNECT {host}:{dest_port} refused (SOCKS reply {head[1]:#04x})")
            rest = {1: 4, 4: 16}.get(head[3])
            if rest is None:
                rest = (await reader.readexactly(1))[0]
            await reader.readexactly(rest + 2)
        except BaseException:
            writer.close()
            raise
        return reader, writer

    try:
        return await asyncio.wait_for(go(), timeout)
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise TunnelError(f"CONNECT {host}:{dest_port} failed: {exc or type(exc).__name__}") from None
    except TimeoutError:
        raise TunnelError(f"CONNECT {host}:{dest_port} timed out after {timeout} s") from None


async def _get(port: int, target: ProbeTarget, timeout: float) -> tuple[int, float]:
    """One GET through the tunnel: (body bytes, seconds); TunnelError unless the whole body arrived."""
    start = time.perf_counter()
    reader, writer = await socks_connect(port, target.host, target.port, timeout)
    try:
        request = f"GET {target.path} HTTP/1.1\r\nHost: {target.host}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode("ascii"))
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, TimeoutError) as exc:
            raise TunnelError(f"no HTTP answer from {target.url}: {exc or type(exc).__name__}") from None
        lines = head.decode("latin-1").split("\r\n")
        if len(lines[0].split()) < 2 or lines[0].split()[1] != "200":
            raise TunnelError(f"{target.url} answered {lines[0]!r}")
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        got = 0
        deadline = start + timeout
        try:
            while length is None or got < length:
                chunk = await asyncio.wait_for(reader.read(1 << 16), max(0.01, deadline - time.perf_counter()))
                if not chunk:
                    break
                got += len(chunk)
        except (OSError, TimeoutError) as exc:
            raise TunnelError(f"download of {target.url} cut after {got} bytes: {exc or type(exc).__name__}") from None
        if length is not None and got < length:
            raise TunnelError(f"download of {target.url} cut after {got} of {length} bytes")
        return got, time.perf_counter() - start
    finally:
        writer.close()


async def probe(
    tunnel: ClientTunnel,
    target: ProbeTarget,
    connects: int = 3,
    downloads: int = 4,
    timeout: float = 10.0,
    settle: float = 2.0,
) -> Measurements:
    """Probe the provider behind `tunnel` (already started); see the module docstring."""
    port = tunnel.config.listen_port
    before = tunnel.total  # the order's bytes from earlier rounds (the client's receipt log)
    try:
        await tunnel.connect()
    except TunnelError as exc:
        log.info("probe: no tunnel session: %s", exc)
        return Measurements(session_error=str(exc))
    latencies: list[float] = []
    for i in range(connects):
        start = time.perf_counter()
        try:
            _, writer = await socks_connect(port, target.host, target.port, timeout)
        except TunnelError as exc:
            log.info("probe: connect %d/%d failed: %s", i + 1, connects, exc)
            continue
        latencies.append(time.perf_counter() - start)
        writer.close()
        log.info("probe: connect %d/%d in %.1f ms", i + 1, connects, latencies[-1] * 1000)
    outcomes: list[bool] = []
    rates: list[float] = []
    for i in range(downloads):
        try:
            size, seconds = await _get(port, target, timeout)
        except TunnelError as exc:
            outcomes.append(False)
            log.info("probe: download %d/%d failed: %s", i + 1, downloads, exc)
            continue
        outcomes.append(True)
        rates.append(size / max(seconds, 1e-9))
        log.info(
            "probe: download %d/%d: %d bytes in %.3f s (%.2f MiB/s)",
            i + 1,
            downloads,
            size,
            seconds,
            rates[-1] / (1 << 20),
        )
    # the provider sends METER with each receipt acknowledgement and at each stream end: pay, then wait for it
    tunnel.settle()
    loop = asyncio.get_running_loop()
    end = loop.time() + settle
    while loop.time() < end and (tunnel.provider_metered is None or tunnel.provider_metered < tunnel.total):
        await asyncio.sleep(0.02)
    await asyncio.sleep(min(0.1, settle))  # a last METER in flight
    log.info("probe: client counted %d bytes, provider reports %s", tunnel.total, tunnel.provider_metered)
    return Measurements(
        connect_seconds=tuple(latencies),
        probes=tuple(outcomes),
        throughput=tuple(rates),
        client_bytes=tunnel.total,
        provider_metered=tunnel.provider_metered,
        round_bytes=tunnel.total - before,
    )
