"""`flownet cert`: the key pair and certificate a wallet uses in the mutual-TLS tunnel.

`new` and `show` work offline; `register` and `revoke` send CertificateRegistry transactions from the
wallet (the registry keeps one record per wallet and hash, so they act on this wallet's record only);
`status` answers from the local index only (the SQLite ledger an indexer keeps), exactly as the tunnel
does when a peer connects: the record of the wallet the certificate names, and that wallet's stake.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from flownet.cli.app import App, pass_app
from flownet.errors import ConfigError, FlowNetError
from flownet.pki import CertInfo, inspect, new_identity, write_identity
from flownet.wallet import resolve_password

NOT_VALID_EXIT = 11
_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")


class CertificateNotValid(FlowNetError):
    """`flownet cert status`: the local index says the certificate is not valid now."""

    exit_code = NOT_VALID_EXIT


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


def _when(timestamp: int) -> str:
    return f"{dt.datetime.fromtimestamp(timestamp, dt.UTC):%Y-%m-%d %H:%M:%S} UTC ({timestamp})"


def _load_pem(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM certificate: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read certificate {path}: {exc.strerror or exc}") from None


def _cert_arg(text: str) -> tuple[bytes, x509.Certificate | None]:
    """CERT as given on the command line: a 0x-prefixed 32-byte hash, or a PEM file (hashed here)."""
    if _HASH_RE.match(text):
        return bytes.fromhex(text[2:]), None
    path = Path(text).expanduser()
    if path.is_file():
        certificate = _load_pem(path)
        return inspect(certificate).cert_hash, certificate
    if text.startswith("0x") or not path.suffix:
        raise ConfigError(f"{text!r} is neither a certificate hash (0x + 64 hex digits) nor an existing PEM file")
    raise ConfigError(f"no certificate file {text!r} (give its path or its hash, 0x + 64 hex digits)")


def _unix_or_iso(text: str) -> int:
    """A time given as unix seconds or ISO 8601 (a time without zone is UTC)."""
    if re.fullmatch(r"[0-9]{1,12}", text.strip()):
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--compromised-at {text!r} is neither unix seconds nor an ISO 8601 time (e.g. 2026-11-21T09:30:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    seconds = int(moment.timestamp())
    if seconds < 0:
        raise ConfigError(f"--compromised-at {text!r} is before 1970")
    return seconds


@group.command("new")
@click.option("--wallet", help="Wallet the certificate names (default: FLOWNET_WALLET / config).")
@click.option("--days", default=365, show_default=True, type=click.IntRange(1, 3650), help="Validity in days.")
@click.option("--chain-id", type=click.IntRange(1), help="Chain the wallet acts on (default: the manifest's).")
@pass_app
def new(app: App, wallet: str | None, days: int, chain_id: int | None) -> None:
    """Make a P-256 key (encrypted with the wallet's password) and a certificate naming the wallet."""
    name = app.wallet_name(wallet)
    app.keystores.info(name)  # fail on a missing wallet before asking for a password
    chain = _chain_id(app, chain_id)
    password = resolve_password(f"wallet {name!r}", app.password_file)
    # the certificate's key is protected by the wallet's own password
    address = app.keystores.unlock(name, password).address
    key, certificate = new_identity(address, chain, days)
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


@group.command("register")
@click.option(
    "--wallet", help="Wallet that registers (and that the certificate names); default FLOWNET_WALLET / config."
)
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def register(app: App, wallet: str | None, path: Path | None) -> None:
    """Register the certificate in PATH on chain from the wallet it names.

    PATH defaults to the wallet's certificate written by `flownet cert new`
    ($FLOWNET_HOME/certs/<wallet>.crt.pem). The PEM is stored in the blob store (IPFS when
    FLOWNET_IPFS_API is set) and register(certHash, keyHash, pemCid, notAfter) is sent; nothing is
    sent when the certificate names another wallet or another chain than the manifest's. The record is
    this wallet's: whether another wallet registered the same hash does not matter.
    """
    from flownet.blobs import KuboStore, open_store
    from flownet.chain.registry import Registry

    name = app.wallet_name(wallet)
    address = app.address(name)
    if path is None:
        path = app.settings.home / "certs" / f"{name}.crt.pem"
        if not path.exists():
            raise ConfigError(f"wallet {name!r} has no certificate at {path}: run `flownet cert new --wallet {name}`")
    certificate = _load_pem(path)
    details = inspect(certificate)
    if address.lower() != details.wallet.lower():
        raise ConfigError(
            f"{path} names wallet {details.wallet}, but wallet {name!r} is {address}: "
            f"a certificate can only be registered by the wallet it names"
        )
    deployment = app.deployment
    if details.chain_id != deployment.chain_id:
        raise ConfigError(
            f"{path} names chain {details.chain_id}, but the manifest {app.settings.manifest} is for chain "
            f"{deployment.chain_id}: make a certificate for this chain with `flownet cert new --wallet {name}`"
        )
    if details.not_after <= time.time():
        raise ConfigError(f"{path} expired at {_when(details.not_after)}; make a new one with `flownet cert new`")
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    store = open_store(app.settings)
    try:
        with app.status("storing the PEM in the blob store"):
            cid = store.put(pem)
    finally:
        if isinstance(store, KuboStore):
            store.close()
    registry = Registry(app.w3, deployment, app.account(name))
    with app.status("sending register"):
        sent = registry.register(details.cert_hash, details.key_hash, cid, details.not_after)
    app.say(f"certificate 0x{details.cert_hash.hex()} registered by {details.wallet}")
    app.say(f"key hash    0x{details.key_hash.hex()}")
    app.say(f"pem cid     {cid}")
    app.say(f"not after   {_when(details.not_after)}")
    app.say(f"tx          {sent.tx_hash} (block {sent.block_number}, gas {sent.gas_used:,})")


def _reason_choices() -> list[str]:
    from flownet.chain.registry import OWNER_REASONS

    return [r.label for r in OWNER_REASONS]


@group.command("revoke")
@click.option("--wallet", help="Wallet that registered the certificate (default: FLOWNET_WALLET / config).")
@click.option(
    "--reason",
    default="unspecified",
    show_default=True,
    help="Why: " + ", ".join(_reason_choices()) + " (slashed and unbonded are Staking's alone).",
)
@click.option(
    "--compromised-at",
    metavar="TIME",
    help="When the key was or may have been compromised: unix seconds or ISO 8601 (UTC if no zone); not in the future.",
)
@click.argument("cert")
@pass_app
def revoke(app: App, wallet: str | None, reason: str, compromised_at: str | None, cert: str) -> None:
    """Revoke CERT (its hash, 0x + 64 hex digits, or its PEM file) for good.

    Revokes the record this wallet registered (nobody else's); the wallet can never register it again.
    """
    from flownet.chain.registry import Registry, parse_reason

    chosen = parse_reason(reason)
    when = _unix_or_iso(compromised_at) if compromised_at is not None else 0
    cert_hash, _ = _cert_arg(cert)
    name = app.wallet_name(wallet)
    app.keystores.info(name)
    registry = Registry(app.w3, app.deployment, app.account(name))
    with app.status("sending revoke"):
        sent = registry.revoke(cert_hash, chosen, when)
    app.say(f"certificate 0x{cert_hash.hex()} revoked ({chosen.label})")
    if when:
        app.say(f"compromised {_when(when)}")
    app.say(f"tx          {sent.tx_hash} (block {sent.block_number}, gas {sent.gas_used:,})")


def _open_index(path: Path) -> sqlite3.Connection:
    from indexer import db

    if not path.is_file():
        raise ConfigError(
            f"no local index at {path}: run `flownet provider serve` or `flownet fullnode run --db {path}` first "
            f"(or pass --db)"
        )
    try:
        conn = db.connect(path, readonly=True)
        conn.execute("SELECT 1 FROM certificates LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path} is not a FlowNet index with certificates ({exc}); index into a fresh --db") from None
    return conn


def _index_position(conn: sqlite3.Connection) -> tuple[int | None, int | None, int | None]:
    """(chain id, cursor block, node head at the last sync) as the index recorded them."""
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('deployment', 'head')").fetchall())
    chain_id = json.loads(meta["deployment"])["chain_id"] if "deployment" in meta else None
    cursor = conn.execute("SELECT block_number FROM cursor WHERE id = 1").fetchone()
    head = int(meta["head"]) if "head" in meta else None
    return chain_id, (int(cursor[0]) if cursor else None), head


@group.command("status")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Local index to read (default: $FLOWNET_HOME/index.sqlite, the one `flownet provider serve` keeps).",
)
@click.option(
    "--owner",
    metavar="ADDRESS",
    help="Wallet whose record to read (default: the one the PEM names, or the only wallet that registered it).",
)
@click.argument("cert")
@pass_app
def status(app: App, db_path: Path | None, owner: str | None, cert: str) -> None:
    """Whether CERT (its hash, 0x + 64 hex digits, or its PEM file) is valid, from the local index only.

    Prints valid, unregistered, revoked (with reason and times), expired or unstaked (the owner is a
    provider or verifier with nothing bonded), the owner and not-after, and where the index stands.
    No RPC: the answer is as fresh as the index (its cursor block). Records are per wallet: the one
    read is the wallet's the PEM names (or --owner's); a copy another wallet registered never counts.
    Given a PEM file, also checks the chain, the key and the owner the certificate names, and its own
    validity window, as the tunnel does. Exit code 0 when valid, 11 when not.
    """
    from eth_utils.address import is_address, to_checksum_address

    from flownet.certstatus import CertificateRejected, check_certificate, lookup, reason_label, records_of, verdict

    cert_hash, certificate = _cert_arg(cert)
    if owner is not None and not is_address(owner):
        raise ConfigError(f"--owner {owner!r} is not an address (0x + 40 hex digits)")
    path = db_path or app.settings.index_db
    conn = _open_index(path)
    try:
        chain_id, cursor, head = _index_position(conn)
        now = int(time.time())
        problem = ""
        info: CertInfo | None = None
        others: list[str] = []
        if certificate is not None:
            named = inspect(certificate).wallet
            if owner is not None and to_checksum_address(owner) != named:
                raise ConfigError(f"{cert} names {named}, not --owner {to_checksum_address(owner)}")
            owner = named
        if owner is None:
            found = records_of(conn, cert_hash)
            if len(found) > 1:
                raise ConfigError(
                    f"certificate 0x{cert_hash.hex()} was registered by {len(found)} wallets "
                    f"({', '.join(r.owner for r in found)}): only the one it names counts; "
                    f"pass --owner or the PEM file"
                )
            record = found[0] if found else None
        else:
            record = lookup(conn, cert_hash, owner)
            if record is None:
                others = [r.owner for r in records_of(conn, cert_hash)]
        state = verdict(conn, record, now)
        if certificate is not None:
            der = certificate.public_bytes(serialization.Encoding.DER)
            try:
                info = check_certificate(conn, der, chain_id if chain_id is not None else -1, now)
                state = "valid"
            except CertificateRejected as exc:
                state, problem = exc.reason, str(exc)
    finally:
        conn.close()
    app.say(f"certificate 0x{cert_hash.hex()}")
    app.say(f"status      {state}")
    if record is not None:
        app.say(f"owner       {record.owner}")
        app.say(f"key hash    0x{record.key_hash.hex()}")
        app.say(f"pem cid     {record.pem_cid}")
        app.say(f"not after   {_when(record.not_after)}")
        app.say(f"registered  in block {record.registered_block}")
        if record.revoked:
            label = reason_label(record.reason)
            app.say(f"revoked     {_when(record.revoked_at or 0)} in block {record.revoked_block}, reason {label}")
            if record.compromised_at:
                app.say(f"compromised {_when(record.compromised_at)}")
    elif info is None and certificate is not None:
        details = inspect(certificate)
        app.say(f"names       eip155:{details.chain_id}:{details.wallet}")
    if others:
        app.say(f"copies      registered by {', '.join(others)} (they count for nothing)")
    if cursor is None:
        app.say(f"index       {path}: nothing indexed yet")
    elif head is not None and head > cursor:
        app.say(f"index       {path} at block {cursor}, {head - cursor} behind the head it last saw ({head})")
    elif head is not None:
        app.say(f"index       {path} at block {cursor} (the head when it last synced)")
    else:
        app.say(f"index       {path} at block {cursor}")
    if state != "valid":
        if not problem and state == "unstaked" and record is not None:
            problem = (
                f"certificate 0x{cert_hash.hex()} of {record.owner} does not count: the owner is a provider or "
                f"verifier with no stake bonded in the local index {path}"
            )
        raise CertificateNotValid(problem or f"certificate 0x{cert_hash.hex()} is {state} in the local index {path}")


COMMANDS = [group]
