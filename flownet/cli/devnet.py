"""`flownet devnet`: a local anvil chain with the contracts deployed and your wallets funded."""

from __future__ import annotations

import time

import click
from rich.markup import escape
from rich.table import Table
from web3 import Web3

from flownet.chain.connect import http_web3
from flownet.chain.deploy import DeployConfig, Deployment, deploy
from flownet.chain.tx import NodeSender
from flownet.cli.app import App, pass_app
from flownet.core.units import format_flow, parse_flow
from flownet.devnet import DevnetState, is_our_anvil, read_state, start_detached, stop_detached
from flownet.errors import ConfigError
from flownet.wallet import WalletInfo


@click.group("devnet")
def group() -> None:
    """Run a local development chain (anvil on 127.0.0.1) with FlowNet deployed."""


def _deployer(w3: Web3) -> NodeSender:
    return NodeSender(w3, w3.eth.accounts[0])


def _fund(app: App, w3: Web3, deployment: Deployment, wallets: list[tuple[str, str]], flow: int, eth: int) -> None:
    """Send `eth` wei and `flow` FLOW units to each (name, address)."""
    sender = _deployer(w3)
    token = deployment.contract(w3, "FlowToken")
    for name, address in wallets:
        with app.status(f"funding {name}"):
            sender.send_value(address, eth, action=f"fund {name} with ETH")
            sender.transact(token.functions.transfer(address, flow), action=f"fund {name} with FLOW")
        app.say(f"  funded {name} ({address}): {eth / 10**18:g} ETH, {format_flow(flow)}")


def _known(app: App, wallets: list[WalletInfo]) -> list[tuple[str, str]]:
    """The wallets whose address is known without a password; one warning for each of the others."""
    known = []
    for wallet in wallets:
        if wallet.address is None:
            app.warn(
                f"not funding wallet {wallet.name!r} ({wallet.path}): {wallet.address_text}; run "
                f"`flownet wallet address {wallet.name}` to unlock it, then `flownet devnet fund {wallet.name}`"
            )
        else:
            known.append((wallet.name, wallet.address))
    return known


@group.command("start")
@click.option("--port", type=click.IntRange(1024, 65535), help="Port on 127.0.0.1 (default: a free one).")
@click.option("--flow", "flow_text", default="100000", show_default=True, help="FLOW given to each wallet.")
@click.option("--eth", default=100, show_default=True, type=click.IntRange(0), help="ETH given to each wallet.")
@click.option(
    "--fast",
    is_flag=True,
    help="Short windows for trying disputes: 2 min thawing, 60 s challenge window, 5 s trust rate limit.",
)
@click.option(
    "--challenge-window",
    type=click.IntRange(1, 86_400),
    help="Dispute challenge window in seconds (implies --fast; at most the thaw period).",
)
@click.option(
    "--block-time",
    type=click.IntRange(1, 3600),
    help="Also mine an empty block every this many seconds, so chain time follows the clock (default: only "
    "when a transaction arrives).",
)
@pass_app
def start(
    app: App,
    port: int | None,
    flow_text: str,
    eth: int,
    fast: bool,
    challenge_window: int | None,
    block_time: int | None,
) -> None:
    """Start anvil, deploy the contracts, write the manifest and fund every wallet in FLOWNET_HOME."""
    flow = parse_flow(flow_text, "--flow")
    config = DeployConfig()
    if fast or challenge_window is not None:
        overrides = {}
        if challenge_window is not None:  # thawing must outlast the challenge window
            overrides = {"challenge_window": challenge_window, "thaw_period": max(120, challenge_window)}
        config = DeployConfig.devnet(**overrides)
        config.validate()
    directory = app.settings.devnet_dir
    with app.status("starting anvil"):
        state = start_detached(directory, port=port, block_time=block_time)
    app.say(f"anvil pid {state.pid} on {state.rpc_url} (chain {state.chain_id}), log {state.log}")
    try:
        w3 = http_web3(state.rpc_url)
        with app.status("deploying the contracts"):
            deployment = deploy(w3, _deployer(w3), config)
        manifest = directory / "deployment.json"
        deployment.save(manifest)
        for name, address in deployment.addresses.items():
            app.say(f"  {name:<16} {address}")
        app.say(f"manifest {manifest}")
        state.save(directory / "state.json")
        _fund(app, w3, deployment, _known(app, app.wallets()), flow, eth * 10**18)
    except BaseException:
        stop_detached(directory)
        raise
    app.say("devnet ready: flownet commands now use it by default (`flownet devnet stop` to end it)")


@group.command("stop")
@pass_app
def stop(app: App) -> None:
    """Stop the devnet this FLOWNET_HOME started (only that process, found through its pid file)."""
    state, stopped = stop_detached(app.settings.devnet_dir)
    if state is None:
        app.say("no devnet is recorded in this FLOWNET_HOME")
    elif stopped:
        app.say(f"stopped anvil pid {state.pid} ({state.rpc_url})")
    else:
        app.say(f"anvil pid {state.pid} was no longer running; cleared its state")


def _running(app: App) -> DevnetState:
    state = read_state(app.settings.devnet_dir)
    if state is None or not is_our_anvil(state):
        raise ConfigError("no devnet is running in this FLOWNET_HOME: run `flownet devnet start`")
    return state


@group.command("status")
@pass_app
def status(app: App) -> None:
    """Show whether the devnet runs, its chain, contracts and wallet balances."""
    state = read_state(app.settings.devnet_dir)
    if state is None or not is_our_anvil(state):
        app.say("devnet: not running")
        return
    w3 = http_web3(state.rpc_url)
    deployment = Deployment.load(app.settings.devnet_dir / "deployment.json")
    uptime = int(time.time() - state.started_at)
    app.say(f"devnet: running, pid {state.pid}, {state.rpc_url}, chain {state.chain_id}, up {uptime} s")
    app.say(f"block {w3.eth.block_number}; manifest {state.manifest}")
    for name, address in deployment.addresses.items():
        app.say(f"  {name:<16} {address}")
    token = deployment.contract(w3, "FlowToken")
    table = Table("wallet", "address", "ETH", "FLOW")
    for wallet in app.wallets():
        if wallet.address is None:
            table.add_row(escape(wallet.name), escape(wallet.address_text), "-", "-")
            continue
        eth = w3.eth.get_balance(wallet.address) / 10**18
        flow = token.functions.balanceOf(wallet.address).call()
        table.add_row(escape(wallet.name), wallet.address, f"{eth:,.4f}", format_flow(flow))
    app.console.print(table)


@group.command("fund")
@click.argument("names", nargs=-1, required=True)
@click.option("--flow", "flow_text", default="100000", show_default=True, help="FLOW to give each wallet.")
@click.option("--eth", default=100, show_default=True, type=click.IntRange(0), help="ETH to give each wallet.")
@pass_app
def fund(app: App, names: tuple[str, ...], flow_text: str, eth: int) -> None:
    """Give wallets NAMES test ETH and FLOW from the devnet's deployer.

    A wallet whose keystore has no address field (from `cast wallet import`) is unlocked to learn it.
    """
    flow = parse_flow(flow_text, "--flow")
    state = _running(app)
    wallets = [(name, app.address(name)) for name in names]  # every address before any transaction
    w3 = http_web3(state.rpc_url)
    deployment = Deployment.load(app.settings.devnet_dir / "deployment.json")
    _fund(app, w3, deployment, wallets, flow, eth * 10**18)


COMMANDS = [group]
