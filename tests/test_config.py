"""Settings: precedence (option > environment > config.toml > devnet > default) and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flownet.config import DEFAULT_RPC_URL, load_settings
from flownet.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("FLOWNET_HOME", "FLOWNET_RPC_URL", "FLOWNET_MANIFEST", "FLOWNET_IPFS_API", "FLOWNET_WALLET"):
        monkeypatch.delenv(key, raising=False)


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(tmp_path)
    assert s.rpc_url == DEFAULT_RPC_URL and s.manifest == tmp_path / "deployment.json"
    assert s.ipfs_api is None and s.wallet is None
    assert s.keystore_dir == tmp_path / "keystores" and s.sources["rpc_url"] == "default"


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text(
        'rpc_url = "http://file:1"\nwallet = "alice"\nipfs_api = "http://ipfs:5001"\n'
    )
    (tmp_path / "devnet").mkdir()
    (tmp_path / "devnet" / "state.json").write_text(json.dumps({"rpc_url": "http://devnet:2", "manifest": "/m.json"}))
    s = load_settings(tmp_path)
    assert (s.rpc_url, s.wallet, s.ipfs_api) == ("http://file:1", "alice", "http://ipfs:5001")
    assert s.manifest == Path("/m.json") and s.sources["manifest"] == "running devnet"
    monkeypatch.setenv("FLOWNET_RPC_URL", "http://env:3")
    monkeypatch.setenv("FLOWNET_WALLET", "bob")
    s = load_settings(tmp_path)
    assert (s.rpc_url, s.wallet) == ("http://env:3", "bob") and s.sources["rpc_url"] == "$FLOWNET_RPC_URL"
    s = load_settings(tmp_path, rpc_url="http://cli:4", manifest="/cli.json")
    assert (s.rpc_url, s.manifest, s.sources["rpc_url"]) == ("http://cli:4", Path("/cli.json"), "command line")


def test_home_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWNET_HOME", str(tmp_path / "h"))
    assert load_settings().home == tmp_path / "h"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rpc_url = ", "is not valid TOML"),
        ('colour = "blue"\n', "unknown setting(s) colour"),
        ("rpc_url = 8545\n", "rpc_url must be a string (not 8545)"),
        ('rpc_url = "localhost:8545"\n', "rpc_url must start with http:// or https:// (not 'localhost:8545'"),
    ],
)
def test_bad_config_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path)
    assert message in str(excinfo.value)


def test_home_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        load_settings(tmp_path / "file")
