"""A local anvil devnet on a free loopback port, started and stopped by PID, plus test-ether funding.

Used by the pytest fixture and by ``make demo``. Anvil's own dev accounts are unlocked and only ever
used through ``eth_sendTransaction`` to fund keys FlowNet generates; no private key is written down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from web3 import Web3
from web3.providers.rpc import HTTPProvider
from web3.types import Wei

from flownet.errors import ChainError, ConfigError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]


def find_anvil() -> Path:
    """The anvil binary: $FLOWNET_ANVIL, else the one npm installed, else anvil on PATH."""
    configured = os.environ.get("FLOWNET_ANVIL")
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"FLOWNET_ANVIL={configured!r} is not a file")
        return path
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    system = platform.system().lower()
    bundled = ROOT / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if bundled.is_file():
        return bundled
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise ConfigError(f"anvil not found at {bundled} nor on PATH: run `npm ci` (or `make setup`)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Anvil:
    """``with Anvil() as node: node.url`` runs anvil on 127.0.0.1 for the block's duration."""

    def __init__(self, chain_id: int = 31337, block_time: float | None = None, startup_timeout: float = 20.0) -> None:
        self.chain_id = chain_id
        self.block_time = block_time
        self.startup_timeout = startup_timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> Anvil:
        binary = find_anvil()
        self.port = free_port(self.host)
        cmd = [str(binary), "--host", self.host, "--port", str(self.port), "--chain-id", str(self.chain_id), "--silent"]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.startup_timeout
        w3 = Web3(HTTPProvider(self.url, request_kwargs={"timeout": 2}))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise ChainError(f"anvil exited with code {self.process.returncode} on port {self.port}: {err.strip()}")
            try:
                if w3.eth.chain_id == self.chain_id:
                    log.info("anvil pid %d listening on %s", self.process.pid, self.url)
                    return self
            except Exception:  # not listening yet
                time.sleep(0.05)
        self.stop()
        raise ChainError(f"anvil did not answer on {self.url} within {self.startup_timeout:.0f} s")

    def stop(self) -> None:
        """Terminate anvil by its PID (SIGTERM, then SIGKILL after 5 s)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.stderr:
            proc.stderr.close()
        if proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.info("anvil pid %d stopped", proc.pid)

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def fund(w3: Web3, address: str, wei: int) -> None:
    """Send `wei` test ether to `address` from the node's first unlocked dev account."""
    accounts = w3.eth.accounts
    if not accounts:
        raise ChainError("the node has no unlocked dev account to fund from (is it anvil or eth-tester?)")
    tx_hash = w3.eth.send_transaction({"from": accounts[0], "to": address, "value": Wei(wei)})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.01)
    if receipt["status"] != 1:
        raise ChainError(f"funding {address} failed in tx 0x{bytes(tx_hash).hex()}")


# ---------------------------------------------------------------------------------------------------
# A detached devnet for the CLI: `flownet devnet start | stop | status | fund`.


@dataclass(frozen=True)
class DevnetState:
    """What `flownet devnet start` records in $FLOWNET_HOME/devnet/state.json."""

    pid: int
    port: int
    rpc_url: str
    chain_id: int
    manifest: str
    log: str
    started_at: float

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)


def _state_path(directory: Path) -> Path:
    return directory / "state.json"


def read_state(directory: Path) -> DevnetState | None:
    try:
        return DevnetState(**json.loads(_state_path(directory).read_text()))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, TypeError) as exc:
        raise ConfigError(f"devnet state {_state_path(directory)} is corrupt ({exc}); delete it") from None


def is_our_anvil(state: DevnetState) -> bool:
    """True when `state.pid` is alive and is the anvil listening on `state.port` (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in cmdline]
    return bool(args) and Path(args[0]).name == "anvil" and str(state.port) in args


def start_detached(
    directory: Path, chain_id: int = 31337, port: int | None = None, block_time: int | None = None
) -> DevnetState:
    """Start anvil in its own session (it outlives this process), logging to `directory`/anvil.log.

    Anvil mines a block per transaction. With `block_time` it also mines an empty block every that
    many seconds (mixed mining), so block timestamps keep up with the clock as on a real chain — which
    time windows such as a dispute's challenge window need when nothing else is happening.
    """
    existing = read_state(directory)
    if existing and is_our_anvil(existing):
        raise ConfigError(
            f"a devnet is already running (pid {existing.pid}, {existing.rpc_url}); run `flownet devnet stop` first"
        )
    directory.mkdir(parents=True, exist_ok=True)
    host = "127.0.0.1"
    port = port or free_port(host)
    log_path = directory / "anvil.log"
    cmd = [str(find_anvil()), "--host", host, "--port", str(port), "--chain-id", str(chain_id)]
    if block_time is not None:
        if block_time <= 0:
            raise ConfigError(f"block time must be a positive number of seconds (not {block_time})")
        cmd += ["--block-time", str(block_time), "--mixed-mining"]
    # posix_spawn with setsid: anvil gets its own session and outlives this process; no Popen object is
    # left behind to warn about a child that is meant to keep running.
    pid = os.posix_spawn(
        cmd[0],
        cmd,
        dict(os.environ),
        setsid=True,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
    )
    state = DevnetState(
        pid=pid,
        port=port,
        rpc_url=f"http://{host}:{port}",
        chain_id=chain_id,
        manifest=str(directory / "deployment.json"),
        log=str(log_path),
        started_at=time.time(),
    )
    (directory / "anvil.pid").write_text(f"{pid}\n")
    w3 = Web3(HTTPProvider(state.rpc_url, request_kwargs={"timeout": 2}))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        exited, status = os.waitpid(pid, os.WNOHANG)
        if exited:
            tail = log_path.read_text(errors="replace")[-500:]
            raise ChainError(f"anvil exited with status {os.waitstatus_to_exitcode(status)}: {tail.strip()}")
        try:
            if w3.eth.chain_id == chain_id:
                return state
        except Exception:  # not listening yet
            time.sleep(0.05)
    stop_pid(pid)
    raise ChainError(f"anvil did not answer on {state.rpc_url} within 20 s (log: {log_path})")


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM `pid`, then SIGKILL if it is still alive after `timeout` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    # A child of this very process (tests start and stop in one process) must be reaped to vanish.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_detached(directory: Path) -> tuple[DevnetState | None, bool]:
    """Stop the devnet recorded in `directory`. Returns (state, whether a process was stopped).

    Only the recorded anvil is signalled: if its pid now belongs to another program, nothing is killed.
    """
    state = read_state(directory)
    if state is None:
        return None, False
    stopped = False
    if is_our_anvil(state):
        stop_pid(state.pid)
        stopped = True
    for name in ("state.json", "anvil.pid"):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
    return state, stopped
