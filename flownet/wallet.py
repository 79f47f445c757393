"""Encrypted wallets: Web3 Secret Storage (keystore version 3, scrypt) files under FLOWNET_HOME.

The files are the format geth and Foundry's ``cast wallet`` read and write, so a key can move between
them. A private key only ever exists decrypted in memory; passwords come from a prompt, the
FLOWNET_PASSWORD environment variable or a file, and are never printed or logged.

Wallet NAME is the file ``NAME.json`` or, as ``cast wallet import NAME`` names it, ``NAME``. A keystore
need not carry an ``address`` field (cast's do not): its address is then unknown until the wallet is
unlocked, and unlocking records it in ``.flownet-addresses/<sha256 of the keystore file>`` next to the
keystores, so the user's file is never rewritten and a changed file is never given a stale address.
A file in the folder that is not a keystore is reported by `Keystores.scan` and never hides the others.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import is_hex_address, to_checksum_address

from flownet.errors import ConfigError, WalletError

__all__ = ["Keystores", "Skipped", "WalletInfo", "parse_private_key", "resolve_password"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PASSWORD_ENV = "FLOWNET_PASSWORD"
PASSWORD_FILE_ENV = "FLOWNET_PASSWORD_FILE"
_KEY_RE = re.compile(r"^(?:0x)?([0-9a-fA-F]{64})$")
ADDRESS_CACHE = ".flownet-addresses"  # hidden directory: neither FlowNet nor `cast wallet list` shows it
NO_ADDRESS_FIELD = "keystore has no address field"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WalletInfo:
    """A wallet as known without its password: `address` is None until the keystore is unlocked once
    when the file has no (valid) ``address`` field; `unknown_because` then says why."""

    name: str
    address: str | None
    path: Path
    unknown_because: str = ""

    @property
    def address_text(self) -> str:
        """The address, or a sentence saying why it is not known yet."""
        return self.address or f"address unknown until unlocked ({self.unknown_because})"


@dataclass(frozen=True)
class Skipped:
    """A file in the keystore folder that is not a usable keystore, and why."""

    path: Path
    reason: str  # a sentence naming the file

    @property
    def warning(self) -> str:
        return f"{self.reason}; skipped (other wallets are unaffected)"


def resolve_password(
    what: str, password_file: Path | None = None, *, confirm: bool = False, interactive: bool | None = None
) -> str:
    """The password for `what`: --password-file, then $FLOWNET_PASSWORD_FILE, $FLOWNET_PASSWORD, then a prompt."""
    file = password_file or (Path(os.environ[PASSWORD_FILE_ENV]) if os.environ.get(PASSWORD_FILE_ENV) else None)
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read password file {str(file)!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"password file {str(file)!r} is not UTF-8 text") from None
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
        """Encrypt an existing private key (64 hex digits, 0x optional) under `name`."""
        return self._store(name, Account.from_key(parse_private_key(private_key, f"wallet {name!r}")), password)

    def import_keystore(self, name: str, source: Path, password: str) -> WalletInfo:
        """Copy a keystore file (from geth or `cast wallet new`) after checking that `password` opens it.

        The copy keeps the source's password and KDF parameters; an ``address`` field is added when
        missing (cast leaves it out) so listing wallets needs no password.
        """
        self.path(name)  # an invalid name fails before any key derivation
        data = self._read(source)
        account = self._decrypt(data, password, f"keystore {str(source)!r}")
        data["address"] = account.address[2:].lower()
        self._write(name, data)
        log.info("imported keystore %s as wallet %r (%s)", source, name, account.address)
        return WalletInfo(name, account.address, self.path(name))

    def find(self, name: str) -> Path | None:
        """The file of wallet `name`: ``name.json``, else cast's ``name``; None when neither exists."""
        path = self.path(name)
        for candidate in (path, path.with_name(name)):
            if candidate.exists() or candidate.is_symlink():
                return candidate
        return None

    def scan(self) -> tuple[list[WalletInfo], list[Skipped]]:
        """Every wallet, by name, and every file that is not one (never raises for a bad file).

        Hidden files (temporary files, the address cache) are not looked at. When both ``NAME.json``
        and ``NAME`` exist, ``NAME.json`` is wallet NAME and the other is reported as skipped.
        """
        if not self.directory.is_dir():
            return [], []
        wallets: dict[str, WalletInfo] = {}
        skipped = []
        for path in sorted(self.directory.iterdir(), key=lambda p: (p.name.removesuffix(".json"), p.suffix != ".json")):
            if path.name.startswith("."):
                continue
            name = path.name.removesuffix(".json")
            if not NAME_RE.match(name):
                why = "is not named NAME.json or NAME (1-64 letters, digits, '.', '_', '-'): rename it to use it"
                skipped.append(Skipped(path, f"{path} {why}"))
                continue
            if name in wallets:
                skipped.append(Skipped(path, f"{path} has the name of wallet {name!r}, which is {wallets[name].path}"))
                continue
            try:
                wallets[name] = self._info(name, path)
            except WalletError as exc:
                skipped.append(Skipped(path, str(exc)))
        return list(wallets.values()), skipped

    def list(self) -> list[WalletInfo]:
        """Every wallet, by name; files that are not keystores are left out (see `scan`)."""
        return self.scan()[0]

    def info(self, name: str) -> WalletInfo:
        """Name, address (None if unknown before unlocking) and file of wallet `name`; no password needed."""
        path = self.find(name)
        if path is None:
            known = ", ".join(w.name for w in self.list()) or "none yet"
            raise WalletError(f"no wallet named {name!r} in {self.directory} (wallets: {known})")
        return self._info(name, path)

    def unlock(self, name: str, password: str) -> LocalAccount:
        """The decrypted account of wallet `name`; remembers its address if the file does not say it."""
        info = self.info(name)
        data, raw = self._load(info.path)
        account = self._decrypt(data, password, f"wallet {name!r}")
        if _address_of(data)[0] is None:
            self._remember(raw, account.address)
        log.debug("unlocked wallet %r (%s)", name, account.address)
        return account

    # ------------------------------------------------------------------ internals

    def _store(self, name: str, account: LocalAccount, password: str) -> WalletInfo:
        path = self.path(name)
        existing = self.find(name)  # checked before the (slow) key derivation; _write checks again atomically
        if existing is not None:
            raise WalletError(f"wallet {name!r} already exists at {existing}; choose another name")
        if not password:
            raise ConfigError(f"refusing an empty password for wallet {name!r}")
        data = Account.encrypt(account.key, password, kdf="scrypt", iterations=self.scrypt_n)
        self._write(name, data)
        log.info("created wallet %r (%s) at %s", name, account.address, path)
        return WalletInfo(name, account.address, path)

    def _write(self, name: str, data: dict[str, Any]) -> None:
        """Write `name`'s file (mode 0600) atomically, never replacing an existing wallet."""
        path = self.path(name)
        existing = self.find(name)
        if existing is not None:
            raise WalletError(f"wallet {name!r} already exists at {existing}; choose another name")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.directory / f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # unlike rename, fails if another process created `path` meanwhile
            except FileExistsError:
                raise WalletError(f"wallet {name!r} already exists at {path}; choose another name") from None
            except OSError:  # a filesystem without hard links: checked above, so rename
                tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    def _info(self, name: str, path: Path) -> WalletInfo:
        data, raw = self._load(path)
        address, why = _address_of(data)
        if address is None:
            address = self._remembered(raw)
        return WalletInfo(name, address, path, "" if address else why)

    def _cache_file(self, raw: bytes) -> Path:
        return self.directory / ADDRESS_CACHE / hashlib.sha256(raw).hexdigest()

    def _remembered(self, raw: bytes) -> str | None:
        """The address learned when exactly these keystore bytes were last unlocked, if any."""
        try:
            text = self._cache_file(raw).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return str(to_checksum_address(text)) if is_hex_address(text) else None

    def _remember(self, raw: bytes, address: str) -> None:
        """Record `address` for these keystore bytes (best effort: a read-only folder only costs a password)."""
        path = self._cache_file(raw)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(address + "\n")
            tmp.replace(path)
        except OSError as exc:
            log.debug("could not record the address of a keystore in %s: %s", path.parent, exc)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        return Keystores._load(path)[0]

    @staticmethod
    def _load(path: Path) -> tuple[dict[str, Any], bytes]:
        """The keystore JSON at `path` and the file's bytes; WalletError naming the file if it is not one."""
        if path.is_dir():
            raise WalletError(f"{path} is a directory, not a keystore file")
        try:
            raw = path.read_bytes()
            data = json.loads(raw.decode("utf-8"))
        except FileNotFoundError:
            raise WalletError(f"no keystore file at {path}") from None
        except OSError as exc:
            raise WalletError(f"cannot read keystore {path}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WalletError(f"{path} is not a JSON keystore: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != 3:
            raise WalletError(f"{path} is not a version 3 keystore (Web3 Secret Storage JSON)")
        crypto = next((v for k, v in data.items() if k.lower() == "crypto"), None)
        if not isinstance(crypto, dict) or not {"cipher", "ciphertext", "kdf", "mac"} <= {k.lower() for k in crypto}:
            raise WalletError(f"{path} is not a version 3 keystore (Web3 Secret Storage JSON)")
        return data, raw

    @staticmethod
    def _decrypt(data: dict[str, Any], password: str, what: str) -> LocalAccount:
        try:
            key = Account.decrypt(data, password)
        except ValueError as exc:  # eth-keyfile's errors subclass ValueError or TypeError
            if "MAC mismatch" in str(exc):
                raise WalletError(f"wrong password for {what}") from None
            raise WalletError(f"cannot decrypt {what}: {exc}") from None
        except (KeyError, TypeError, NotImplementedError) as exc:
            raise WalletError(f"cannot decrypt {what}: malformed keystore ({type(exc).__name__}: {exc})") from None
        account: LocalAccount = Account.from_key(key)
        stored = _address_of(data)[0]
        if stored is not None and stored != account.address:
            raise WalletError(
                f"{what} says its address is {stored} but its key belongs to {account.address}; the file was altered"
            )
        return account


def parse_private_key(text: str, what: str = "the private key") -> bytes:
    """32 key bytes from 64 hex digits (0x optional, whitespace ignored); the error never echoes the text."""
    match = _KEY_RE.match(text.strip())
    if not match:
        raise ConfigError(f"invalid private key for {what}: expected 64 hex digits (optionally 0x-prefixed)")
    from flownet.core.eip712 import SECP256K1_N  # here: the CLI imports this module at start-up

    key = bytes.fromhex(match.group(1))
    if not 0 < int.from_bytes(key, "big") < SECP256K1_N:
        raise ConfigError(f"invalid private key for {what}: not in the secp256k1 range 1..n-1")
    return key


def _address_of(data: dict[str, Any]) -> tuple[str | None, str]:
    """The checksummed ``address`` field of a keystore, or None and why there is none."""
    field = data.get("address")
    if field is None or field == "":
        return None, NO_ADDRESS_FIELD
    address = field if isinstance(field, str) and field.startswith(("0x", "0X")) else f"0x{field}"
    if not isinstance(field, str) or not is_hex_address(address):
        return None, f"keystore's address field {field!r} is not an address"
    return str(to_checksum_address(address)), ""
