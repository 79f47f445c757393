"""Encrypted wallets: Web3 Secret Storage (keystore version 3, scrypt) files under FLOWNET_HOME.

The files are the format geth and Foundry's ``cast wallet`` read and write, so a key can move between
them. A private key only ever exists decrypted in memory; passwords come from a prompt, the
FLOWNET_PASSWORD environment variable or a file, and are never printed or logged.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from flownet.errors import ConfigError, WalletError

__all__ = ["Keystores", "WalletInfo", "resolve_password"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PASSWORD_ENV = "FLOWNET_PASSWORD"
PASSWORD_FILE_ENV = "FLOWNET_PASSWORD_FILE"


@dataclass(frozen=True)
class WalletInfo:
    name: str
    address: str
    path: Path


def resolve_password(
    what: str, password_file: Path | None = None, *, confirm: bool = False, interactive: bool | None = None
) -> str:
    """The password for `what`: --password-file, then $FLOWNET_PASSWORD_FILE, $FLOWNET_PASSWORD, then a prompt."""
    file = password_file or (Path(os.environ[PASSWORD_FILE_ENV]) if os.environ.get(PASSWORD_FILE_ENV) else None)
    if file is not None:
        try:
            return file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read password file {str(file)!r}: {exc.strerror}") from None
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        raise ConfigError(
            f"a password is needed for {what}: set {PASSWORD_ENV} or {PASSWORD_FILE_ENV}, or pass --password-file"
        )
    import click

    return str(click.prompt(f"Password for {what}", hide_input=True, confirmation_prompt=confirm))


class Keystores:
    """The wallets in one directory, one ``<name>.json`` keystore each."""

    def __init__(self, directory: Path, scrypt_n: int = 2**18) -> None:
        self.directory = directory
        self.scrypt_n = scrypt_n

    def path(self, name: str) -> Path:
        if not NAME_RE.match(name):
            raise ConfigError(
                f"invalid wallet name {name!r}: use 1-64 letters, digits, '.', '_' or '-' "
                "(starting with a letter or digit)"
            )
        return self.directory / f"{name}.json"

    def create(self, name: str, password: str) -> WalletInfo:
        """A new random key, encrypted with `password`."""
        return self._store(name, Account.create(os.urandom(32)), password)

    def import_key(self, name: str, private_key: str, password: str) -> WalletInfo:
        """Encrypt an existing private key (hex) under `name`."""
        try:
            account = Account.from_key(private_key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"invalid private key for wallet {name!r}: {exc}") from None
        return self._store(name, account, password)

    def import_keystore(self, name: str, source: Path, password: str) -> WalletInfo:
        """Copy a keystore file (from geth or `cast wallet new`) after checking that `password` opens it."""
        data = self._read(source)
        account = self._decrypt(data, password, f"keystore {str(source)!r}")
        data.setdefault("address", account.address[2:].lower())
        self._write(name, data)
        return WalletInfo(name, account.address, self.path(name))

    def list(self) -> list[WalletInfo]:
        if not self.directory.is_dir():
            return []
        wallets = []
        for path in sorted(self.directory.glob("*.json")):
            address = self._read(path).get("address")
            wallets.append(WalletInfo(path.stem, to_checksum_address(address) if address else "?", path))
        return wallets

    def info(self, name: str) -> WalletInfo:
        path = self.path(name)
        if not path.exists():
            known = ", ".join(w.name for w in self.list()) or "none yet"
            raise WalletError(f"no wallet named {name!r} in {self.directory} (wallets: {known})")
        address = self._read(path).get("address")
        return WalletInfo(name, to_checksum_address(address) if address else "?", path)

    def unlock(self, name: str, password: str) -> LocalAccount:
        """The decrypted account of wallet `name`."""
        info = self.info(name)
        return self._decrypt(self._read(info.path), password, f"wallet {name!r}")

    # ------------------------------------------------------------------ internals

    def _store(self, name: str, account: LocalAccount, password: str) -> WalletInfo:
        if not password:
            raise ConfigError(f"refusing an empty password for wallet {name!r}")
        data = Account.encrypt(account.key, password, kdf="scrypt", iterations=self.scrypt_n)
        self._write(name, data)
        return WalletInfo(name, account.address, self.path(name))

    def _write(self, name: str, data: dict[str, Any]) -> None:
        path = self.path(name)
        if path.exists():
            raise WalletError(f"wallet {name!r} already exists at {path}; choose another name")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        tmp.replace(path)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise WalletError(f"no keystore file at {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WalletError(f"{path} is not a JSON keystore: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != 3 or "crypto" not in {k.lower() for k in data}:
            raise WalletError(f"{path} is not a version 3 keystore")
        return data

    @staticmethod
    def _decrypt(data: dict[str, Any], password: str, what: str) -> LocalAccount:
        try:
            key = Account.decrypt(data, password)
        except ValueError as exc:
            if "MAC mismatch" in str(exc):
                raise WalletError(f"wrong password for {what}") from None
            raise WalletError(f"cannot decrypt {what}: {exc}") from None
        account: LocalAccount = Account.from_key(key)
        return account
