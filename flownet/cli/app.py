"""What every command shares: settings, the console, and lazily built chain, deployment and wallets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import click
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.markup import escape
from web3 import Web3

from flownet.chain.connect import http_web3
from flownet.chain.deploy import Deployment
from flownet.chain.market import FlowNet
from flownet.config import Settings
from flownet.errors import ConfigError, DeploymentError
from flownet.wallet import Keystores, WalletInfo, resolve_password


class App:
    """The object behind ``click.pass_obj``."""

    def __init__(self, settings: Settings, debug: bool = False, password_file: Path | None = None) -> None:
        self.settings = settings
        self.debug = debug
        self.password_file = password_file
        # soft_wrap: never break addresses and hashes across lines, so output can be copied and parsed.
        self.console = Console(highlight=False, soft_wrap=True)
        if not self.console.is_terminal:  # piped or captured: wide enough for full addresses in tables
            self.console = Console(highlight=False, soft_wrap=True, width=200)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    @cached_property
    def keystores(self) -> Keystores:
        # FLOWNET_SCRYPT_N lowers the key-derivation cost for tests; real wallets keep geth's 2^18.
        return Keystores(self.settings.keystore_dir, scrypt_n=int(os.environ.get("FLOWNET_SCRYPT_N", 2**18)))

    @cached_property
    def w3(self) -> Web3:
        with self.status(f"connecting to {self.settings.rpc_url}"):
            return http_web3(self.settings.rpc_url)

    @cached_property
    def deployment(self) -> Deployment:
        """The manifest's deployment, checked against the chain: same chain id, code at every address."""
        deployment = Deployment.load(self.settings.manifest)
        chain_id = self.w3.eth.chain_id
        if chain_id != deployment.chain_id:
            raise DeploymentError(
                f"the node at {self.settings.rpc_url} is on chain {chain_id}, but manifest "
                f"{self.settings.manifest} is for chain {deployment.chain_id}"
            )
        for name, address in deployment.addresses.items():
            if not self.w3.eth.get_code(address):
                raise DeploymentError(
                    f"no contract at {name} address {address} from manifest {self.settings.manifest} "
                    f"(was the chain reset? run `flownet devnet start` again or fix --manifest)"
                )
        return deployment

    def wallet_name(self, name: str | None) -> str:
        chosen = name or self.settings.wallet
        if not chosen:
            raise ConfigError("no wallet chosen: pass --wallet NAME or set FLOWNET_WALLET (see `flownet wallet list`)")
        return chosen

    def account(self, name: str | None) -> LocalAccount:
        """Unlock wallet `name` (or the default wallet) with a password from file, environment or prompt."""
        chosen = self.wallet_name(name)
        self.keystores.info(chosen)  # fail on a missing wallet before asking for a password
        password = resolve_password(f"wallet {chosen!r}", self.password_file)
        with self.status(f"unlocking wallet {chosen!r}"):
            return self.keystores.unlock(chosen, password)

    def address(self, name: str | None) -> str:
        """The address of wallet `name`, unlocking it (password needed) only when its keystore does not say it."""
        info = self.keystores.info(self.wallet_name(name))
        return info.address or self.account(info.name).address

    def flownet(self, wallet: str | None) -> FlowNet:
        """Bindings for `wallet` on the configured deployment."""
        account = self.account(wallet)
        return FlowNet(self.w3, self.deployment, account)

    @contextmanager
    def status(self, message: str) -> Iterator[None]:
        """A spinner on stderr while something waits (nothing when stderr is not a terminal)."""
        if self.err.is_terminal:
            with self.err.status(message):
                yield
        else:
            yield

    def say(self, message: str) -> None:
        self.console.print(message)

    def warn(self, message: str) -> None:
        """One line on stderr; the command goes on."""
        self.err.print(f"warning: {escape(message)}")

    def wallets(self) -> list[WalletInfo]:
        """Every wallet in the keystore folder, warning (one line each) about files that are not keystores."""
        wallets, skipped = self.keystores.scan()
        for bad in skipped:
            self.warn(bad.warning)
        return wallets


pass_app = click.make_pass_decorator(App)
