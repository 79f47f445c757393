"""The ``flownet`` command line.

Each subcommand has help text (``flownet <command> --help``); FlowNet errors print one line and exit
with the error class's code (see flownet.errors).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from flownet import __version__


def _cmd_compile(args: argparse.Namespace) -> int:
    from flownet.chain import compile as compiler

    return compiler.main(["--check"] if args.check else [])


def _cmd_demo(args: argparse.Namespace) -> int:
    from flownet import demo

    return demo.main((["--rpc", args.rpc] if args.rpc else []) + (["--verbose"] if args.verbose else []))


def _cmd_deploy(args: argparse.Namespace) -> int:
    import getpass

    from eth_account import Account

    from flownet.chain.connect import http_web3
    from flownet.chain.deploy import DeployConfig, deploy
    from flownet.chain.tx import Sender
    from flownet.errors import ConfigError

    keystore = Path(args.keystore)
    try:
        encrypted = keystore.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read keystore {str(keystore)!r}: {exc.strerror}") from None
    password = (
        getpass.getpass(f"password for {keystore}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    )
    try:
        key = Account.decrypt(encrypted, password)
    except ValueError as exc:
        raise ConfigError(f"cannot decrypt keystore {str(keystore)!r}: {exc}") from None
    w3 = http_web3(args.rpc)
    account = Account.from_key(key)
    deployment = deploy(
        w3,
        Sender(w3, account),
        DeployConfig(slasher=args.slasher),
        on_step=lambda s: print(f"{s.action}: tx {s.tx_hash} gas {s.gas_used:,}"),
    )
    deployment.save(Path(args.out))
    print(f"manifest written to {args.out}")
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {
    "compile": ("Compile contracts/ into flownet/artifacts/ (or --check that they are current).", _cmd_compile),
    "demo": ("Run a market round on a fresh local anvil devnet, printing every transaction.", _cmd_demo),
    "deploy": ("Deploy the contract set with a keystore account and write a deployment manifest.", _cmd_deploy),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flownet", description="FlowNet: a decentralized bandwidth market.")
    parser.add_argument("--version", action="version", version=f"flownet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == "compile":
            p.add_argument(
                "--check", action="store_true", help="fail if committed artifacts differ from a fresh compile"
            )
        elif name == "demo":
            p.add_argument(
                "--rpc", help="JSON-RPC URL of a node with an unlocked funded account (default: start anvil)"
            )
            p.add_argument("-v", "--verbose", action="store_true", help="log every transaction")
        elif name == "deploy":
            p.add_argument("--rpc", required=True, help="JSON-RPC URL of the target chain, e.g. http://127.0.0.1:8545")
            p.add_argument("--keystore", required=True, help="encrypted JSON keystore of the deployer account")
            p.add_argument("--slasher", help="address allowed to slash stake (default: the deployer)")
            p.add_argument("--out", default="deployments/deployment.json", help="where to write the manifest")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from flownet.errors import FlowNetError

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except FlowNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
