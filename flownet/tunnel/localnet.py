"""A whole tunnel on this machine, driven through the real command line: for the end-to-end test,
the tunnel benchmark and anyone who wants to try it.

`LocalTunnelNet` makes two wallets in a fresh FLOWNET_HOME, starts a devnet (anvil, contracts,
funding), registers a provider with an offer, buys an order, creates and registers both
certificates on chain, then runs `flownet provider serve` and `flownet client connect` as separate
processes, exactly as users would. Leaving the context stops the client (which pays its last
receipt), then the provider (which redeems everything outstanding), then the devnet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from flownet.devnet import free_port
from flownet.errors import FlowNetError
from flownet.procs import FlownetHome

__all__ = ["LocalTunnelNet"]


class LocalTunnelNet:
    def __init__(
        self,
        workdir: Path,
        allow: Sequence[str] = ("127.0.0.1/32",),
        log: Callable[[str], None] = print,
        price: str = "1",
        deposit: str = "1000",
        receipt_interval_mib: float = 4.0,
        credit_window_mib: float = 16.0,
        provider_args: Sequence[str] = (),
        extra_wallets: Sequence[str] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.home = self.workdir / "home"
        self.allow = tuple(allow)
        self.log = log
        self.price = price
        self.deposit = deposit
        self.receipt_interval_mib = receipt_interval_mib
        self.credit_window_mib = credit_window_mib
        self.provider_args = tuple(provider_args)
        self.extra_wallets = tuple(extra_wallets)  # made (and funded by the devnet) next to the two agents
        self.cli = FlownetHome(self.home, logs=self.workdir)
        self.provider_port = free_port()
        self.socks_port = 0
        self.provider_address = ""
        self.client_address = ""
        self._devnet = False

    def flownet(self, *args: str, timeout: float = 120) -> str:
        """Run `flownet ARGS` in this home; its stdout, or FlowNetError with its output."""
        return self.cli.run(*args, timeout=timeout)

    def __enter__(self) -> LocalTunnelNet:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self.log("localnet: wallets, devnet, provider offer, order, certificates")
        self.flownet("wallet", "new", "provider")
        self.flownet("wallet", "new", "client")
        for name in self.extra_wallets:
            self.flownet("wallet", "new", name)
        self.provider_address = self.flownet("wallet", "address", "provider").strip()
        self.client_address = self.flownet("wallet", "address", "client").strip()
        self.flownet("devnet", "start")
        self._devnet = True
        endpoint = f"127.0.0.1:{self.provider_port}"
        self.flownet("provider", "register", "--wallet", "provider", "--price", self.price, "--endpoint", endpoint)
        self.flownet(
            "client", "buy", "--wallet", "client", "--provider", self.provider_address, "--deposit", self.deposit
        )
        for name in ("provider", "client"):
            self.flownet("cert", "new", "--wallet", name)
            self.flownet("cert", "register", "--wallet", name)
        allow = [arg for net in self.allow for arg in ("--allow", net)]
        self.cli.spawn(
            "provider",
            [
                "provider",
                "serve",
                "--wallet",
                "provider",
                "--listen",
                endpoint,
                *allow,
                "--poll",
                "0.2",
                "--credit-window",
                str(self.credit_window_mib),
                *self.provider_args,
            ],
        )
        address = self.cli.spawn(
            "client",
            [
                "client",
                "connect",
                "--order",
                "1",
                "--wallet",
                "client",
                "--listen",
                "127.0.0.1:0",
                "--receipt-interval",
                str(self.receipt_interval_mib),
            ],
        )
        self.socks_port = int(address.rsplit(":", 1)[1])
        self.log(f"localnet: ready in {time.monotonic() - started:.1f} s; SOCKS5 on 127.0.0.1:{self.socks_port}")

    def stop_process(self, name: str, timeout: float = 120) -> int | None:
        """SIGTERM `name` ("client" or "provider") and wait for it; its exit code."""
        return self.cli.stop(name, timeout)

    def log_of(self, name: str) -> str:
        return self.cli.log_of(name)

    def close(self) -> None:
        self.stop_process("client")
        self.stop_process("provider")
        if self._devnet:
            self._devnet = False
            try:
                self.flownet("devnet", "stop")
            except FlowNetError as exc:
                self.log(f"localnet: {exc}")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
