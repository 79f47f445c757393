"""`flownet cert`: the key pair and certificate a wallet uses in the mutual-TLS tunnel."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography import x509

from flownet.cli.app import App, pass_app
from flownet.errors import ConfigError
from flownet.pki import inspect, new_identity, write_identity
from flownet.wallet import resolve_password


@click.group("cert")
def group() -> None:
    """Create and inspect the TLS certificates wallets register on chain (DeCA)."""


def _chain_id(app: App, chain_id: int | None) -> int:
    if chain_id is not None:
        return chain_id
    from flownet.chain.deploy import Deployment

    try:
        return Deployment.load(app.settings.manifest).chain_id
    except Exception:
        raise ConfigError(f"no usable manifest at {app.settings.manifest}: pass --chain-id") from None


@group.command("new")
@click.option("--wallet", help="Wallet the certificate names (default: FLOWNET_WALLET / config).")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 3650), help="Validity in days.")
@click.option("--chain-id", type=click.IntRange(1), help="Chain the wallet acts on (default: the manifest's).")
@pass_app
def new(app: App, wallet: str | None, days: int, chain_id: int | None) -> None:
    """Make a P-256 key (encrypted with the wallet's password) and a certificate naming the wallet."""
    name = app.wallet_name(wallet)
    info = app.keystores.info(name)
    chain = _chain_id(app, chain_id)
    password = resolve_password(f"wallet {name!r}", app.password_file)
    app.keystores.unlock(name, password)  # the certificate's key is protected by the wallet's own password
    key, certificate = new_identity(info.address, chain, days)
    key_path, cert_path = write_identity(app.settings.home / "certs", name, key, certificate, password)
    details = inspect(certificate)
    app.say(f"certificate {cert_path}")
    app.say(f"key         {key_path} (encrypted with wallet {name!r}'s password)")
    app.say(f"wallet      eip155:{details.chain_id}:{details.wallet}")
    app.say(f"cert hash   0x{details.cert_hash.hex()}")
    app.say(f"key hash    0x{details.key_hash.hex()}")
    app.say(f"not after   {certificate.not_valid_after_utc:%Y-%m-%d %H:%M UTC}")


@group.command("show")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def show(app: App, path: Path) -> None:
    """Print the wallet, hashes and validity of the certificate in PATH (PEM)."""
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM certificate: {exc}") from None
    details = inspect(certificate)
    app.say(f"wallet    eip155:{details.chain_id}:{details.wallet}")
    app.say(f"cert hash 0x{details.cert_hash.hex()}")
    app.say(f"key hash  0x{details.key_hash.hex()}")
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    app.say(f"valid     {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC")


COMMANDS = [group]
