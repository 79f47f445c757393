"""A stand-in full node on 127.0.0.1 that records heartbeats, and the no-equivocation check over them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flownet.core.heartbeat import HeartbeatDomain, SignedHeartbeat, endpoint_hash, recover_signer

DOMAIN = HeartbeatDomain(31337, "0x" + "5A" * 20)


class FakeFullNode:
    """`GET /status`, `GET /providers/ADDR` (metadata endpoint from `endpoint()`), `POST /heartbeats` (kept)."""

    def __init__(self, epoch_seconds: int, endpoint: Callable[[], str] = lambda: "unset.example.net:1") -> None:
        self.epoch_seconds = epoch_seconds
        self.endpoint = endpoint
        self.heartbeats: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/status":
                    status = {"chain_id": DOMAIN.chain_id, "contracts": {"Staking": DOMAIN.staking}}
                    self.reply(200, {**status, "epoch_seconds": node.epoch_seconds})
                elif self.path.startswith("/providers/"):
                    self.reply(200, {"metadata": {"current": True, "endpoint": node.endpoint()}})
                else:
                    self.reply(404, {"error": "not_found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with node.lock:
                    node.heartbeats.append(body)
                self.reply(201, {"accepted": True})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeFullNode:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def received(self) -> list[SignedHeartbeat]:
        with self.lock:
            return [SignedHeartbeat.from_json(body) for body in self.heartbeats]


def assert_no_equivocation(
    heartbeats: list[SignedHeartbeat], provider: str, epoch_seconds: int, domain: HeartbeatDomain = DOMAIN
) -> dict[int, bytes]:
    """Every heartbeat is signed by `provider` for a consistent epoch, and no epoch has two endpoints.

    Returns the endpoint hash of each epoch."""
    by_epoch: dict[int, set[bytes]] = {}
    for signed in heartbeats:
        hb = signed.heartbeat
        assert recover_signer(domain, signed) == provider, hb
        assert hb.provider == provider
        assert hb.epoch == hb.timestamp // epoch_seconds, hb
        by_epoch.setdefault(hb.epoch, set()).add(hb.endpoint_hash)
    twice = {e: hashes for e, hashes in by_epoch.items() if len(hashes) > 1}
    assert not twice, f"equivocation: epochs with two endpoints signed {twice}"
    return {epoch: next(iter(hashes)) for epoch, hashes in by_epoch.items()}


def endpoints_named(heartbeats: list[SignedHeartbeat], *endpoints: str) -> list[str]:
    """The endpoint each heartbeat names, mapped back from its hash (among `endpoints`)."""
    names = {endpoint_hash(e): e for e in endpoints}
    return [names[s.heartbeat.endpoint_hash] for s in heartbeats]
