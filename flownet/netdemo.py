"""The whole network on one machine, through the command line: what `make demo` runs.

A devnet with short dispute windows, a full node, two providers (one honest; one faulty, started
with `--fault drop-streams --fault over-meter`), three verifiers and a client, each its own process
with its own wallet. The client buys bandwidth from the honest provider and fetches a file through
its tunnel; the verifiers probe both providers as paying clients, catch the faulty one, agree on one
evidence document, open a dispute at quorum and execute it after the challenge window. The slash
lands, the faulty provider's trust score falls with the evidence as its reason, its certificate is
revoked, and `flownet fullnode reconcile` finds the ledger equal to the chain.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flownet.devnet import free_port
from flownet.errors import FlowNetError
from flownet.procs import FlownetHome
from flownet.tunnel.demo import socks_http_get

__all__ = ["NetworkDemo", "Outcome", "main"]

VERIFIERS = ("verifier1", "verifier2", "verifier3")


@dataclass
class Outcome:
    """What the run showed (for the summary table and the end-to-end test)."""

    honest: str = ""
    faulty: str = ""
    verifiers: list[str] = field(default_factory=list)
    client: str = ""
    fetched_bytes: int = 0
    fetched_ok: bool = False
    fetch_mb_s: float = 0.0
    dispute: dict[str, Any] = field(default_factory=dict)
    faulty_trust: dict[str, Any] = field(default_factory=dict)
    honest_trust: dict[str, Any] = field(default_factory=dict)
    faulty_cert_status: str = ""
    faulty_cert_exit: int = 0
    honest_disputes: int = 0
    reconcile: str = ""
    seconds: float = 0.0


class NetworkDemo:
    def __init__(
        self,
        workdir: Path,
        say: Callable[[str], None] = print,
        challenge_window: int = 20,
        file_mb: int = 10,
        timeout: float = 300.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.cli = FlownetHome(self.workdir / "home", logs=self.workdir / "logs")
        self.say = say
        self.challenge_window = challenge_window
        self.file_mb = file_mb
        self.timeout = timeout
        self.started = time.monotonic()
        self.outcome = Outcome()
        self.api = ""
        self.web: subprocess.Popen[bytes] | None = None
        self.web_port = free_port()
        self.devnet = False
        from rich.console import Console

        self.console = Console(stderr=True)  # the live "waiting for …" line (only on a terminal)

    # ------------------------------------------------------------------ helpers

    def step(self, text: str) -> None:
        self.say(f"[{time.monotonic() - self.started:6.1f} s] {text}")

    def get(self, path: str) -> Any:
        """The full node's JSON answer to ``GET path`` (FullNodeError, a FlowNetError, if it has none yet)."""
        from flownet.fullnode_client import FullNodeClient

        with FullNodeClient(self.api) as node:
            return node.call("GET", path)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float | None = None) -> Any:
        """Poll `check` until it returns something truthy; FlowNetError after the timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        with self.console.status(f"waiting for {what}"):
            return self._poll(what, check, deadline)

    def _poll(self, what: str, check: Callable[[], Any], deadline: float) -> Any:
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = check()
            except (OSError, ValueError, KeyError, FlowNetError) as exc:  # not there yet
                last = exc
                result = None
            else:
                result = last
            if result:
                return result
            time.sleep(0.5)
        raise FlowNetError(f"timed out waiting for {what} (last: {last!r})")

    def address(self, wallet: str) -> str:
        return self.cli.run("wallet", "address", wallet).strip()

    # ------------------------------------------------------------------ the run

    def run(self) -> Outcome:
        try:
            self._run()
        finally:
            self.close()
        self.outcome.seconds = time.monotonic() - self.started
        return self.outcome

    def _run(self) -> None:
        cli, out = self.cli, self.outcome
        self.step("wallets: honest, faulty, verifier1..3, client")
        for name in ("honest", "faulty", *VERIFIERS, "client"):
            cli.run("wallet", "new", name)
        out.honest, out.faulty, out.client = (self.address(n) for n in ("honest", "faulty", "client"))
        out.verifiers = [self.address(v) for v in VERIFIERS]
        self.step(f"devnet: anvil, contracts, funding; dispute challenge window {self.challenge_window} s")
        cli.run("devnet", "start", "--challenge-window", str(self.challenge_window), "--block-time", "1")
        self.devnet = True
        db = self.workdir / "fullnode.sqlite"
        api_port = free_port()
        self.api = cli.spawn(
            "fullnode",
            ["fullnode", "run", "--db", str(db), "--port", str(api_port), "--poll", "0.2", "--metadata-interval", "1"],
        )
        self.step(f"full node: indexing into {db.name}, API {self.api}")
        self._web_server()

        ports = {"honest": free_port(), "faulty": free_port()}
        for name, port in ports.items():
            cli.run("provider", "register", "--wallet", name, "--price", "1", "--endpoint", f"127.0.0.1:{port}")
            cli.run("cert", "new", "--wallet", name)
            cli.run("cert", "register", "--wallet", name)
            faults = ["--fault", "drop-streams", "--fault", "over-meter"] if name == "faulty" else []
            cli.spawn(
                name,
                [
                    "provider", "serve", "--wallet", name, "--listen", f"127.0.0.1:{port}",
                    "--allow", "127.0.0.1/32", "--db", str(self.workdir / f"{name}.index.sqlite"),
                    "--poll", "0.2", "--fullnode", self.api, "--redeem-interval", "2", *faults,
                ],
            )  # fmt: skip
        self.step(f"providers: honest {out.honest[:10]}… and faulty {out.faulty[:10]}… serving (staked, certified)")

        for name in VERIFIERS:
            cli.run("verifier", "register", "--wallet", name)
        probe = f"http://127.0.0.1:{self.web_port}/probe.bin"
        for name in VERIFIERS:
            cli.spawn(
                name,
                [
                    "verifier", "run", "--wallet", name, "--fullnode", self.api, "--probe-url", probe,
                    "--interval", "2", "--duration", f"{int(self.timeout)}s",
                ],
                ready_file=False,
            )  # fmt: skip
        self.step("verifiers: three staked verifiers probing both providers as paying clients")

        self._client()
        self._catch()
        self._verdict()

    def _web_server(self) -> None:
        www = self.workdir / "www"
        www.mkdir(parents=True, exist_ok=True)
        self.payload = os.urandom(self.file_mb * 1_000_000)
        (www / "file.bin").write_bytes(self.payload)
        (www / "probe.bin").write_bytes(os.urandom(1 << 20))
        self.web = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(www), str(self.web_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.step(f"web server: 127.0.0.1:{self.web_port} (the destination behind the tunnels)")

    def _client(self) -> None:
        cli, out = self.cli, self.outcome
        bought = cli.run("client", "buy", "--wallet", "client", "--provider", out.honest, "--deposit", "10")
        match = re.search(r"order (\d+) \(id 0x", bought)
        if match is None:
            raise FlowNetError(f"`flownet client buy` did not name its order: {bought[-500:]}")
        cli.run("cert", "new", "--wallet", "client")
        cli.run("cert", "register", "--wallet", "client")
        listen = cli.spawn(
            "client", ["client", "connect", "--wallet", "client", "--order", match.group(1), "--listen", "127.0.0.1:0"]
        )
        socks_port = int(listen.rsplit(":", 1)[1])
        started = time.monotonic()
        body = self.wait_for(
            "the client's first fetch through the honest provider",
            lambda: socks_http_get(socks_port, "127.0.0.1", self.web_port, "/file.bin"),
            timeout=60,
        )
        elapsed = time.monotonic() - started
        out.fetched_bytes = len(body)
        out.fetched_ok = hashlib.sha256(body).digest() == hashlib.sha256(self.payload).digest()
        out.fetch_mb_s = len(body) / elapsed / 1e6
        self.step(
            f"client: fetched {len(body):,} bytes through the honest provider at {out.fetch_mb_s:.0f} MB/s, "
            f"sha256 {'matches' if out.fetched_ok else 'DIFFERS'}; paying with signed receipts"
        )

    def _catch(self) -> None:
        out = self.outcome
        dispute = self.wait_for(
            "a dispute against the faulty provider",
            lambda: (self.get(f"/disputes?provider={out.faulty}").get("items") or [None])[0],
        )
        self.step(
            f"dispute {dispute['id']}: {len(dispute['verifiers'])} verifiers attest "
            f"'{dispute['kind_name']}' (evidence {dispute['evidence_cid'][:16]}…); "
            f"challenge window ends in {max(0, dispute['challenge_ends'] - int(time.time()))} s"
        )
        executed = self.wait_for(
            f"dispute {dispute['id']} to be executed after its window",
            lambda: (d := self.get(f"/disputes/{dispute['id']}"))["status"] == "executed" and d,
        )
        out.dispute = executed
        self.step(
            f"slash: {executed['slashed_flow']} taken from the faulty provider; "
            f"{int(executed['burned']) / 1e18:g} FLOW burned, {int(executed['reward']) / 1e18:g} FLOW to the "
            "verifiers (a quorum dispute pays no reward)"
        )

    def _verdict(self) -> None:
        cli, out = self.cli, self.outcome
        faulty = self.wait_for(
            "the faulty provider's trust score to fall",
            lambda: (p := self.get(f"/providers/{out.faulty}"))["trust"]["history"] and p,
        )
        out.faulty_trust = faulty["trust"]
        history = faulty["trust"]["history"]  # newest first; the verifiers may have slashed it more than once
        self.step(
            f"trust: faulty provider's network score {history[-1]['old']} → {faulty['trust']['score']} "
            f"after {len(history)} slash(es) (first reason {history[-1]['reason_cid'][:16]}…)"
        )
        honest = self.get(f"/providers/{out.honest}")
        out.honest_trust = honest["trust"]
        out.honest_disputes = len(honest.get("disputes") or [])
        cert = self.workdir / "home" / "certs" / "faulty.crt.pem"
        db = self.workdir / "fullnode.sqlite"
        status = subprocess.run(
            [sys.executable, "-m", "flownet.cli", "cert", "status", "--db", str(db), str(cert)],
            env=cli.env,
            capture_output=True,
            check=False,
        )
        fields = [line.split(None, 1) for line in status.stdout.decode().splitlines()]
        lines = {f[0]: f[1] for f in fields if len(f) == 2}
        out.faulty_cert_status = f"{lines.get('status', '?')}: {lines.get('revoked', '')}".strip(": ")
        out.faulty_cert_exit = status.returncode
        self.step(f"certificate of the faulty provider: {out.faulty_cert_status}")
        for name in ("client", *VERIFIERS, "honest", "faulty"):
            cli.stop(name)
        cli.stop("fullnode")
        out.reconcile = cli.run("fullnode", "reconcile", "--db", str(db)).strip().splitlines()[-1]
        self.step(f"reconcile: {out.reconcile}")

    def close(self) -> None:
        self.cli.stop_all()
        if self.web is not None:
            self.web.terminate()
            self.web.wait(10)
            self.web = None
        if self.devnet:
            self.devnet = False
            try:
                self.cli.run("devnet", "stop")
            except FlowNetError as exc:
                self.say(f"devnet stop: {exc}")


def summary(out: Outcome) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table("", "what happened", title="FlowNet network demo")
    table.add_row("client", f"{out.fetched_bytes:,} bytes via the honest provider, sha256 ok: {out.fetched_ok}")
    d = out.dispute
    table.add_row(
        "dispute", f"#{d.get('id')} {d.get('kind_name')} by {len(d.get('verifiers', []))} verifiers → {d.get('status')}"
    )
    table.add_row(
        "slash",
        f"{d.get('slashed_flow')} (reward {int(d.get('reward', 0)) / 1e18:g} FLOW, "
        f"burned {int(d.get('burned', 0)) / 1e18:g} FLOW)",
    )
    history = out.faulty_trust.get("history") or [{}]  # newest first
    table.add_row(
        "trust",
        f"faulty {history[-1].get('old')} → {out.faulty_trust.get('score')}; "
        f"honest {out.honest_trust.get('score')} ({out.honest_disputes} disputes)",
    )
    table.add_row("certificate", out.faulty_cert_status)
    table.add_row("reconcile", out.reconcile)
    table.add_row("time", f"{out.seconds:.0f} s")
    console = Console(width=120, record=True)
    with console.capture() as capture:
        console.print(table)
    return capture.get()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flownet netdemo", description=__doc__.splitlines()[0])
    parser.add_argument("--challenge-window", type=int, default=20, help="dispute challenge window, seconds")
    parser.add_argument("--file-mb", type=int, default=10, help="size of the client's download")
    parser.add_argument("--keep", type=Path, help="keep logs and databases in this directory")
    args = parser.parse_args(argv)
    try:
        if args.keep:
            outcome = NetworkDemo(args.keep, challenge_window=args.challenge_window, file_mb=args.file_mb).run()
        else:
            with tempfile.TemporaryDirectory(prefix="flownet-netdemo-") as tmp:
                outcome = NetworkDemo(Path(tmp), challenge_window=args.challenge_window, file_mb=args.file_mb).run()
    except FlowNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(summary(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
