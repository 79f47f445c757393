"""`flownet wallet` commands: encrypted keystores under $FLOWNET_HOME/keystores.

Keys never appear on the command line or in output: passwords come from --password-file,
$FLOWNET_PASSWORD_FILE, $FLOWNET_PASSWORD or a hidden prompt, private keys from a file or a hidden prompt.
The keystores are the Web3 Secret Storage v3 files geth and Foundry's ``cast wallet`` use.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from eth_account.messages import encode_defunct
from rich.markup import escape
from rich.table import Table
from web3 import Web3
from web3.exceptions import Web3Exception

from flownet.cli.app import App, pass_app
from flownet.core.units import format_flow
from flownet.errors import ChainError, ConfigError, FlowNetError, WalletError
from flownet.wallet import parse_private_key, resolve_password

RPC_TIMEOUT = 5.0  # seconds `wallet show` waits for the node before reporting it unreachable


def _interactive() -> bool:
    """Whether we may prompt (stdin is a terminal); a function so tests can pretend."""
    return sys.stdin.isatty()


def _check_new_name(app: App, name: str) -> None:
    """Fail on an invalid or taken name before asking for keys or passwords."""
    app.keystores.path(name)  # an invalid name fails here
    existing = app.keystores.find(name)
    if existing is not None:
        raise WalletError(f"wallet {name!r} already exists at {existing}; choose another name")


def _chosen(app: App, name: str | None) -> str:
    """NAME, else the default wallet (FLOWNET_WALLET / config `wallet`)."""
    if not name and not app.settings.wallet:
        raise ConfigError("no wallet chosen: give NAME or set FLOWNET_WALLET (see `flownet wallet list`)")
    return app.wallet_name(name)


def _format_eth(wei: int) -> str:
    return format_flow(wei).removesuffix(" FLOW") + " ETH"


@click.group("wallet")
def group() -> None:
    """Create, import, list and use encrypted wallets (keystore v3 files under FLOWNET_HOME/keystores).

    Passwords come from --password-file, FLOWNET_PASSWORD_FILE, FLOWNET_PASSWORD or a hidden prompt;
    NAME defaults to FLOWNET_WALLET (or `wallet` in config.toml) where it is optional.
    The files are interchangeable with `cast wallet` and geth keystores.
    """


@group.command("new")
@click.argument("name")
@pass_app
def new_cmd(app: App, name: str) -> None:
    """Create wallet NAME with a fresh random key, encrypted with a new password (scrypt).

    Prints the name and address; the key and password are never shown.
    """
    _check_new_name(app, name)
    password = resolve_password(f"new wallet {name!r}", app.password_file, confirm=True, interactive=_interactive())
    with app.status(f"encrypting wallet {name!r}"):
        info = app.keystores.create(name, password)
    click.echo(f"created wallet {info.name}: {info.address}")
    click.echo(f"keystore: {info.path} (back it up; without its password the key is lost)")


@group.command("import")
@click.argument("name")
@click.option(
    "--keystore",
    "keystore",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A keystore v3 JSON file (from `cast wallet new` or geth); it keeps its password.",
)
@click.option(
    "--private-key-file",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file holding the private key as 64 hex digits (0x optional); encrypted under a new password.",
)
@pass_app
def import_cmd(app: App, name: str, keystore: Path | None, key_file: Path | None) -> None:
    """Import an existing key as wallet NAME, from a keystore file or a private key.

    With --keystore the file is copied once its password (from the usual sources) opens it. With
    --private-key-file, or a hidden prompt when neither option is given and stdin is a terminal, the
    key is encrypted under a new password. Keys are never accepted on the command line.
    """
    if keystore and key_file:
        raise click.UsageError("pass either --keystore or --private-key-file, not both")
    _check_new_name(app, name)
    if keystore:
        password = resolve_password(f"keystore {str(keystore)!r}", app.password_file, interactive=_interactive())
        with app.status(f"checking the password of {keystore}"):
            info = app.keystores.import_keystore(name, keystore, password)
    else:
        if key_file:
            try:
                text = key_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read private key file {str(key_file)!r}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise ConfigError(f"invalid private key in {str(key_file)!r}: not text") from None
            key = parse_private_key(text, f"{str(key_file)!r}")
        elif _interactive():
            key = parse_private_key(click.prompt("Private key (hex)", hide_input=True), "the key typed")
        else:
            raise ConfigError(
                "nothing to import: pass --keystore FILE or --private-key-file FILE (or run in a terminal to type "
                "the key at a hidden prompt)"
            )
        password = resolve_password(f"new wallet {name!r}", app.password_file, confirm=True, interactive=_interactive())
        with app.status(f"encrypting wallet {name!r}"):
            info = app.keystores.import_key(name, "0x" + key.hex(), password)
    click.echo(f"imported wallet {info.name}: {info.address}")


@group.command("list")
@pass_app
def list_cmd(app: App) -> None:
    """List the wallets: name and address (no password needed).

    A keystore without an address field (as `cast wallet import` writes) shows its address once it has
    been unlocked; a file in the folder that is not a keystore is skipped with a warning.
    """
    wallets = app.wallets()
    if not wallets:
        app.say(f"no wallets in {escape(str(app.keystores.directory))}; create one with `flownet wallet new NAME`")
        return
    default = app.settings.wallet
    table = Table(title=f"wallets in {escape(str(app.keystores.directory))}", title_justify="left")
    table.add_column("name", overflow="fold")
    table.add_column("address", no_wrap=True)
    for wallet in wallets:
        name = f"{wallet.name} (default)" if wallet.name == default else wallet.name
        table.add_row(escape(name), escape(wallet.address_text))
    app.console.print(table)


@group.command("show")
@click.argument("name", required=False)
@pass_app
def show_cmd(app: App, name: str | None) -> None:
    """Show wallet NAME: address, keystore file and, if the chain answers, its ETH and FLOW balances.

    An unreachable chain is reported in one line; it is not an error. The address of a keystore without
    an address field is known (and its balances shown) once the wallet has been unlocked, e.g. by
    `flownet wallet address NAME`.
    """
    info = app.keystores.info(_chosen(app, name))
    click.echo(f"name:     {info.name}")
    click.echo(f"address:  {info.address_text}")
    click.echo(f"keystore: {info.path}")
    if info.address is None:
        return
    url = app.settings.rpc_url
    from flownet.chain.connect import http_web3

    try:
        with app.status(f"connecting to {url}"):
            w3 = http_web3(url, timeout=RPC_TIMEOUT)
    except ChainError:
        click.echo(f"chain:    not reachable at {url} (no balances)")
        return
    click.echo(f"chain:    {url} (chain id {w3.eth.chain_id})")
    click.echo(f"ETH:      {_format_eth(w3.eth.get_balance(info.address))}")
    click.echo(f"FLOW:     {_flow_balance(app, w3, info.address)}")


def _flow_balance(app: App, w3: Web3, address: str) -> str:
    """The FLOW balance, or why there is none (no manifest, a manifest for another chain...)."""
    from flownet.chain.deploy import Deployment

    manifest = app.settings.manifest
    if not manifest.exists():
        return f"unknown (no deployment manifest at {manifest})"
    try:
        deployment = Deployment.load(manifest)
        if deployment.chain_id != w3.eth.chain_id:
            return f"unknown (manifest {manifest} is for chain {deployment.chain_id})"
        token = deployment.contract(w3, "FlowToken")
        if not w3.eth.get_code(token.address):
            return f"unknown (no FlowToken contract at {token.address} from {manifest})"
        return format_flow(int(token.functions.balanceOf(address).call()))
    except (FlowNetError, Web3Exception, TypeError, ValueError) as exc:  # a broken manifest must not fail `show`
        return f"unknown ({type(exc).__name__}: {exc})"


@group.command("address")
@click.argument("name", required=False)
@pass_app
def address_cmd(app: App, name: str | None) -> None:
    """Print only the checksummed address of wallet NAME, for scripts: `$(flownet wallet address alice)`.

    A keystore without an address field (from `cast wallet import`) is unlocked to learn it, once.
    """
    click.echo(app.address(_chosen(app, name)))


@group.command("sign")
@click.argument("args", nargs=-1, required=True, metavar="[NAME] MESSAGE")
@pass_app
def sign_cmd(app: App, args: tuple[str, ...]) -> None:
    """Sign MESSAGE (UTF-8 text) with wallet NAME as EIP-191 personal_sign; print the 65-byte 0x signature.

    The same signature as `cast wallet sign MESSAGE` (cast decodes a 0x-prefixed MESSAGE as hex; FlowNet
    always signs the text). NAME defaults to FLOWNET_WALLET.
    """
    if len(args) > 2:
        raise click.UsageError(f"expected [NAME] MESSAGE, got {len(args)} arguments (quote a message with spaces)")
    name, message = (None, args[0]) if len(args) == 1 else args
    account = app.account(_chosen(app, name))
    signed = account.sign_message(encode_defunct(text=message))
    click.echo("0x" + bytes(signed.signature).hex())


COMMANDS = [group]
