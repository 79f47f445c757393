"""FlowNet settings: a TOML file under FLOWNET_HOME, environment overrides, command-line overrides.

Precedence, highest first: command-line option, environment variable, ``$FLOWNET_HOME/config.toml``,
built-in default. When a devnet started by ``flownet devnet start`` is running, its RPC URL and
manifest are the defaults, so a new user needs no configuration at all.

``config.toml`` keys (all optional)::

    rpc_url = "http://127.0.0.1:8545"   # FLOWNET_RPC_URL
    manifest = "/path/deployment.json"  # FLOWNET_MANIFEST
    ipfs_api = "http://127.0.0.1:5001"  # FLOWNET_IPFS_API (unset: the embedded blob store)
    wallet = "alice"                    # FLOWNET_WALLET (the wallet commands act as by default)
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flownet.errors import ConfigError

__all__ = ["DEFAULT_RPC_URL", "Settings", "load_settings"]

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
KEYS = ("rpc_url", "manifest", "ipfs_api", "wallet")
ENV = {key: f"FLOWNET_{key.upper()}" for key in KEYS}


@dataclass(frozen=True)
class Settings:
    """Resolved settings; `sources` says where each value came from (for `flownet config show`)."""

    home: Path
    rpc_url: str
    manifest: Path
    ipfs_api: str | None
    wallet: str | None
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keystores"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def devnet_dir(self) -> Path:
        return self.home / "devnet"

    @property
    def index_db(self) -> Path:
        """The local index (an indexer ledger) that certificate and order checks read."""
        return self.home / "index.sqlite"


def default_home() -> Path:
    return Path(os.environ.get("FLOWNET_HOME") or Path.home() / ".flownet").expanduser()


def read_config_file(path: Path) -> dict[str, Any]:
    """The keys of a config.toml; unknown keys and wrong types are errors naming the file."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    for key, value in data.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key} must be a string (not {value!r})")
    return data


def devnet_state(home: Path) -> dict[str, Any] | None:
    """The state file of a devnet started under `home`, if there is one."""
    path = home / "devnet" / "state.json"
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def load_settings(home: Path | None = None, **overrides: str | None) -> Settings:
    """Resolve settings for `home` (default $FLOWNET_HOME or ~/.flownet) with `overrides` on top."""
    home = (home or default_home()).expanduser()
    if home.exists() and not home.is_dir():
        raise ConfigError(f"FLOWNET_HOME {str(home)!r} exists and is not a directory")
    file_values = read_config_file(home / "config.toml")
    devnet = devnet_state(home) or {}
    defaults: dict[str, str | None] = {
        "rpc_url": devnet.get("rpc_url", DEFAULT_RPC_URL),
        "manifest": devnet.get("manifest", str(home / "deployment.json")),
        "ipfs_api": None,
        "wallet": None,
    }
    values: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for key in KEYS:
        override = overrides.get(key)
        if override:
            values[key], sources[key] = override, "command line"
        elif os.environ.get(ENV[key]):
            values[key], sources[key] = os.environ[ENV[key]], f"${ENV[key]}"
        elif key in file_values:
            values[key], sources[key] = file_values[key], str(home / "config.toml")
        else:
            values[key] = defaults[key]
            sources[key] = "running devnet" if key in devnet else "default"
    rpc_url = values["rpc_url"] or DEFAULT_RPC_URL
    if not rpc_url.startswith(("http://", "https://")):
        raise ConfigError(f"rpc_url must start with http:// or https:// (not {rpc_url!r}, from {sources['rpc_url']})")
    return Settings(
        home=home,
        rpc_url=rpc_url,
        manifest=Path(values["manifest"] or home / "deployment.json").expanduser(),
        ipfs_api=values["ipfs_api"],
        wallet=values["wallet"],
        sources=sources,
    )
