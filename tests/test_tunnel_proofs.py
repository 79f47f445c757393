"""In-band ServiceProofs: the client signs the bytes of each SlashingManager epoch, the provider keeps them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tunnel_helpers import CHAIN_ID, SLASHING, EchoServer, Tunnel, make_node, run, socks_connect

from flownet.tunnel.payment import recover_proof_signer, service_proof_separator


async def until(predicate: object, timeout: float, step: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


async def echo_bytes(port: int, echo_port: int, payload: bytes) -> None:
    status, reader, writer = await socks_connect(port, "127.0.0.1", echo_port)
    assert status == 0
    writer.write(payload)
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload
    writer.close()


def test_provider_book_holds_valid_proofs_per_epoch(tmp_path: Path) -> None:
    now = [1_000_000.0]  # the client's clock: epochs of 60 s, moved by hand

    async def main() -> None:
        t = Tunnel(tmp_path, slashing_manager=SLASHING, epoch_seconds=60, client_clock=lambda: now[0]).standard()
        server = await t.start_provider()
        client = await t.start_client()
        separator = service_proof_separator(CHAIN_ID, SLASHING)
        first = int(now[0]) // 60
        async with EchoServer() as echo:
            await echo_bytes(client.config.listen_port, echo.port, b"a" * 100_000)
            # traffic goes quiet: the client proves the epoch so far
            await until(lambda: len(t.book.proofs(t.order.order_id)) == 1, 15)
            now[0] += 60  # the next epoch
            await echo_bytes(client.config.listen_port, echo.port, b"b" * 50_000)
            await client.stop()
            await until(lambda: len(t.book.proofs(t.order.order_id)) == 2, 15)
        await server.stop()
        proofs = t.book.proofs(t.order.order_id)
        assert [p.epoch for p in proofs] == [first, first + 1]
        assert sum(p.bytes_served for p in proofs) == client.total  # every byte, in its epoch
        assert proofs[0].bytes_served >= 200_000 and proofs[1].bytes_served >= 100_000
        for p in proofs:
            assert p.order == t.order
            assert recover_proof_signer(separator, t.order.order_id, p.epoch, p.bytes_served, p.signature) == (
                t.client.address
            )
        best = t.book.proof(t.provider.address, first)
        assert best is not None and best.bytes_served == proofs[0].bytes_served
        assert t.book.proof(t.provider.address, first + 2) is None
        assert t.book.proof(make_node().address, first) is None
        assert server.stats["proofs"] == client.stats["proofs"] >= 2

    run(main(), 60)


def test_proofs_ignored_without_a_slashing_manager(tmp_path: Path) -> None:
    """A provider not configured for proofs drops them; the tunnel works as before."""

    async def main() -> None:
        t = Tunnel(tmp_path, slashing_manager=SLASHING).standard()
        server = await t.start_provider()
        server.proof_separator = None
        client = await t.start_client()
        async with EchoServer() as echo:
            await echo_bytes(client.config.listen_port, echo.port, b"x" * 10_000)
            await client.stop()
        await server.stop()
        assert client.stats["proofs"] >= 1
        assert t.book.proofs(t.order.order_id) == []

    run(main(), 60)


def test_forged_proof_is_not_kept(tmp_path: Path) -> None:
    """A proof signed by anyone but the order's client is rejected."""
    from flownet.tunnel.payment import ServiceProofSigner

    async def main() -> None:
        t = Tunnel(tmp_path, slashing_manager=SLASHING).standard()
        server = await t.start_provider()
        client = await t.start_client()
        client.config.proofs = ServiceProofSigner(bytes(make_node().account.key), CHAIN_ID, SLASHING)  # type: ignore[attr-defined]
        async with EchoServer() as echo:
            await echo_bytes(client.config.listen_port, echo.port, b"x" * 10_000)
            await client.stop()
        await server.stop()
        assert client.stats["proofs"] >= 1 and server.stats["proofs"] == 0
        assert t.book.proofs(t.order.order_id) == []

    run(main(), 60)
