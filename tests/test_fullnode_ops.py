"""`flownet fullnode run | rebuild | reconcile` end to end on a devnet, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from flownet.cli import cli
from flownet.devnet import free_port

ENV = {"FLOWNET_SCRYPT_N": "1024", "FLOWNET_PASSWORD": "fullnode-test-password"}


def _flownet(home: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--home", str(home), *args], env=ENV, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_run_rebuild_reconcile(tmp_path: Path) -> None:
    home, db = tmp_path / "home", tmp_path / "fullnode.db"
    _flownet(home, "wallet", "new", "alice")
    _flownet(home, "wallet", "new", "bob")
    _flownet(home, "devnet", "start")
    try:
        _flownet(home, "provider", "register", "--wallet", "alice", "--price", "2", "--endpoint", "127.0.0.1:7443")
        alice = _flownet(home, "wallet", "address", "alice").strip()
        _flownet(home, "client", "buy", "--wallet", "bob", "--provider", alice, "--deposit", "40")
        port = free_port()
        node = subprocess.Popen(
            [sys.executable, "-m", "flownet.cli", "--home", str(home), "fullnode", "run", "--db", str(db),
             "--port", str(port), "--poll", "0.1", "--metadata-interval", "0.2"],
            env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            status: dict[str, object] = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    status = httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).json()
                    if status.get("indexed_block") is not None and status.get("lag") == 0:
                        break
                except httpx.HTTPError:
                    pass
                assert node.poll() is None, node.stdout.read() if node.stdout else ""
                time.sleep(0.1)
            assert status.get("lag") == 0, status
            providers = httpx.get(f"http://127.0.0.1:{port}/providers", timeout=5).json()
            assert [p["address"] for p in providers["items"]] == [alice]
        finally:
            node.send_signal(signal.SIGTERM)
            out, _ = node.communicate(timeout=30)
        assert node.returncode == 0, out
        assert "fullnode stopped after" in out

        rebuilt = _flownet(home, "fullnode", "rebuild", "--db", str(db))
        assert "state unchanged" in rebuilt
        assert "ledger agrees with the chain at block" in _flownet(home, "fullnode", "reconcile", "--db", str(db))

        # A tampered projection is reported, line by line, with exit code 1.
        import sqlite3

        conn = sqlite3.connect(db)
        conn.execute("UPDATE orders SET paid = '000000000000000000000000000005'")
        conn.commit()
        conn.close()
        result = CliRunner().invoke(cli, ["--home", str(home), "fullnode", "reconcile", "--db", str(db)], env=ENV)
        assert result.exit_code == 1, result.output
        assert ": paid: ledger 0.000000000000000005 FLOW != chain 0 FLOW" in result.output
        assert "difference(s) between the ledger and the chain" in result.output
        assert "state CHANGED" in _flownet(home, "fullnode", "rebuild", "--db", str(db))
        assert "ledger agrees" in _flownet(home, "fullnode", "reconcile", "--db", str(db))
    finally:
        _flownet(home, "devnet", "stop")
    assert json.loads((home / "devnet" / "deployment.json").read_text())["chain_id"] == 31337
