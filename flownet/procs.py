"""Running `flownet` commands in one FLOWNET_HOME, in the foreground or as background agents.

The tunnel's local network, the benchmarks and the demos drive FlowNet exactly as a user would:
through the command line, each agent its own process. `FlownetHome.run` runs a command and returns
its output (FlowNetError with the output if it fails); `FlownetHome.spawn` starts an agent with
`--ready-file` and waits until it has written it; `stop` sends SIGTERM and waits, so agents shut
down cleanly (clients pay, providers redeem).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from flownet.errors import FlowNetError

__all__ = ["FlownetHome"]


class FlownetHome:
    def __init__(self, home: Path, logs: Path | None = None) -> None:
        self.home = Path(home)
        self.logs = Path(logs) if logs else self.home.parent
        self.env = {
            **os.environ,
            "FLOWNET_SCRYPT_N": "1024",  # fast keystores: these wallets live only as long as the run
            "FLOWNET_PASSWORD": secrets.token_hex(16),
            "FLOWNET_HOME": str(self.home),
        }
        for key in ("FLOWNET_WALLET", "FLOWNET_RPC_URL", "FLOWNET_MANIFEST", "FLOWNET_PASSWORD_FILE"):
            self.env.pop(key, None)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def run(self, *args: str, timeout: float = 120) -> str:
        """Run `flownet ARGS`; its stdout, or FlowNetError carrying its output."""
        done = subprocess.run(
            [sys.executable, "-m", "flownet.cli", *args],
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise FlowNetError(f"flownet {' '.join(args)} exited {done.returncode}: {output[-2000:]}")
        return done.stdout.decode()

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def log_of(self, name: str) -> str:
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def spawn(self, name: str, args: Sequence[str], timeout: float = 120, ready_file: bool = True) -> str:
        """Start `flownet ARGS --ready-file F` as agent `name`; the text it wrote to F once ready.

        With `ready_file=False` the agent is only started (for commands without --ready-file).
        """
        if name in self.procs:
            raise FlowNetError(f"an agent named {name!r} is already running")
        self.logs.mkdir(parents=True, exist_ok=True)
        ready = self.logs / f"{name}.ready"
        ready.unlink(missing_ok=True)
        with self.log_path(name).open("wb") as out:
            extra = ["--ready-file", str(ready)] if ready_file else []
            proc = subprocess.Popen(
                [sys.executable, "-m", "flownet.cli", *args, *extra],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        if not ready_file:
            return ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready.exists() and ready.read_text().endswith("\n"):
                return ready.read_text().strip()
            if proc.poll() is not None:
                self.procs.pop(name, None)
                raise FlowNetError(f"{name} exited {proc.returncode}: {self.log_of(name)[-2000:]}")
            time.sleep(0.05)
        raise FlowNetError(f"{name} was not ready after {timeout:.0f} s: {self.log_of(name)[-2000:]}")

    def stop(self, name: str, timeout: float = 120) -> int | None:
        """SIGTERM agent `name` and wait for it; its exit code (None if it was not running)."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)
