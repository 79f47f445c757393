"""End to end on loopback: `flownet fullnode serve` (uvicorn) and `flownet provider heartbeat` posting to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from eth_account.messages import encode_defunct
from eth_utils import to_checksum_address

from flownet.cli import cli
from flownet.cli.fullnode import ApiServer, build_api
from flownet.config import load_settings
from flownet.core.metadata import ProviderMetadata
from flownet.devnet import free_port
from flownet.wallet import Keystores
from indexer.projections import amt
from indexer.provider_meta import refresh
from indexer.store import Ledger

ENV = {"FLOWNET_SCRYPT_N": "1024", "FLOWNET_PASSWORD": "fullnode-test-password"}
CONTRACTS = {
    "FlowToken": to_checksum_address("0x" + "1f" * 20),
    "Staking": to_checksum_address("0x" + "5a" * 20),
    "BandwidthMarket": to_checksum_address("0x" + "3b" * 20),
}


def flownet(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "flownet.cli", "--home", str(home), *args]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Path, str, str, str]]:
    """A home with wallets alice (a staked provider) and bob (not staked), and a full node serving their db."""
    home = tmp_path / "home"
    runner = CliRunner()
    for name in ("alice", "bob"):
        assert runner.invoke(cli, ["--home", str(home), "wallet", "new", name], env=ENV).exit_code == 0
    alice, bob = (
        runner.invoke(cli, ["--home", str(home), "wallet", "address", n], env=ENV).output.strip()
        for n in ("alice", "bob")
    )
    db = tmp_path / "node.db"
    ledger = Ledger(db, CONTRACTS, 31337)
    row = (alice, "provider", amt(10_000 * 10**18), amt(0), amt(0), 0, amt(2 * 10**18), None, amt(0), 3)
    ledger.conn.execute(
        "INSERT INTO stakers (address, role, active, locked, thawing, thaw_end, price, metadata_cid, slashed,"
        " updated_block) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        row,
    )
    ledger.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        flownet(home, "fullnode", "serve", "--db", str(db), "--port", str(port), "--metadata-interval", "0"),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **ENV},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/status", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "the full node did not start in 30 s"
            time.sleep(0.1)
        yield home, url, alice, bob
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()


def test_heartbeats_reach_a_running_full_node(node: tuple[Path, str, str, str]) -> None:
    home, url, alice, _ = node
    status = httpx.get(f"{url}/status").json()
    assert status["chain_id"] == 31337 and status["contracts"]["Staking"] == CONTRACTS["Staking"]

    sent = subprocess.run(
        flownet(
            home,
            "provider",
            "heartbeat",
            "--fullnode",
            url,
            "--wallet",
            "alice",
            "--interval",
            "1.05",
            "--count",
            "2",
            "--load",
            "1500",
            "--endpoint",
            "127.0.0.1:7443",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV},
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    answers = [line for line in sent.stdout.splitlines() if line.startswith("epoch ")]
    assert len(answers) == 2 and all(line.endswith("load 1500: accepted") for line in answers), sent.stdout

    live = httpx.get(f"{url}/providers", params={"live": "true"}).json()
    assert live["total"] == 1 and live["items"][0]["address"] == alice
    assert live["items"][0]["last_heartbeat"]["load"] == 1500
    detail = httpx.get(f"{url}/providers/{alice}").json()
    assert len(detail["recent_heartbeats"]) == 2
    metrics = httpx.get(f"{url}/metrics").text
    assert "flownet_heartbeats_accepted_total 2\n" in metrics

    refused = subprocess.run(
        flownet(
            home, "provider", "heartbeat", "--fullnode", url, "--wallet", "bob", "--count", "1", "--endpoint", "h:1"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV},
    )
    assert refused.returncode == 1
    assert "rejected 403 not_staked" in refused.stdout
    assert f"error: the full node at {url} accepted no heartbeat" in refused.stderr
    assert 'flownet_heartbeats_rejected_total{reason="not_staked"} 1' in httpx.get(f"{url}/metrics").text


def test_serve_needs_a_deployment(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "fullnode", "serve", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2
    assert "does not record a deployment yet and there is no usable manifest" in result.output


def test_heartbeat_reports_an_unreachable_full_node(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--home", str(tmp_path), "wallet", "new", "carol"], env=ENV).exit_code == 0
    url = f"http://127.0.0.1:{free_port()}"
    args = ["--home", str(tmp_path), "provider", "heartbeat", "--fullnode", url, "--wallet", "carol", "--count", "1"]
    result = runner.invoke(cli, args, env=ENV)
    assert result.exit_code == 2
    assert f"cannot reach the full node at {url}/status" in result.output


def test_heartbeat_finds_the_endpoint_in_the_full_nodes_metadata(tmp_path: Path) -> None:
    """uvicorn in a thread (ApiServer, as `fullnode run` uses it); the CLI reads the endpoint from the
    metadata the full node fetched, so the heartbeats match it."""
    home = tmp_path / "home"
    runner = CliRunner()
    assert runner.invoke(cli, ["--home", str(home), "wallet", "new", "dora"], env=ENV).exit_code == 0
    account = Keystores(home / "keystores", scrypt_n=1024).unlock("dora", ENV["FLOWNET_PASSWORD"])
    db = tmp_path / "node.db"
    ledger = Ledger(db, CONTRACTS, 31337)
    row = (account.address, "provider", amt(10**22), amt(0), amt(0), 0, amt(10**18), "bafydora", amt(0), 3)
    ledger.conn.execute(
        "INSERT INTO stakers (address, role, active, locked, thawing, thaw_end, price, metadata_cid, slashed,"
        " updated_block) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        row,
    )
    ledger.close()
    meta = ProviderMetadata(account.address, "dora.example.net:9000", "eu-west", 500, 10**18, int(time.time()))
    signature = account.sign_message(encode_defunct(primitive=meta.signing_payload())).signature
    asgi, store = build_api(db, load_settings(home))
    assert refresh(store, {"bafydora": meta.document(bytes(signature))}.__getitem__, time.time()).fetched == 1
    server = ApiServer(asgi, "127.0.0.1", free_port()).start()
    try:
        args = ["--home", str(home), "provider", "heartbeat", "--fullnode", server.url, "--wallet", "dora"]
        result = runner.invoke(cli, [*args, "--count", "1"], env=ENV)
        assert result.exit_code == 0, result.output
        assert f"heartbeats for {account.address} (dora.example.net:9000)" in result.output
        found = httpx.get(f"{server.url}/providers", params={"region": "eu-west", "live": "true"}).json()
        assert found["total"] == 1
        assert found["items"][0]["last_heartbeat"]["endpoint_matches_metadata"] is True
    finally:
        server.stop()
        asgi.state.reader.close()
        store.close()
    assert server.thread is None
