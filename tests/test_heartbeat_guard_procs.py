"""Heartbeat senders in separate processes sharing one FLOWNET_HOME: racing, restarting, crashing, and the
real `flownet provider heartbeat` command against a stand-in full node on 127.0.0.1. The property checked
every time: all heartbeats recover to the provider, and no epoch has two endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flownet.cli import cli
from flownet.core.heartbeat import SignedHeartbeat, endpoint_hash
from flownet.heartbeats import HeartbeatRecord, record_path
from flownet.wallet import Keystores
from tests.heartbeat_helpers import DOMAIN, FakeFullNode, assert_no_equivocation, endpoints_named

ENV = {"FLOWNET_SCRYPT_N": "1024", "FLOWNET_PASSWORD": "heartbeat-guard-password"}
LONG_EPOCH = 10**6  # one epoch for the whole test, however slow the machine
EPOCH = 30
T0 = 1_800_000_000 - 1_800_000_000 % EPOCH
WORKERS = 4
EPOCHS = 25

# A sender in its own process: waits for GO, then sends one heartbeat per epoch for EPOCHS epochs through
# HeartbeatSender (fixed timestamps, so all workers contend for the same epochs), one JSON line each.
WORKER = """
import json, os, signal, sys, time
from pathlib import Path
from eth_account import Account
from flownet.heartbeats import HeartbeatRecord, HeartbeatSender, HeartbeatSigner
from tests.heartbeat_helpers import DOMAIN

path, endpoint, go, epochs, t0, crash = sys.argv[1], sys.argv[2], Path(sys.argv[3]), *map(int, sys.argv[4:])
signer = HeartbeatSigner(Account.from_key(b"\\x11" * 32), DOMAIN, HeartbeatRecord(Path(path)), epoch_seconds=30)
sender = HeartbeatSender(signer, lambda: endpoint)
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
for k in range(epochs):
    beat = sender.beat(k % 100, t0 + 30 * k + k % 30)
    print(json.dumps({"signed": beat.signed.to_json(), "deferred": beat.deferred}), flush=True)
    if crash:
        os.kill(os.getpid(), signal.SIGKILL)  # dies with the signature out and the connection open
"""


def worker(directory: Path, endpoint: str, go: Path, epochs: int, crash: bool = False) -> subprocess.Popen[str]:
    args = [str(directory / "heartbeats.sqlite"), endpoint, str(go), str(epochs), str(T0), str(int(crash))]
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def results(proc: subprocess.Popen[str], *, killed: bool = False) -> list[dict[str, object]]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == (-9 if killed else 0), err
    return [json.loads(line) for line in out.splitlines()]


def provider_address() -> str:
    from eth_account import Account

    return str(Account.from_key(b"\x11" * 32).address)


def test_racing_sender_processes_never_sign_two_endpoints_in_one_epoch(tmp_path: Path) -> None:
    """(a) Four processes, each with its own endpoint, contend for the same 25 epochs at the same moment."""
    go = tmp_path / "go"
    endpoints = [f"p{i}.example.net:7443" for i in range(WORKERS)]
    procs = [worker(tmp_path, e, go, EPOCHS) for e in endpoints]
    time.sleep(0.5)
    go.touch()
    lines = [line for p in procs for line in results(p)]
    signed = [SignedHeartbeat.from_json(line["signed"]) for line in lines]
    assert len(signed) == WORKERS * EPOCHS
    epochs = assert_no_equivocation(signed, provider_address(), EPOCH)
    assert len(epochs) == EPOCHS
    # Per epoch exactly one worker had its own endpoint; the others signed that one and deferred theirs.
    for epoch, winner in epochs.items():
        mine = [line for line in lines if line["signed"]["epoch"] == epoch and line["deferred"] is None]
        assert len(mine) == 1, (epoch, mine)
        assert mine[0]["signed"]["endpointHash"] == "0x" + winner.hex()


def test_a_crash_right_after_signing_still_binds_the_epoch(tmp_path: Path) -> None:
    """(b, crash) The first sender is SIGKILLed as soon as its signature is out; a restart with another
    endpoint in the same epoch keeps the first one."""
    go = tmp_path / "go"
    go.touch()
    first = results(worker(tmp_path, "a.example.net:1", go, 3, crash=True), killed=True)
    assert len(first) == 1
    second = results(worker(tmp_path, "b.example.net:1", go, 3))
    signed = [SignedHeartbeat.from_json(line["signed"]) for line in first + second]
    assert_no_equivocation(signed, provider_address(), EPOCH)
    assert (
        endpoints_named(signed, "a.example.net:1", "b.example.net:1")
        == ["a.example.net:1"] * 2 + ["b.example.net:1"] * 2
    )
    assert [line["deferred"] for line in second] == ["b.example.net:1", None, None]


# ---------------------------------------------------------------------------- the real command


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    assert CliRunner().invoke(cli, ["--home", str(home), "wallet", "new", "alice"], env=ENV).exit_code == 0
    return home


def alice(home: Path) -> str:
    return str(Keystores(home / "keystores", scrypt_n=1024).unlock("alice", ENV["FLOWNET_PASSWORD"]).address)


def heartbeat_cmd(home: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWNET_")}
    command = [sys.executable, "-m", "flownet.cli", "--home", str(home), "provider", "heartbeat", "--wallet", "alice"]
    return subprocess.Popen(
        [*command, "--fullnode", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, **ENV},
    )


def finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def test_two_heartbeat_commands_racing_with_different_endpoints(home: Path) -> None:
    """(a) Two `flownet provider heartbeat` processes, one home, one epoch, two --endpoint values."""
    with FakeFullNode(LONG_EPOCH) as node:
        procs = [
            heartbeat_cmd(home, node.url, "--endpoint", e, "--interval", "0.1", "--count", "10")
            for e in ("a.example.net:7443", "b.example.net:7443")
        ]
        outputs = [finish(p) for p in procs]
        received = node.received()
    assert len(received) == 20
    epochs = assert_no_equivocation(received, alice(home), LONG_EPOCH)
    if len(epochs) == 1:  # (a boundary every 11.6 days could split the run; the property above still holds)
        (epoch,) = epochs
        winner = "a.example.net:7443" if epochs[epoch] == endpoint_hash("a.example.net:7443") else "b.example.net:7443"
        loser = next(e for e in ("a.example.net:7443", "b.example.net:7443") if e != winner)
        said = outputs[0] + outputs[1]
        assert f"endpoint {loser} waits for epoch {epoch + 1}: epoch {epoch} already has heartbeats signed for " in said
        assert f"endpoint {winner} ({loser} waits for epoch {epoch + 1}): accepted" in said


def test_restarting_the_command_with_a_new_endpoint_keeps_the_old_one_this_epoch(home: Path) -> None:
    """(b) Stop, change --endpoint, start again within the epoch."""
    with FakeFullNode(LONG_EPOCH) as node:
        finish(heartbeat_cmd(home, node.url, "--endpoint", "old.example.net:1", "--count", "2", "--interval", "0.1"))
        out = finish(
            heartbeat_cmd(home, node.url, "--endpoint", "new.example.net:1", "--count", "2", "--interval", "0.1")
        )
        received = node.received()
    epochs = assert_no_equivocation(received, alice(home), LONG_EPOCH)
    if len(epochs) == 1:
        (epoch,) = epochs
        assert endpoints_named(received, "old.example.net:1", "new.example.net:1") == ["old.example.net:1"] * 4
        assert f"endpoint new.example.net:1 waits for epoch {epoch + 1}" in out
        record = HeartbeatRecord(record_path(home, alice(home)))
        assert record.endpoint_of(DOMAIN, alice(home), epoch) == "old.example.net:1"
        record.close()


def test_the_command_rereads_the_endpoint_and_switches_at_an_epoch_boundary(home: Path) -> None:
    """(c) Without --endpoint the command reads the full node's copy of the metadata before every heartbeat;
    the metadata changes after the first few. Epochs of 1 s, so the run crosses several."""
    reads: list[str] = []

    def metadata_endpoint() -> str:
        reads.append("old.example.net:1" if len(reads) < 4 else "new.example.net:1")
        return reads[-1]

    with FakeFullNode(1, metadata_endpoint) as node:
        out = finish(heartbeat_cmd(home, node.url, "--interval", "0.2", "--count", "15"))
        received = node.received()
    assert len(received) == 15 and len(reads) >= 15
    assert_no_equivocation(received, alice(home), 1)
    names = endpoints_named(received, "old.example.net:1", "new.example.net:1")
    assert names[0] == "old.example.net:1" and names[-1] == "new.example.net:1", out
    last_old = max(s.heartbeat.epoch for s, n in zip(received, names, strict=True) if n == "old.example.net:1")
    first_new = min(s.heartbeat.epoch for s, n in zip(received, names, strict=True) if n == "new.example.net:1")
    assert first_new > last_old
