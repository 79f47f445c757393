"""`flownet verifier` end to end on a devnet against `flownet provider serve --fault over-meter`.

The provider is a real process (LocalTunnelNet) that books 1.5 times the bytes it carries. Two
verifier wallets register as verifiers and each runs `flownet verifier run --rounds 1` (in-process):
each makes and registers its certificate, buys
a probe order, probes through its own tunnel client, finds the METER count 1.5 times its own, and
attests; the second completes the quorum and opens the dispute on chain. After the challenge window
(anvil's clock moved forward) a third run executes it and the provider's stake shrinks.

`Board` serves the routes the verifier uses (`GET /providers`, `GET /providers/{address}`, `POST` and
`GET /attestations`) over real HTTP from memory, so this test needs no full node; the network demo's
test (`tests/test_netdemo.py`) runs the same agents against the real full node.
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from tunnel_helpers import LocalWeb, random_file

from flownet.chain.connect import http_web3
from flownet.chain.deploy import Deployment
from flownet.cli import cli
from flownet.config import load_settings
from flownet.tunnel.localnet import LocalTunnelNet


class Board:
    """The full node routes the verifier uses, in memory, on 127.0.0.1."""

    def __init__(self, provider: str, endpoint: str) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.attestations: list[dict[str, Any]] = []
        board = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/providers":
                    item = {"address": board.provider, "metadata": {"endpoint": board.endpoint}}
                    self._answer(200, {"total": 1, "limit": 100, "offset": 0, "items": [item]})
                elif url.path.startswith("/providers/"):
                    self._answer(200, {"address": board.provider, "equivocating_epochs": [], "recent_heartbeats": []})
                elif url.path == "/attestations":
                    found = [
                        a
                        for a in board.attestations
                        if a["provider"].lower() == query["provider"].lower()
                        and a["epoch"] == int(query["epoch"])
                        and a["kind"] == int(query["kind"])
                    ]
                    self._answer(200, {"total": len(found), "limit": 200, "offset": 0, "items": found})
                else:
                    self._answer(404, {"error": "not_found", "message": f"no route GET {url.path}"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                board.attestations.append(body)
                self._answer(201, {"accepted": True})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[LocalTunnelNet]:
    with LocalTunnelNet(tmp_path / "net", log=lambda _: None, provider_args=("--fault", "over-meter")) as n:
        yield n


def test_verifiers_dispute_and_slash_an_over_metering_provider(
    net: LocalTunnelNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert "FAULTS INJECTED (testing and demo only): over-meter x1.5" in net.log_of("provider")
    for name in ("v1", "v2"):
        net.flownet("wallet", "new", name)
    net.flownet("devnet", "fund", "v1", "v2")
    for name in ("v1", "v2"):
        out = net.flownet("verifier", "register", "--wallet", name)
        assert "stakes 500 FLOW" in out
    board = Board(net.provider_address, f"127.0.0.1:{net.provider_port}")
    runner = CliRunner()
    www = tmp_path / "www"
    www.mkdir()
    try:
        with random_file(www, "probe.bin", 256 << 10), LocalWeb(www) as web:

            def run(name: str) -> str:
                args = ["verifier", "run", "--wallet", name, "--fullnode", board.url, "--rounds", "1"]
                args += ["--probe-url", f"http://127.0.0.1:{web.port}/probe.bin", "--order-wait", "1.5"]
                # latency and throughput limits a loaded machine always meets: only the metering fault counts
                args += ["--min-throughput", "0", "--max-connect-ms", "10000"]
                result = runner.invoke(cli, args, env=net.cli.env, catch_exceptions=False)
                assert result.exit_code == 0, result.output
                return result.output

            out1 = run("v1")
            assert "1 probe(s), 1 attestation(s), 0 dispute(s) opened" in out1
            assert [a["kind"] for a in board.attestations] == [3]  # metering
            out2 = run("v2")
            assert "1 attestation(s), 1 dispute(s) opened" in out2
            assert len({a["evidence_cid"] for a in board.attestations}) == 1  # v2 adopted v1's evidence
            assert any("DISPUTE 1 opened against" in r.getMessage() for r in caplog.records)

            settings = load_settings(net.home)
            w3 = http_web3(settings.rpc_url)
            deployment = Deployment.load(settings.manifest)
            slashing = deployment.contract(w3, "SlashingManager")
            staking = deployment.contract(w3, "Staking")
            dispute = slashing.functions.disputeOf(1).call()
            assert (dispute[0], dispute[3], dispute[4]) == (net.provider_address, 3, 1)  # metering, open
            before = staking.functions.stakeOf(net.provider_address).call()[0]
            window = slashing.functions.config().call()[0]
            w3.provider.make_request("evm_increaseTime", [window + 1])  # type: ignore[attr-defined]
            w3.provider.make_request("evm_mine", [])  # type: ignore[attr-defined]
            out3 = run("v1")
            assert "1 executed" in out3
            assert slashing.functions.disputeOf(1).call()[4] == 3  # Executed
            assert staking.functions.stakeOf(net.provider_address).call()[0] < before
    finally:
        board.close()
