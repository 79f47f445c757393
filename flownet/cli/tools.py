"""Developer commands: compile, deploy, demo."""

from __future__ import annotations

from pathlib import Path

import click

from flownet.cli.app import App, pass_app


@click.command("compile")
@click.option("--check", is_flag=True, help="Fail if the committed artifacts differ from a fresh compile.")
def compile_cmd(check: bool) -> None:
    """Compile contracts/ into flownet/artifacts/ with py-solc-x (needs a source checkout)."""
    from flownet.chain import compile as compiler

    code = compiler.main(["--check"] if check else [])
    if code:
        raise click.exceptions.Exit(code)


@click.command("deploy")
@click.option("--wallet", "wallet", help="Deployer wallet (default: FLOWNET_WALLET / config).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the manifest (default: the configured manifest path).",
)
@pass_app
def deploy_cmd(app: App, wallet: str | None, out: Path | None) -> None:
    """Deploy the FlowNet contracts (token, staking, market, certificates, slashing, trust) and write a manifest."""
    from flownet.chain.deploy import DeployConfig, deploy
    from flownet.chain.tx import Sender

    config = DeployConfig()
    config.validate()
    account = app.account(wallet)
    target = out or app.settings.manifest
    w3 = app.w3
    with app.status("deploying"):
        deployment = deploy(
            w3, Sender(w3, account), config, on_step=lambda s: app.say(f"{s.action}: tx {s.tx_hash} gas {s.gas_used:,}")
        )
    deployment.save(target)
    app.say(f"manifest written to {target}")


@click.command("demo")
@click.option("--rpc", help="Use this JSON-RPC node (with an unlocked funded dev account) instead of a fresh anvil.")
@click.option("-v", "--verbose", is_flag=True, help="Log every transaction.")
def demo_cmd(rpc: str | None, verbose: bool) -> None:
    """Run a readable market round on a fresh local anvil devnet."""
    from flownet import demo

    code = demo.main((["--rpc", rpc] if rpc else []) + (["--verbose"] if verbose else []))
    if code:
        raise click.exceptions.Exit(code)


COMMANDS = [compile_cmd, deploy_cmd, demo_cmd]
