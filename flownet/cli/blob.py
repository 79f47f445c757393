"""`flownet blob` commands: content-addressed blobs in the local store or on an IPFS node."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import click

from flownet.blobs import MAX_BLOB_SIZE, BlobStore, KuboStore, LocalStore, cid_for, open_store, parse_cid
from flownet.cli.app import App, pass_app
from flownet.errors import BlobError


@contextmanager
def _opened(app: App, ipfs_api: str | None) -> Iterator[BlobStore]:
    """The configured store (--ipfs-api first), closed afterwards."""
    settings = dataclasses.replace(app.settings, ipfs_api=ipfs_api) if ipfs_api else app.settings
    store = open_store(settings)
    try:
        yield store
    finally:
        if isinstance(store, KuboStore):
            store.close()


def _where(store: BlobStore) -> str:
    if isinstance(store, KuboStore):
        return f"the IPFS node at {store.api_url}"
    if isinstance(store, LocalStore):
        return f"the local store {store.directory}"
    return repr(store)


def _read_blob(file: BinaryIO) -> bytes:
    """The bytes of `file`, refusing anything over the blob limit without reading it all."""
    name = getattr(file, "name", "-")
    if not isinstance(name, str) or name in ("-", "<stdin>"):
        name = "standard input"
    data = file.read(MAX_BLOB_SIZE + 1)
    if len(data) > MAX_BLOB_SIZE:
        try:
            size = Path(name).stat().st_size
        except OSError:
            raise BlobError(f"{name} is over the limit of {MAX_BLOB_SIZE:,} bytes (1 MiB) for a blob") from None
        raise BlobError(f"{name} is {size:,} bytes, over the limit of {MAX_BLOB_SIZE:,} bytes (1 MiB) for a blob")
    return data


ipfs_api_option = click.option(
    "--ipfs-api",
    metavar="URL",
    help="Kubo RPC API to use, e.g. http://127.0.0.1:5001 (overrides FLOWNET_IPFS_API and config.toml; "
    "without any, the local store under --home is used).",
)
file_argument = click.argument("file", type=click.File("rb"))


@click.group("blob")
def group() -> None:
    """Store and fetch content-addressed blobs (at most 1 MiB each).

    A blob is named by its CIDv1 (raw, sha2-256, base32: 'bafkrei...'), the same CID an IPFS node gives
    it. Blobs live in the local store under --home unless an IPFS node is configured (ipfs_api in
    config.toml, FLOWNET_IPFS_API or --ipfs-api). Every fetched blob is checked against its CID.
    """


@group.command("put")
@file_argument
@ipfs_api_option
@pass_app
def put(app: App, file: BinaryIO, ipfs_api: str | None) -> None:
    """Store FILE ('-' for stdin) as a blob, pin it, and print its CID."""
    data = _read_blob(file)
    with _opened(app, ipfs_api) as store, app.status(f"storing {len(data):,} bytes in {_where(store)}"):
        cid = store.put(data)
    click.echo(cid)


@group.command("get")
@click.argument("cid")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the blob to this file instead of standard output.",
)
@ipfs_api_option
@pass_app
def get(app: App, cid: str, output: Path | None, ipfs_api: str | None) -> None:
    """Fetch blob CID, check it against the CID, and write its raw bytes to stdout or --output."""
    parse_cid(cid)
    with _opened(app, ipfs_api) as store, app.status(f"fetching {cid} from {_where(store)}"):
        data = store.get(cid)
    if output is None:
        click.echo(data, nl=False)  # bytes go to the binary stream untouched
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise BlobError(f"cannot write blob {cid} to {str(output)!r}: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(data):,} bytes to {output}", err=True)


@group.command("pin")
@click.argument("cid")
@ipfs_api_option
@pass_app
def pin(app: App, cid: str, ipfs_api: str | None) -> None:
    """Pin blob CID so the store keeps it (it must already be in the store or reachable by the node)."""
    parse_cid(cid)
    with _opened(app, ipfs_api) as store, app.status(f"pinning {cid} in {_where(store)}"):
        store.pin(cid)
    click.echo(f"pinned {cid}")


@group.command("cid")
@file_argument
def cid(file: BinaryIO) -> None:
    """Print the CID FILE ('-' for stdin) would have as a blob, without storing it."""
    click.echo(cid_for(_read_blob(file)))


COMMANDS = [group]
