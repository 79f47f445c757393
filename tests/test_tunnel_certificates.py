"""The tunnel's certificate checks against per-owner records and stake (issue 11, findings 4 and 5).

CertificateRegistry keeps one record per (owner, certHash), and a certificate counts only while its
wallet's stake does (a client, or a provider or verifier with stake bonded). Here, over a real migrated
index written by hand (`tunnel_helpers.FakeIndex`), on 127.0.0.1 only:

- a front-runner's copy of a client's certificate hash, registered and then revoked under the
  front-runner's wallet, neither refuses the client's handshake nor closes its live session;
- a copy under another wallet alone is refused (owner-mismatch), as is a certificate whose wallet is a
  provider or verifier with nothing bonded (unstaked), by the provider and by the client;
- a live session ends within the monitor interval when its wallet's stake stops counting (a penalty
  that takes the last of it revokes nothing, so only the stake says so).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from tunnel_helpers import EchoServer, Tunnel, make_node, run, socks_connect

from flownet.errors import TunnelError

GENERAL_FAILURE = 0x01


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


async def echo_once(port: int, echo: EchoServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """One SOCKS CONNECT to the echo server through the client's proxy, checked with a ping."""
    code, reader, writer = await socks_connect(port, "127.0.0.1", echo.port)
    assert code == 0, code
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    return reader, writer


async def ended(reader: asyncio.StreamReader, timeout: float) -> bool:
    """Whether the stream ends (EOF or reset) within `timeout` seconds."""
    try:
        while await asyncio.wait_for(reader.read(1 << 16), timeout):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def test_revoked_copy_under_another_wallet_neither_refuses_nor_closes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 4: the squatting attack, as the provider's index sees it. A front-runner registers the
    client's certificate hash under its own wallet and revokes it; the client's own registration is
    what counts, its handshake passes and its session survives many monitor rounds."""
    caplog.set_level(logging.INFO)
    t = Tunnel(tmp_path)
    squatter = make_node()
    t.index.register(t.provider)
    t.index.register(t.client, owner=squatter.address)  # the copied register call, mined first
    t.index.revoke(t.client, owner=squatter.address)  # and revoked, as the attacker's own record
    t.index.register(t.client)  # the client's own registration
    t.index.add_order(t.order)

    async def main() -> None:
        server = await t.start_provider()
        client = await t.start_client()
        async with EchoServer() as echo:
            reader, writer = await echo_once(client.config.listen_port, echo)
            assert not await ended(reader, 10 * t.monitor_interval)  # many monitor rounds: still open
            writer.write(b"pong")
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"pong"
            assert len(server.sessions) == 1
            writer.close()
        await client.stop()
        await server.stop()

    run(main(), 30)
    assert t.server.stats["refused_handshakes"] == 0
    assert not logged(caplog, "closing its session")


@pytest.mark.parametrize(
    ("case", "provider_log"),
    [
        ("copy under another wallet only", "certificate owner-mismatch"),
        ("unbonded provider", "certificate unstaked"),
        ("unbonded verifier", "certificate unstaked"),
    ],
)
def test_client_certificate_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str, provider_log: str
) -> None:
    caplog.set_level(logging.INFO)
    t = Tunnel(tmp_path)
    t.index.register(t.provider)
    t.index.add_order(t.order)
    if case == "copy under another wallet only":
        t.index.register(t.client, owner=make_node().address)
    else:
        t.index.register(t.client)
        # its role is for life; with nothing bonded, its certificates do not count
        t.index.stake(t.client.address, case.split()[1], active=0, thawing=0)

    async def main() -> int:
        await t.start_provider()
        tunnel = await t.start_client()
        async with EchoServer() as echo:
            code, reader, writer = await socks_connect(tunnel.config.listen_port, "127.0.0.1", echo.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            assert echo.connections == 0
        await tunnel.stop()
        await t.server.stop()
        return code

    assert run(main(), 30) == GENERAL_FAILURE
    assert logged(caplog, provider_log)
    assert t.server.stats["refused_handshakes"] == 1


@pytest.mark.parametrize("stake", [(0, 0), (0, 10**18), (10**18, 0)])
def test_bonded_or_thawing_stake_counts(tmp_path: Path, stake: tuple[int, int]) -> None:
    """A verifier probing as a client: with any stake bonded (thawing included) it is served; with none
    it is refused."""
    t = Tunnel(tmp_path).standard()
    active, thawing = stake
    t.index.stake(t.client.address, "verifier", active=active, thawing=thawing)

    async def main() -> int:
        await t.start_provider()
        tunnel = await t.start_client()
        async with EchoServer() as echo:
            code, _, writer = await socks_connect(tunnel.config.listen_port, "127.0.0.1", echo.port)
            writer.close()
        await tunnel.stop()
        await t.server.stop()
        return code

    assert run(main(), 30) == (GENERAL_FAILURE if stake == (0, 0) else 0)


def test_stake_gone_closes_a_live_session(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Finding 5: a verifier's last stake is taken by a penalty (which revokes no certificate): its live
    session ends within the monitor interval, and a new handshake is refused."""
    caplog.set_level(logging.INFO)
    t = Tunnel(tmp_path).standard()
    t.index.stake(t.client.address, "verifier", active=10**18)

    async def main() -> None:
        server = await t.start_provider()
        client = await t.start_client()
        async with EchoServer() as echo:
            reader, writer = await echo_once(client.config.listen_port, echo)
            start = time.perf_counter()
            t.index.stake(t.client.address, "verifier", active=0)
            assert await ended(reader, 2)
            assert time.perf_counter() - start < t.monitor_interval + 0.5
            assert not server.sessions
            writer.close()
            code, _, writer = await socks_connect(client.config.listen_port, "127.0.0.1", echo.port)
            assert code == GENERAL_FAILURE
            writer.close()
        await client.stop()
        await server.stop()

    run(main(), 30)
    assert logged(caplog, "was unstaked: closing its session")
    assert logged(caplog, "certificate unstaked")


@pytest.mark.parametrize("case", ["copy under another wallet only", "unbonded provider"])
def test_client_refuses_provider_certificate(tmp_path: Path, case: str) -> None:
    """The client's check of the provider (the registry's isValid; here the index's verdict) reads the
    provider's own record and needs its stake."""
    t = Tunnel(tmp_path)
    t.index.register(t.client)
    t.index.add_order(t.order)
    if case == "copy under another wallet only":
        t.index.register(t.provider, owner=make_node().address)
    else:
        t.index.register(t.provider)
        t.index.stake(t.provider.address, "provider", active=0)

    async def main() -> None:
        await t.start_provider()
        tunnel = await t.start_client()
        with pytest.raises(TunnelError, match="is not registered and valid on chain"):
            await tunnel.connect()
        await tunnel.stop()
        await t.server.stop()

    run(main(), 30)
