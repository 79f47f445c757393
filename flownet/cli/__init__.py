"""The ``flownet`` command line (click + rich).

Every command has help text; ``--debug`` shows tracebacks, otherwise an error is one line on stderr
and the exit code of its FlowNetError class (see flownet.errors).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from flownet import __version__
from flownet.cli.app import App
from flownet.config import load_settings
from flownet.errors import FlowNetError

__all__ = ["cli", "main"]


class FlowNetGroup(click.Group):
    """Turns FlowNetError (and any unexpected error) into one line and an exit code, unless --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except FlowNetError as exc:
            if _debug(ctx):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            if _debug(ctx):
                raise
            click.echo(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
            ctx.exit(1)


def _debug(ctx: click.Context) -> bool:
    return bool((ctx.params or {}).get("debug") or (ctx.obj and ctx.obj.debug))


@click.group(cls=FlowNetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FLOWNET_HOME",
    help="Directory for config.toml, wallets, blobs and the devnet (default ~/.flownet).",
)
@click.option("--rpc-url", help="JSON-RPC endpoint (overrides FLOWNET_RPC_URL and config.toml).")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deployment manifest (overrides FLOWNET_MANIFEST and config.toml).",
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read wallet passwords from this file (else FLOWNET_PASSWORD_FILE, FLOWNET_PASSWORD or a prompt).",
)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-v", "--verbose", is_flag=True, help="Log what FlowNet does (transactions, files, nodes) to stderr.")
@click.version_option(__version__, prog_name="flownet")
@click.pass_context
def cli(
    ctx: click.Context,
    home: Path | None,
    rpc_url: str | None,
    manifest: Path | None,
    password_file: Path | None,
    debug: bool,
    verbose: bool,
) -> None:
    """FlowNet: a decentralized, trusted bandwidth market.

    Start with `flownet devnet start`, then `flownet wallet new NAME`.
    """
    if verbose or debug:
        logging.basicConfig(
            level=logging.DEBUG if debug else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    settings = load_settings(home, rpc_url=rpc_url, manifest=str(manifest) if manifest else None)
    ctx.obj = App(settings, debug=debug, password_file=password_file)


def _register() -> None:
    from flownet.cli import (
        blob,
        cert,
        client,
        devnet,
        fullnode,
        fullnode_ops,
        heartbeat,
        provider,
        tools,
        tunnel,
        verifier,
        wallet,
    )

    for module in (
        tools,
        wallet,
        devnet,
        blob,
        cert,
        provider,
        heartbeat,
        client,
        tunnel,
        fullnode,
        fullnode_ops,
        verifier,
    ):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        # Without standalone mode click returns ctx.exit()'s code instead of raising it.
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="flownet", standalone_mode=False)
        if isinstance(result, int):
            return result
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
