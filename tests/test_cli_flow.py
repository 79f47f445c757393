"""The README's user journey through CLI commands only, and every error of issue 3 point 8, one by one.

A devnet is started with `flownet devnet start` in a temporary FLOWNET_HOME and stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flownet.chain.connect import http_web3
from flownet.cli import cli
from flownet.devnet import read_state

ENV = {"FLOWNET_SCRYPT_N": "1024", "FLOWNET_PASSWORD": "devnet-test-password"}


class Shell:
    """Runs `flownet` commands in one FLOWNET_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str] | None = None, home: Path | None = None) -> Result:
        return self.runner.invoke(
            cli, ["--home", str(home or self.home), *args], env={**ENV, **(env or {})}, catch_exceptions=False
        )

    def ok(self, *args: str, **kwargs: object) -> str:
        result = self(*args, **kwargs)  # type: ignore[arg-type]
        assert result.exit_code == 0, f"flownet {' '.join(args)} exited {result.exit_code}:\n{result.output}"
        return result.output

    def fails(self, code: int, message: str, *args: str, **kwargs: object) -> str:
        """Run a command that must fail with `code` and a one-line error containing `message`."""
        result = self(*args, **kwargs)  # type: ignore[arg-type]
        output = result.output
        assert result.exit_code == code, f"expected exit {code}, got {result.exit_code}:\n{output}"
        assert "Traceback" not in output
        errors = [line for line in output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, output
        assert message in errors[0], errors[0]
        return errors[0]


@pytest.fixture(scope="module")
def sh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    shell = Shell(tmp_path_factory.mktemp("flownet-home"))
    shell.ok("wallet", "new", "alice")
    shell.ok("wallet", "new", "bob")
    shell.ok("devnet", "start")
    try:
        yield shell
    finally:
        shell.ok("devnet", "stop")


def _address(sh: Shell, name: str) -> str:
    return sh.ok("wallet", "address", name).strip()


def _chain_snapshot(sh: Shell) -> tuple[int, str]:
    state = read_state(sh.home / "devnet")
    assert state is not None
    w3 = http_web3(state.rpc_url)
    return w3.eth.block_number, sh.ok("provider", "status", "--wallet", "alice")


def test_provider_and_client_journey(sh: Shell) -> None:
    alice = _address(sh, "alice")
    out = sh.ok("provider", "register", "--wallet", "alice", "--price", "2", "--endpoint", "127.0.0.1:7443")
    assert f"provider {alice} registered" in out
    status = sh.ok("provider", "status", "--wallet", "alice")
    assert "1,000 FLOW active" in status and "2 FLOW/GiB" in status and "(signature ok)" in status

    out = sh.ok("client", "buy", "--wallet", "bob", "--provider", alice, "--deposit", "50", "--duration", "2h")
    assert "openOrderWithPermit" in out and "order 1 (id 0x" in out
    orders = sh.ok("client", "orders", "--wallet", "bob")
    assert alice in orders and "50 FLOW" in orders and "open" in orders
    status = sh.ok("provider", "status", "--wallet", "alice")
    assert _address(sh, "bob") in status and "orders    1" in status and "25 FLOW locked" in status

    signature = sh.ok("provider", "sign-close", "1", "--final", "0", "--wallet", "alice").strip()
    out = sh.ok("client", "close", "1", "--final", "0", "--provider-signature", signature, "--wallet", "bob")
    assert "order 1 closed; 50 FLOW returned to you" in out
    assert "closed" in sh.ok("client", "orders", "--wallet", "bob")


def test_provider_cancels_an_unaccepted_order_and_refuses_its_client(sh: Shell) -> None:
    """Issue 11, finding 6 from the command line: a provider gets back the stake a client's unused order
    locks, refuses the client, and lifts the refusal; the client's balance ends where it started."""
    alice, bob = _address(sh, "alice"), _address(sh, "bob")
    out = sh.ok("client", "buy", "--wallet", "bob", "--provider", alice, "--deposit", "30", "--duration", "7d")
    assert "order 2 (id 0x" in out
    assert "15 FLOW locked" in sh.ok("provider", "status", "--wallet", "alice")

    out = sh.ok("provider", "cancel", "2", "--refuse-for", "1d", "--wallet", "alice")
    assert "cancel " in out and f"order 2 cancelled: 30 FLOW refunded to {bob}, 15 FLOW of your stake unlocked" in out
    assert f"{bob} refused until" in out
    status = sh.ok("provider", "status", "--wallet", "alice")
    assert "0 FLOW locked" in status and "cancelled" in status
    assert "cancelled" in sh.ok("client", "orders", "--wallet", "bob")
    line = sh.fails(4, f"refuses orders from {bob} until", "client", "buy", "--wallet", "bob", "--provider", alice,
                    "--deposit", "30")  # fmt: skip
    assert line.endswith("[MarketClientRefused]")
    sh.fails(2, "order 2 is not open", "provider", "cancel", "2", "--wallet", "alice")

    assert f"{bob} may open orders with you again" in sh.ok("provider", "refuse", bob, "--lift", "--wallet", "alice")
    # 7 days, like order 2: `provider status` shows expiry as "in 7.0 d" for over an hour, so the later
    # tests' before/after snapshots of it stay equal (a 1-day order turns "in 1.0 d" into "in 24.0 h" at once).
    out = sh.ok("client", "buy", "--wallet", "bob", "--provider", alice, "--deposit", "30", "--duration", "7d")
    assert "order 3 (id 0x" in out
    assert "order 3 cancelled: 30 FLOW refunded" in sh.ok("provider", "cancel", "3", "--wallet", "alice")
    assert f"{bob} refused for good" in sh.ok("provider", "refuse", bob, "--wallet", "alice")
    sh.ok("provider", "refuse", bob, "--lift", "--wallet", "alice")


def test_error_rpc_unreachable(sh: Shell) -> None:
    sh.fails(
        4,
        "no JSON-RPC node answers at http://127.0.0.1:9",
        "--rpc-url",
        "http://127.0.0.1:9",
        "client",
        "orders",
        "--wallet",
        "bob",
    )


def test_error_chain_id_differs_from_manifest(sh: Shell, tmp_path: Path) -> None:
    manifest = json.loads((sh.home / "devnet" / "deployment.json").read_text())
    manifest["chain_id"] = 1
    other = tmp_path / "other-chain.json"
    other.write_text(json.dumps(manifest))
    before = _chain_snapshot(sh)
    sh.fails(5, "is on chain 31337, but manifest", "--manifest", str(other), "client", "orders", "--wallet", "bob")
    assert _chain_snapshot(sh) == before


def test_error_no_contract_at_manifest_address(sh: Shell, tmp_path: Path) -> None:
    manifest = json.loads((sh.home / "devnet" / "deployment.json").read_text())
    manifest["addresses"]["BandwidthMarket"] = "0x000000000000000000000000000000000000dEaD"
    other = tmp_path / "moved.json"
    other.write_text(json.dumps(manifest))
    sh.fails(
        5,
        "no contract at BandwidthMarket address 0x000000000000000000000000000000000000dEaD",
        "--manifest",
        str(other),
        "client",
        "orders",
        "--wallet",
        "bob",
    )


def test_error_insufficient_balance(sh: Shell) -> None:
    alice = _address(sh, "alice")
    before = _chain_snapshot(sh)
    sh.fails(
        2,
        "holds 100,000 FLOW, less than the deposit 1,000,000 FLOW",
        "client",
        "buy",
        "--wallet",
        "bob",
        "--provider",
        alice,
        "--deposit",
        "1000000",
    )
    sh.ok("wallet", "new", "carol")
    sh.ok("devnet", "fund", "carol", "--flow", "10")
    line = sh.fails(
        4, "FlowToken:", "provider", "register", "--wallet", "carol", "--price", "1", "--endpoint", "127.0.0.1:7444"
    )
    assert "holds 10 FLOW but 1,000 FLOW is needed [ERC20InsufficientBalance]" in line
    assert _chain_snapshot(sh)[1] == before[1]


def test_error_insufficient_allowance(sh: Shell) -> None:
    # The CLI approves what it needs; through the SDK a stake without approval is explained in words.
    from flownet.chain.deploy import Deployment
    from flownet.chain.market import FlowNet, Role
    from flownet.errors import TransactionFailed
    from flownet.wallet import Keystores

    state = read_state(sh.home / "devnet")
    assert state is not None
    w3 = http_web3(state.rpc_url)
    account = Keystores(sh.home / "keystores").unlock("bob", ENV["FLOWNET_PASSWORD"])
    net = FlowNet(w3, Deployment.load(sh.home / "devnet" / "deployment.json"), account)
    block = w3.eth.block_number
    with pytest.raises(TransactionFailed) as excinfo:
        net.stake(Role.VERIFIER, 500 * 10**18)
    assert str(excinfo.value) == (
        f"stake failed: FlowToken: {net.staking.address} may spend 0 FLOW but 500 FLOW is needed (approve first) "
        "[ERC20InsufficientAllowance]"
    )
    assert excinfo.value.exit_code == 4
    assert w3.eth.block_number == block


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["client", "buy", "--provider", "0x1234", "--deposit", "5"],
            "invalid provider address '0x1234': expected 0x followed by 40 hex digits",
        ),
        (
            ["client", "buy", "--provider", "0x000000000000000000000000000000000000dEaD", "--deposit", "five"],
            "invalid deposit 'five': expected a number of FLOW",
        ),
        (
            [
                "client",
                "buy",
                "--provider",
                "0x000000000000000000000000000000000000dEaD",
                "--deposit",
                "1.0000000000000000001",
            ],
            "FLOW has at most 18 decimals",
        ),
        (
            [
                "client",
                "buy",
                "--provider",
                "0x000000000000000000000000000000000000dEaD",
                "--deposit",
                "5",
                "--duration",
                "soon",
            ],
            "invalid duration 'soon'",
        ),
        (["provider", "register", "--price", "-1", "--endpoint", "127.0.0.1:1"], "invalid price '-1'"),
        (["provider", "register", "--price", "1", "--endpoint", "nohost"], "invalid endpoint 'nohost'"),
        (["devnet", "fund", "bob", "--flow", "lots"], "invalid --flow 'lots'"),
    ],
)
def test_error_bad_address_or_amount(sh: Shell, args: list[str], message: str) -> None:
    before = _chain_snapshot(sh)
    sh.fails(2, message, *args, "--wallet", "bob") if args[0] != "devnet" else sh.fails(2, message, *args)
    assert _chain_snapshot(sh) == before


def test_error_wrong_keystore_password(sh: Shell) -> None:
    alice = _address(sh, "alice")
    sh.fails(
        7,
        "wrong password for wallet 'bob'",
        "client",
        "buy",
        "--wallet",
        "bob",
        "--provider",
        alice,
        "--deposit",
        "1",
        env={"FLOWNET_PASSWORD": "not-it"},
    )


def test_error_cid_does_not_match_bytes(sh: Shell) -> None:
    alice = _address(sh, "alice")
    status = sh.ok("provider", "status", alice)
    cid = next(w for w in status.split() if w.startswith("bafkrei")).rstrip(":")
    blobs = [p for p in (sh.home / "blobs" / "objects").rglob(cid) if p.is_file()]
    assert blobs, f"blob {cid} not found under {sh.home / 'blobs'}"
    original = blobs[0].read_bytes()
    try:
        os.chmod(blobs[0], 0o644)
        blobs[0].write_bytes(original.replace(b"127.0.0.1:7443", b"10.66.66.66:443"))
        sh.fails(8, "does not match its CID", "provider", "update", "--wallet", "alice", "--region", "us-east")
        assert "unavailable" in sh.ok("provider", "status", alice)
    finally:
        blobs[0].write_bytes(original)
    assert "(signature ok)" in sh.ok("provider", "status", alice)


def test_devnet_stop_ends_only_its_own_process(tmp_path: Path) -> None:
    shell = Shell(tmp_path)
    assert "not running" in shell.ok("devnet", "status")
    shell.ok("devnet", "start")
    state = read_state(tmp_path / "devnet")
    assert state is not None
    shutil.copy(tmp_path / "devnet" / "state.json", tmp_path / "state.bak")
    assert "stopped anvil pid" in shell.ok("devnet", "stop")
    with pytest.raises(ProcessLookupError):
        os.kill(state.pid, 0)
    # A stale pid file now naming another live process (this test runner) is never signalled.
    stale = json.loads((tmp_path / "state.bak").read_text())
    stale["pid"] = os.getpid()
    (tmp_path / "devnet" / "state.json").write_text(json.dumps(stale))
    assert "no longer running" in shell.ok("devnet", "stop")
    os.kill(os.getpid(), 0)


def test_devnet_start_with_a_short_challenge_window(tmp_path: Path) -> None:
    from flownet.chain.deploy import Deployment

    shell = Shell(tmp_path)
    shell.ok("devnet", "start", "--challenge-window", "20")
    try:
        state = read_state(tmp_path / "devnet")
        assert state is not None
        w3 = http_web3(state.rpc_url)
        deployment = Deployment.load(tmp_path / "devnet" / "deployment.json")
        config = deployment.contract(w3, "SlashingManager").functions.config().call()
        assert config[0] == 20  # challengeWindow
        assert deployment.contract(w3, "Staking").functions.thawPeriod().call() == 120
    finally:
        shell.ok("devnet", "stop")
    bad = shell("devnet", "start", "--challenge-window", "0")
    assert bad.exit_code == 2 and "'--challenge-window': 0 is not in the range" in bad.output
