"""A throw-away IPFS node for tests and local use: js-ipfs (npm ``ipfs``) offline on 127.0.0.1.

js-ipfs serves the same HTTP RPC API as Kubo, and unlike Kubo it installs from the npm registry.
``with IpfsNode() as node: KuboStore(node.api_url)`` initialises a repository in a temp directory
with no swarm addresses, no bootstrap peers and no delegates, starts the daemon offline with the API
on a free loopback port, waits (bounded) until ``/api/v0/id`` answers, and on exit stops it by PID
(SIGTERM, then SIGKILL) and removes the repository. See DEVELOPERS.md, "The IPFS test node".

``python -m flownet.blobs.ipfsnode`` runs one until Ctrl-C and prints its API URL.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from flownet.errors import BlobError, ConfigError

__all__ = ["IpfsNode", "node_config"]

ROOT = Path(__file__).resolve().parents[2]
CLI = Path("node_modules", "ipfs", "src", "cli.js")  # the `jsipfs` bin of the npm package
POLYFILL = Path("tools", "ipfs", "polyfill.cjs")  # Promise.withResolvers for Node < 22


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def node_config(api_port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    """The repository config: API on `host:api_port`, no gateway, no gRPC, no peers, no network."""
    return {
        "Addresses": {
            "Swarm": [],
            "Announce": [],
            "NoAnnounce": [],
            "API": f"/ip4/{host}/tcp/{api_port}",
            "Gateway": "",
            "RPC": "",
            "Delegates": [],
        },
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
    }


class IpfsNode:
    """``with IpfsNode() as node: node.api_url`` runs js-ipfs offline on 127.0.0.1 for the block."""

    def __init__(self, startup_timeout: float = 60.0, root: Path = ROOT) -> None:
        self.startup_timeout = startup_timeout
        self.root = root
        self.host = "127.0.0.1"
        self.port = 0
        self.workdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "daemon.log" if self.workdir else None

    def command(self, config_file: Path) -> list[str]:
        node = shutil.which("node")
        if node is None:
            raise ConfigError("node (Node.js >= 20) is not on PATH; it runs the js-ipfs test node")
        cli = self.root / CLI
        if not cli.is_file():
            raise ConfigError(f"js-ipfs is not installed at {cli}: run `npm ci` (or `make setup`)")
        return [
            node,
            "--require",
            str(self.root / POLYFILL),
            str(cli),
            "daemon",
            "--init-config",
            str(config_file),
            "--offline",
            "--enable-preload=false",
        ]

    def start(self) -> IpfsNode:
        """Start the daemon; BlobError with its output if it does not answer within startup_timeout."""
        if self.process is not None:
            raise BlobError(f"the IPFS node at {self.api_url} is already running (pid {self.process.pid})")
        began = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix="flownet-ipfs-"))
        try:
            self._launch()
            self._wait_until_ready(began)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _launch(self) -> None:
        assert self.workdir is not None and self.log_path is not None
        self.port = free_port(self.host)
        config_file = self.workdir / "config.json"
        config_file.write_text(json.dumps(node_config(self.port, self.host), indent=2))
        env = {key: value for key, value in os.environ.items() if key not in ("DEBUG", "IPFS_PATH")}
        env["IPFS_PATH"] = str(self.workdir / "repo")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(config_file),
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_until_ready(self, began: float) -> None:
        assert self.process is not None
        deadline = began + self.startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise BlobError(
                        f"the js-ipfs node exited with code {self.process.returncode} before answering on "
                        f"{self.api_url}; its output:\n{self.output()}"
                    )
                try:
                    if client.post(f"{self.api_url}/api/v0/id").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass  # not listening yet
                time.sleep(0.1)
        raise BlobError(
            f"the js-ipfs node did not answer on {self.api_url} within {self.startup_timeout:g} s; "
            f"its output:\n{self.output()}"
        )

    def output(self, limit: int = 20_000) -> str:
        """The daemon's stdout and stderr so far (the end of it, at most `limit` characters)."""
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return "(no output)"
        return text[-limit:].strip() or "(no output)"

    def stop(self) -> None:
        """Terminate the daemon by its PID (SIGTERM, then SIGKILL after 10 s) and remove its repository."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        workdir, self.workdir = self.workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    def __enter__(self) -> IpfsNode:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> int:
    with IpfsNode() as node:
        print(f"js-ipfs pid {node.pid} ready in {node.startup_seconds:.1f} s")
        print(f"FLOWNET_IPFS_API={node.api_url}  (Ctrl-C stops it and deletes its repository)", flush=True)
        try:
            while node.process is not None and node.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
