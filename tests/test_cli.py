"""The command line: help everywhere, clear errors with exit codes, and the exact public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import flownet
from flownet import cli


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    assert parser.description
    for name, (help_text, _) in cli.COMMANDS.items():
        assert len(help_text) > 20, name
        with pytest.raises(SystemExit) as exited:
            cli.main([name, "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert help_text.split("(")[0].strip() in out.replace("\n", " ").replace("  ", " ") or help_text[:30] in out
        for action in parser._subparsers._group_actions[0].choices[name]._actions:  # type: ignore[union-attr]
            assert action.help, f"{name} {action.dest} has no help text"


def test_deploy_with_missing_keystore_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    code = cli.main(["deploy", "--rpc", "http://127.0.0.1:1", "--keystore", str(missing)])
    assert code == 2
    assert f"cannot read keystore '{missing}'" in capsys.readouterr().err


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "flownet.cli", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"flownet {flownet.__version__}"


def test_public_api_is_exact() -> None:
    assert sorted(flownet.__all__) == sorted(
        [
            "GIB",
            "ChainError",
            "CloseAgreement",
            "CompileError",
            "ConfigError",
            "DeployConfig",
            "Deployment",
            "DeploymentError",
            "FlowNet",
            "FlowNetError",
            "MarketDomain",
            "Order",
            "Receipt",
            "ReceiptError",
            "Role",
            "Sender",
            "Sent",
            "SignedReceipt",
            "TransactionFailed",
            "__version__",
            "cost_of",
            "deploy",
            "lock_for",
            "sign_close",
            "sign_receipt",
        ]
    )
    for name in flownet.__all__:
        assert hasattr(flownet, name), name


def test_deploy_command_with_keystore_on_anvil(
    anvil: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    from eth_account import Account

    from flownet.chain.connect import http_web3
    from flownet.chain.deploy import Deployment
    from flownet.devnet import fund

    url = anvil.url  # type: ignore[attr-defined]
    account = Account.create()
    fund(http_web3(url), account.address, 10**19)
    keystore = tmp_path / "deployer.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "correct horse", iterations=2)))
    out = tmp_path / "manifest.json"

    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    assert cli.main(["deploy", "--rpc", url, "--keystore", str(keystore), "--out", str(out)]) == 2
    assert f"cannot decrypt keystore '{keystore}'" in capsys.readouterr().err
    assert not out.exists()

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert cli.main(["deploy", "--rpc", url, "--keystore", str(keystore), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "deploy BandwidthMarket: tx 0x" in printed and f"manifest written to {out}" in printed
    manifest = Deployment.load(out)
    assert manifest.deployer == account.address
    manifest.verify(http_web3(url))
