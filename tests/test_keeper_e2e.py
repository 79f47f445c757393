"""Issue 11, finding 6 end to end: a real `flownet provider serve` cancels the order a griefer opened to
lock its stake, refuses the griefer, and keeps serving the honest client whose order carries traffic.

Everything runs through the command line on a devnet on 127.0.0.1 (flownet.tunnel.localnet); the
provider runs with `--cancel-idle 20s --refuse-idle 1h`.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flownet.errors import FlowNetError
from flownet.tunnel.localnet import LocalTunnelNet

IDLE_SECONDS = 20
BLOB = 6 << 20


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[int, str]]:
    root = tmp_path / "web"
    root.mkdir()
    data = os.urandom(BLOB)
    (root / "blob.bin").write_bytes(data)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hashlib.sha256(data).hexdigest()
    finally:
        server.shutdown()
        server.server_close()


def test_serve_cancels_the_griefers_idle_order_and_keeps_the_used_one(web: tuple[int, str], tmp_path: Path) -> None:
    port, digest = web
    with LocalTunnelNet(
        tmp_path / "net",
        log=lambda _m: None,
        receipt_interval_mib=1.0,
        provider_args=("--cancel-idle", f"{IDLE_SECONDS}s", "--refuse-idle", "1h"),
    ) as net:
        # The honest client uses its order at once: its receipts reach the provider's payment book.
        out = tmp_path / "blob.bin"
        done = subprocess.run(
            ["curl", "-sS", "--max-time", "60", "-o", str(out), "--socks5-hostname", f"127.0.0.1:{net.socks_port}",
             f"http://127.0.0.1:{port}/blob.bin"],
            capture_output=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        assert hashlib.sha256(out.read_bytes()).hexdigest() == digest

        # The griefer locks 50 FLOW more of the provider's stake (the honest order locks 500) with an order
        # it never uses.
        net.flownet("wallet", "new", "griefer")
        net.flownet("devnet", "fund", "griefer", "--flow", "1000")
        bought = net.flownet("client", "buy", "--wallet", "griefer", "--provider", net.provider_address,
                             "--deposit", "100", "--duration", "30d")  # fmt: skip
        assert "order 2 (id 0x" in bought
        assert "550 FLOW locked" in net.flownet("provider", "status", net.provider_address)

        deadline = time.monotonic() + IDLE_SECONDS + 60
        orders = ""
        while time.monotonic() < deadline:
            orders = net.flownet("client", "orders", "--wallet", "griefer")
            if "cancelled" in orders:
                break
            time.sleep(1)
        assert "cancelled" in orders, f"the provider never cancelled the idle order:\n{net.log_of('provider')}"
        assert "cancelled order 2 of" in net.log_of("provider")
        status = net.flownet("provider", "status", net.provider_address)
        assert "500 FLOW locked" in status, status
        assert "open" in net.flownet("client", "orders", "--wallet", "client"), "the honest order was cancelled"
        with pytest.raises(FlowNetError, match="refuses orders from"):
            net.flownet("client", "buy", "--wallet", "griefer", "--provider", net.provider_address, "--deposit", "100")

        # The honest client still gets served after the keeper's rounds.
        again = subprocess.run(
            ["curl", "-sS", "--max-time", "60", "-o", str(out), "--socks5-hostname", f"127.0.0.1:{net.socks_port}",
             f"http://127.0.0.1:{port}/blob.bin"],
            capture_output=True, check=False,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr.decode()
