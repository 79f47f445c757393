"""The tunnel part of `make demo`: buy bandwidth, fetch a file through the provider, watch it get paid."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

from flownet.chain import logs
from flownet.chain.connect import http_web3
from flownet.chain.deploy import Deployment
from flownet.chain.views import order_state
from flownet.config import load_settings
from flownet.core.units import format_flow
from flownet.errors import TunnelError
from flownet.tunnel.localnet import LocalTunnelNet

__all__ = ["socks_http_get", "tunnel_round"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def socks_http_get(socks_port: int, host: str, port: int, path: str, timeout: float = 60.0) -> bytes:
    """GET http://host:port/path through a SOCKS5 proxy on 127.0.0.1 (HTTP/1.0); the body."""
    with socket.create_connection(("127.0.0.1", socks_port), timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"\x05\x01\x00")
        if sock.recv(2) != b"\x05\x00":
            raise TunnelError("the SOCKS5 proxy refused the no-authentication method")
        name = host.encode()
        sock.sendall(b"\x05\x01\x00\x03" + bytes((len(name),)) + name + port.to_bytes(2, "big"))
        reply = sock.recv(10)
        if len(reply) < 2 or reply[1] != 0:
            raise TunnelError(f"the SOCKS5 proxy refused CONNECT {host}:{port} (reply {reply[1:2].hex() or 'none'})")
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
        raise TunnelError(f"the web server answered {head.splitlines()[0] if head else b'nothing'!r}")
    return body


def tunnel_round(size_mb: int = 20, say: object = print) -> None:
    out = say if callable(say) else print
    with tempfile.TemporaryDirectory(prefix="flownet-demo-") as tmp:
        root = Path(tmp)
        www = root / "www"
        www.mkdir()
        data = os.urandom(size_mb * 1_000_000)
        (www / "file.bin").write_bytes(data)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
        server_thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        server_thread.start()
        try:
            out("\ntunnel: two wallets, a devnet, an offer, an order and two certificates registered on chain")
            with LocalTunnelNet(root / "net", log=lambda m: out(f"  {m}")) as net:
                out(f"  provider {net.provider_address} serves; client {net.client_address} SOCKS5 on {net.socks_port}")
                started = time.monotonic()
                body = socks_http_get(net.socks_port, "127.0.0.1", httpd.server_address[1], "/file.bin")
                elapsed = time.monotonic() - started
                same = hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
                out(
                    f"  fetched {len(body):,} bytes through the tunnel in {elapsed:.2f} s "
                    f"({len(body) / elapsed / 1e6:.0f} MB/s); sha256 {'matches' if same else 'DIFFERS'}"
                )
                if not same:
                    raise TunnelError("the file changed in the tunnel")
                net.stop_process("client")
                net.stop_process("provider")
                for line in (net.log_of("client") + net.log_of("provider")).splitlines():
                    if any(key in line for key in ("carried", "redeemed", "served")):
                        out(f"  {line.split(': ', 1)[-1]}")
                settings = load_settings(net.home)
                w3 = http_web3(settings.rpc_url)
                deployment = Deployment.load(settings.manifest)
                (order,) = logs.orders(w3, deployment, client=net.client_address)
                paid = order_state(deployment.contract(w3, "BandwidthMarket"), order.order_id).paid
                out(f"  on chain: order {order.nonce} paid {format_flow(paid)} to the provider (price 1 FLOW/GiB)")
        finally:
            httpd.shutdown()
            httpd.server_close()
