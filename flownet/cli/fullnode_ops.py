"""`flownet fullnode run | rebuild | reconcile`: the indexer side of the full node.

`run` indexes the chain into --db and serves the API from the same process; `rebuild` recomputes every
projection from the stored raw logs without any RPC call; `reconcile` compares the ledger with the
chain through view calls and exits 1 listing every difference.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import click

from flownet.cli.app import App, pass_app
from flownet.cli.fullnode import DEFAULT_PORT, ApiServer, MetadataRefresher, build_api, deployment_of, group
from flownet.errors import FlowNetError
from indexer.store import Ledger

DB_OPTION = click.option(
    "--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The SQLite database."
)


class ReconcileFailed(FlowNetError):
    """The ledger disagrees with the chain."""

    exit_code = 1


@group.command("run")
@DB_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the API listens on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535), help="API TCP port.")
@click.option("--window", default=64, show_default=True, type=click.IntRange(1, 10_000), help="Unfinalized blocks.")
@click.option("--confirmations", default=0, show_default=True, type=click.IntRange(0), help="Blocks to stay behind.")
@click.option("--poll", default=2.0, show_default=True, type=click.FloatRange(0.01), help="Seconds between polls.")
@click.option(
    "--metadata-interval",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds between provider metadata fetches from the blob store (0: never).",
)
@click.option(
    "--ready-file", type=click.Path(dir_okay=False, path_type=Path), help="Write the API URL here once it serves."
)
@pass_app
def run(
    app: App,
    db_path: Path,
    host: str,
    port: int,
    window: int,
    confirmations: int,
    poll: float,
    metadata_interval: float,
    ready_file: Path | None,
) -> None:
    """Index the chain into --db and serve the HTTP API from the same process (Ctrl-C stops both)."""
    from indexer.rpc import RpcClient
    from indexer.sync import Indexer

    deployment = app.deployment  # checks chain id and code at every manifest address
    ledger = Ledger(db_path, deployment.addresses, deployment.chain_id, window=window)
    indexer = Indexer(RpcClient(app.settings.rpc_url), ledger, deployment, window, confirmations, poll_interval=poll)
    asgi, store = build_api(db_path, app.settings)
    refresher = None
    if metadata_interval > 0:
        from flownet.blobs import open_store

        refresher = MetadataRefresher(store, open_store(app.settings).get, metadata_interval).start()
    server = ApiServer(asgi, host, port).start()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    app.say(f"fullnode indexing {app.settings.rpc_url} into {db_path}; API on {server.url}; Ctrl-C stops")
    if ready_file is not None:
        ready_file.write_text(f"{server.url}\n")
    try:
        indexer.run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
        if refresher is not None:
            refresher.stop()
        asgi.state.reader.close()
        store.close()
        ledger.close()
    app.say(f"fullnode stopped after {indexer.stats.blocks} blocks and {indexer.stats.logs} events")


@group.command("rebuild")
@DB_OPTION
@pass_app
def rebuild(app: App, db_path: Path) -> None:
    """Recompute every projection of --db from its raw logs alone (no RPC call)."""
    if not db_path.exists():
        raise click.BadParameter(f"{db_path} does not exist", param_hint="--db")
    chain_id, contracts = deployment_of(db_path, app.settings)
    ledger = Ledger(db_path, contracts, chain_id)
    try:
        before = ledger.state_hash()
        started = time.perf_counter()
        with app.status("rebuilding projections"):
            replayed = ledger.rebuild()
        elapsed = time.perf_counter() - started
        same = "unchanged" if ledger.state_hash() == before else "CHANGED (the old projections were wrong)"
    finally:
        ledger.close()
    rate = replayed / elapsed if elapsed > 0 else 0.0
    app.say(f"rebuilt from {replayed} raw logs in {elapsed:.2f} s ({rate:,.0f} events/s); state {same}")


@group.command("reconcile")
@DB_OPTION
@click.option("--block", type=click.IntRange(0), help="Compare at this indexed block (default: the indexed head).")
@pass_app
def reconcile_cmd(app: App, db_path: Path, block: int | None) -> None:
    """Compare the ledger and projections with the chain through view calls; exit 1 on any difference."""
    from indexer.reconcile import reconcile

    if not db_path.exists():
        raise click.BadParameter(f"{db_path} does not exist", param_hint="--db")
    deployment = app.deployment
    ledger = Ledger(db_path, deployment.addresses, deployment.chain_id)
    try:
        at = block if block is not None else (ledger.cursor().number if ledger.cursor() else None)
        with app.status("reconciling with the chain"):
            diffs = reconcile(ledger, app.w3, deployment, block)
    finally:
        ledger.close()
    if diffs:
        for line in diffs:
            app.say(f"  {line}")
        raise ReconcileFailed(f"{len(diffs)} difference(s) between the ledger and the chain at block {at}")
    app.say(f"ledger agrees with the chain at block {at}")


COMMANDS: list[click.Command] = []  # the commands above join the `fullnode` group
