"""The command line: help on every command, one-line errors with exit codes, the exact public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

import flownet
from flownet.cli import cli


def _walk(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in group.commands.items():
        found.append(((*prefix, name), command))
        if isinstance(command, click.Group):
            found.extend(_walk(command, (*prefix, name)))
    return found


def test_every_command_and_option_has_help(tmp_path: Path) -> None:
    runner = CliRunner()
    commands = _walk(cli)
    assert len(commands) >= 3
    for path, command in commands:
        assert command.help and len(command.help) > 15, f"{' '.join(path)} has no help text"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{' '.join(path)} {param.opts} has no help text"
        result = runner.invoke(cli, ["--home", str(tmp_path), *path, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage: " in result.output


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "flownet.cli", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"flownet, version {flownet.__version__}"


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
