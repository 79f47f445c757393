"""`flownet fullnode`: serve the HTTP API over an indexer database (and, as commands are added, index).

The building blocks are importable so other commands of the group (``run``: indexer + API in one
process) can reuse them: `deployment_of` finds the deployment a database is for, `slashing_settings`
its epoch length and statute of limitations, `build_api` makes the ASGI app and its writer,
`ApiServer` runs uvicorn in the foreground or in a thread, and `MetadataRefresher` fills provider
metadata from the blob store in a background thread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click
import uvicorn
from fastapi import FastAPI

from flownet.chain.deploy import Deployment
from flownet.cli.app import App, pass_app
from flownet.config import Settings
from flownet.core.heartbeat import DEFAULT_MAX_SKEW
from flownet.errors import ConfigError, DeploymentError
from indexer import db, queries
from indexer.api import create_app
from indexer.apistore import ApiStore
from indexer.provider_meta import refresh

log = logging.getLogger(__name__)

DEFAULT_PORT = 8700


@click.group("fullnode")
def group() -> None:
    """Run a FlowNet full node: index the chain into SQLite and serve the HTTP API."""


def deployment_of(db_path: Path, settings: Settings) -> tuple[int, dict[str, str]]:
    """(chain id, contract addresses) of the deployment `db_path` indexes.

    The indexer records them in the database; a database it has not touched yet takes the manifest's.
    """
    if db_path.exists():
        conn = db.connect(db_path, readonly=True)
        try:
            recorded = queries.deployment(conn)
        except sqlite3.OperationalError:  # no meta table yet: not migrated
            recorded = None
        finally:
            conn.close()
        if recorded is not None:
            return int(recorded["chain_id"]), dict(recorded["contracts"])
    try:
        manifest = Deployment.load(settings.manifest)
    except DeploymentError as exc:
        raise ConfigError(
            f"{db_path} does not record a deployment yet and there is no usable manifest ({exc}); "
            "run the indexer first or pass --manifest"
        ) from None
    return manifest.chain_id, dict(manifest.addresses)


def slashing_settings(settings: Settings, chain_id: int, contracts: dict[str, str]) -> dict[str, int]:
    """The SlashingManager's ``epoch_seconds`` and ``statute_epochs`` from the manifest's deployment config,
    when the manifest is of the same chain and SlashingManager; else {} (the API's defaults, DeployConfig's)."""
    manager = contracts.get("SlashingManager")
    try:
        manifest = Deployment.load(settings.manifest)
    except (DeploymentError, TypeError) as exc:
        log.info("no usable manifest for the slashing settings (%s): using the defaults", exc)
        return {}
    same = manager is not None and str(manifest.addresses.get("SlashingManager", "")).lower() == manager.lower()
    if not same or manifest.chain_id != chain_id:
        log.info("the manifest %s is of another deployment: default slashing settings", settings.manifest)
        return {}
    return {k: int(manifest.config[k]) for k in ("epoch_seconds", "statute_epochs") if k in manifest.config}


def build_api(db_path: Path, settings: Settings, max_skew: float = DEFAULT_MAX_SKEW) -> tuple[FastAPI, ApiStore]:
    """The API app over `db_path` and its writer (created and migrated if needed); the heartbeat epoch and
    the statute of limitations are the deployment's (`slashing_settings`)."""
    chain_id, contracts = deployment_of(db_path, settings)
    if "Staking" not in contracts:
        raise ConfigError(f"the deployment of {db_path} has no Staking contract (has {sorted(contracts)})")
    store = ApiStore(db_path)
    app = create_app(
        db_path, chain_id, contracts["Staking"], max_skew=max_skew, store=store,
        slashing_address=contracts.get("SlashingManager"), **slashing_settings(settings, chain_id, contracts),
    )  # fmt: skip
    return app, store


class ApiServer:
    """uvicorn serving `asgi` on host:port: `run()` in the foreground, or `start()`/`stop()` in a thread."""

    def __init__(self, asgi: FastAPI, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        self.host = host
        self.port = port
        config = uvicorn.Config(asgi, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (uvicorn's handlers, main thread only)."""
        self.server.run()

    def start(self, timeout: float = 10.0) -> ApiServer:
        self.thread = threading.Thread(target=self.server.run, name="fullnode-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the API server could not start on {self.url} (port in use?)")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
            self.thread = None


class MetadataRefresher:
    """Every `interval` seconds, fetch new providers' metadata with `get(cid)` into provider_meta."""

    def __init__(self, store: ApiStore, get: Callable[[str], bytes], interval: float) -> None:
        self.store = store
        self.get = get
        self.interval = interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="fullnode-metadata", daemon=True)

    def start(self) -> MetadataRefresher:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                result = refresh(self.store, self.get, time.time())
                if result.fetched or result.failed:
                    log.info("provider metadata: %d fetched, %d refused", result.fetched, result.failed)
            except Exception:  # keep serving; the next pass retries
                log.exception("provider metadata refresh failed")
            self.stopping.wait(self.interval)


@group.command("serve")
@click.option(
    "--db",
    "db_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The indexer's SQLite database (created if missing; the API writes only heartbeats and metadata).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option(
    "--metadata-interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between fetches of new provider metadata from the blob store (0: never fetch).",
)
@click.option(
    "--max-skew",
    default=DEFAULT_MAX_SKEW,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Accept heartbeats whose timestamp is at most this many seconds from this node's clock.",
)
@pass_app
def serve(app: App, db_path: Path, host: str, port: int, metadata_interval: float, max_skew: float) -> None:
    """Serve the HTTP API (providers, orders, ledger, events, status, heartbeats, metrics) over --db."""
    asgi, store = build_api(db_path, app.settings, max_skew)
    refresher = None
    if metadata_interval > 0:
        from flownet.blobs import open_store

        refresher = MetadataRefresher(store, open_store(app.settings).get, metadata_interval).start()
    server = ApiServer(asgi, host, port)
    app.say(f"fullnode API on {server.url} (db {db_path}, chain {asgi.state.domain.chain_id}); Ctrl-C stops")
    try:
        server.run()
    finally:
        if refresher is not None:
            refresher.stop()
        asgi.state.reader.close()
        store.close()
    app.say("fullnode API stopped")


COMMANDS = [group]
