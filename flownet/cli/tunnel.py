"""`flownet provider serve` and `flownet client connect`: the two ends of the metered mutual-TLS tunnel.

`serve` keeps a local index of the chain in sync (an indexer thread writing --db), answers clients
from it, redeems stored receipts in batches from a second thread, cancels orders left idle with
nothing paid from a third (flownet.tunnel.keeper), and optionally sends heartbeats to a full node.
`connect` runs a SOCKS5 listener for one order and pays the provider as bytes flow. Both log what
they do (INFO) to stderr; Ctrl-C or SIGTERM stops them cleanly — `serve` redeems every outstanding
receipt before it exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import click
from cryptography.hazmat.primitives.serialization import Encoding

from flownet.cli.app import App, pass_app
from flownet.cli.client import group as client_group
from flownet.cli.orders import find_order
from flownet.cli.provider import WALLET_HELP, _current_metadata
from flownet.cli.provider import group as provider_group
from flownet.core.metadata import parse_endpoint
from flownet.core.units import format_flow, parse_flow
from flownet.errors import ConfigError, FlowNetError
from flownet.tunnel.tls import Identity
from flownet.wallet import resolve_password

log = logging.getLogger("flownet.cli")

MIB = 1 << 20


def _logging(app: App) -> None:
    logging.basicConfig(
        level=logging.DEBUG if app.debug else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not app.debug:
        for noisy in ("httpx", "httpcore", "web3", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"invalid {what} {text!r}: expected host:port, e.g. 127.0.0.1:1080")
    return host, int(port)


def _identity(app: App, name: str, password: str, cert: Path | None, key: Path | None) -> Identity:
    cert_path = cert or app.settings.home / "certs" / f"{name}.crt.pem"
    key_path = key or app.settings.home / "certs" / f"{name}.key.pem"
    if not cert_path.exists():
        raise ConfigError(f"no certificate at {cert_path}: run `flownet cert new --wallet {name}` and `cert register`")
    return Identity.load(cert_path, key_path, password)


def _run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run the coroutine factory `main(stop_event)` on uvloop until SIGINT/SIGTERM."""
    import uvloop

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    uvloop.run(runner())


@provider_group.command("serve")
@click.option("--wallet", help=WALLET_HELP)
@click.option("--listen", default="0.0.0.0:7443", show_default=True, help="Address the tunnel listens on, host:port.")
@click.option(
    "--allow",
    multiple=True,
    metavar="NETWORK",
    help="Also allow tunnels to this private network (repeatable), e.g. 127.0.0.1/32. Default: public addresses only.",
)
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), help="Local index (default: home).")
@click.option(
    "--cert", type=click.Path(dir_okay=False, path_type=Path), help="Certificate PEM (default: the wallet's)."
)
@click.option(
    "--key", type=click.Path(dir_okay=False, path_type=Path), help="Its encrypted key (default: the wallet's)."
)
@click.option("--credit-window", default=16.0, show_default=True, type=click.FloatRange(0.0625), help="MiB unpaid.")
@click.option("--payment-timeout", default=30.0, show_default=True, type=click.FloatRange(0.1), help="Seconds held.")
@click.option("--redeem-threshold", default="1", show_default=True, help="Redeem once this much FLOW is unredeemed.")
@click.option("--redeem-interval", default=60.0, show_default=True, type=click.FloatRange(0.1), help="Seconds.")
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(0.05), help="Index poll, seconds.")
@click.option(
    "--fullnode",
    help="Send heartbeats to this full node API (e.g. http://127.0.0.1:8700) every 5 s, for the endpoint of your "
    "on-chain metadata (re-read each time; a change takes effect from the next epoch, never two endpoints in one).",
)
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path), help="Write host:port here when ready.")
@click.option(
    "--dispute-watch",
    default=3.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds between looks for open disputes against us (rebutted with clients' service proofs).",
)
@click.option(
    "--cancel-idle",
    default="1h",
    show_default=True,
    help="Cancel an order that nothing was paid for and that carried no traffic this long after it opened "
    "(90s, 30m, 12h, 7d; 0 never): the client gets its whole deposit back, your stake is unlocked.",
)
@click.option(
    "--refuse-idle",
    default="1d",
    show_default=True,
    help="Refuse the client of such an order this long (0: not at all), so it cannot lock your stake again at once.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="FAULT",
    help="FOR TESTING AND THE DEMO ONLY: misbehave on purpose so verifiers catch it (repeatable): "
    "drop-streams[:every=N,after=BYTES] resets every Nth stream, over-meter[:factor=F] books F times the bytes.",
)
@pass_app
def serve(
    app: App,
    wallet: str | None,
    listen: str,
    allow: tuple[str, ...],
    db_path: Path | None,
    cert: Path | None,
    key: Path | None,
    credit_window: float,
    payment_timeout: float,
    redeem_threshold: str,
    redeem_interval: float,
    poll: float,
    fullnode: str | None,
    ready_file: Path | None,
    dispute_watch: float,
    cancel_idle: str,
    refuse_idle: str,
    faults: tuple[str, ...],
) -> None:
    """Serve the tunnel: mutual TLS, orders and certificates from the local index, metering, redemption,
    and cancelling orders left idle with nothing paid."""
    from flownet.certstatus import CertificateRejected, check_certificate
    from flownet.chain.market import FlowNet
    from flownet.core.cancellation import IdlePolicy
    from flownet.tunnel.book import PaymentBook
    from flownet.tunnel.faults import Faults
    from flownet.tunnel.keeper import Keeper
    from flownet.tunnel.policy import DestinationPolicy
    from flownet.tunnel.redeem import Redeemer
    from flownet.tunnel.server import ProviderConfig, ProviderServer
    from indexer import db as index_db
    from indexer.rpc import RpcClient
    from indexer.store import Ledger
    from indexer.sync import Indexer

    _logging(app)
    host, port = _host_port(listen, "--listen")
    policy = DestinationPolicy.parse(allow)
    injected = Faults.parse(faults) if faults else None
    threshold = parse_flow(redeem_threshold)
    idle_policy = IdlePolicy(
        _seconds_or_off(cancel_idle, "--cancel-idle"), _seconds_or_off(refuse_idle, "--refuse-idle")
    )
    name = app.wallet_name(wallet)
    app.keystores.info(name)
    password = resolve_password(f"wallet {name!r}", app.password_file)
    account = app.keystores.unlock(name, password)
    identity = _identity(app, name, password, cert, key)
    deployment = app.deployment
    net = FlowNet(app.w3, deployment, account)
    path = db_path or app.settings.index_db
    ledger = Ledger(path, deployment.addresses, deployment.chain_id)
    indexer = Indexer(RpcClient(app.settings.rpc_url), ledger, deployment, 64, 0, poll_interval=poll)
    log.info("catching the local index %s up with the chain", path)
    indexer.run(threading.Event(), until=app.w3.eth.block_number)
    conn = index_db.connect(path, readonly=True)
    try:
        info = check_certificate(
            conn, identity.certificate.public_bytes(Encoding.DER), deployment.chain_id, int(time.time())
        )
    except CertificateRejected as exc:
        raise ConfigError(f"your own certificate is not usable: {exc} (run `flownet cert register`)") from None
    finally:
        conn.close()
    if info.wallet != account.address:
        raise ConfigError(f"the certificate names {info.wallet}, not wallet {name!r} ({account.address})")
    book = PaymentBook(app.settings.home / "provider" / f"{account.address}.payments.sqlite")
    manager = deployment.addresses.get("SlashingManager")
    epoch_seconds = 30
    if manager is not None:
        from flownet.chain.slashing import Slashing

        epoch_seconds = Slashing(app.w3, deployment).epoch_seconds()
    _raise_file_limit()
    config = ProviderConfig(
        identity=identity,
        provider=account.address,
        domain=net.domain,
        index_path=path,
        book=book,
        policy=policy,
        host=host,
        port=port,
        credit_window=int(credit_window * MIB),
        payment_timeout=payment_timeout,
        monitor_interval=min(0.25, poll),
        faults=injected,
        slashing_manager=manager,
        epoch_seconds=epoch_seconds,
    )
    stop_threads = threading.Event()
    running: dict[str, ProviderServer] = {}

    def busy(order_id: bytes) -> bool:
        """The tunnel has streams or unpaid bytes on the order (an account is dropped once it has neither)."""
        server = running.get("server")
        return server is not None and order_id in server.accounts

    keeper = Keeper(net, book, path, idle_policy, busy=busy)
    threads = [
        threading.Thread(target=indexer.run, args=(stop_threads,), name="indexer", daemon=True),
        threading.Thread(
            target=Redeemer(book, net, threshold).run, args=(stop_threads, redeem_interval), name="redeemer"
        ),
        threading.Thread(
            target=keeper.run,
            args=(stop_threads, min(5.0, max(0.5, idle_policy.idle_after / 4))),
            name="keeper",
            daemon=True,
        ),
    ]
    if config.slashing_manager is not None:
        from flownet.chain.slashing import Slashing
        from flownet.tunnel.defence import Defender

        defender = Defender(book, Slashing(app.w3, deployment, account), account.address, index_path=path)
        threads.append(
            threading.Thread(target=defender.run, args=(stop_threads, dispute_watch), name="defence", daemon=True)
        )
    else:
        log.info("the deployment has no SlashingManager: clients' service proofs are ignored")
    if fullnode:
        threads.append(threading.Thread(target=_heartbeats, args=(app, account, fullnode, stop_threads), daemon=True))

    async def main(stop: asyncio.Event) -> None:
        server = ProviderServer(config)
        running["server"] = server
        await server.start()
        for thread in threads:
            thread.start()
        if ready_file is not None:
            ready_file.write_text(f"{host}:{config.port}\n")
        app.say(f"provider {account.address} serving on {host}:{config.port}; index {path}; Ctrl-C stops")
        if injected is not None:
            app.say(f"FAULTS INJECTED (testing and demo only): {injected.describe()}")
        await stop.wait()
        log.info("stopping: closing sessions, then redeeming what is outstanding")
        await server.stop()
        app.say(f"served {server.stats['sessions']} session(s), accepted {server.stats['receipts']} receipt(s)")

    try:
        _run_until_signalled(main)
    finally:
        stop_threads.set()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=120)
        outstanding = sum(s.outstanding for s in book.outstanding())
        book.close()
        ledger.close()
        if outstanding:
            app.say(f"{format_flow(outstanding)} of receipts could not be redeemed yet (kept in the book)")


def _raise_file_limit(want: int = 65536) -> None:
    """Let the provider use as many sockets as the system allows (up to `want`): every stream is one, and
    a soft limit of 1,024 would let a few hundred idle connections refuse everyone else."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
            return
        log.info("open-file limit raised from %d to %d", soft, target)


def _seconds_or_off(text: str, option: str) -> int:
    """A duration for `option` in seconds (90s, 30m, 12h, 7d), or 0 for "0" / "off"."""
    from flownet.cli.client import parse_duration

    if text.strip().lower() in ("0", "off", "never"):
        return 0
    try:
        return parse_duration(text)
    except ConfigError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def _heartbeats(
    app: App,
    account: object,
    fullnode: str,
    stop: threading.Event,
    interval: float = 5.0,
    clock: Callable[[], float] = time.time,
) -> None:
    """Sign and post a heartbeat every `interval` s until `stop` (failures are logged, never fatal).

    The endpoint is re-read from the on-chain metadata before every heartbeat and signed through the
    wallet's heartbeat record (flownet.heartbeats), so a changed endpoint is used from the next epoch on.
    """
    from flownet.chain.market import FlowNet
    from flownet.cli.heartbeat import _domain
    from flownet.core.heartbeat_guard import HeartbeatRefused
    from flownet.fullnode_client import FullNodeClient, FullNodeError
    from flownet.heartbeats import HeartbeatRecord, HeartbeatSender, HeartbeatSigner, record_path

    base = fullnode.rstrip("/")
    hb_log = logging.getLogger("flownet.heartbeat")
    net = FlowNet(app.w3, app.deployment, account)  # type: ignore[arg-type]
    with FullNodeClient(base) as node:
        try:
            status = node.status()
            domain = _domain(app, status, base)
            record = HeartbeatRecord(record_path(app.settings.home, account.address))  # type: ignore[attr-defined]
        except Exception as exc:
            hb_log.warning("heartbeats disabled: %s", exc)
            return
        epoch_seconds = int(status.get("epoch_seconds", 30))
        signer = HeartbeatSigner(account, domain, record, epoch_seconds=epoch_seconds, clock=clock)  # type: ignore[arg-type]
        sender = HeartbeatSender(signer, lambda: _current_metadata(app, net).endpoint, hb_log)
        try:
            while True:
                try:
                    beat = sender.beat(0)
                    answer = node.post_heartbeat(beat.signed)
                    hb_log.debug("heartbeat epoch %d for %s: %d", beat.epoch, beat.endpoint, answer.status)
                except HeartbeatRefused as exc:
                    hb_log.warning("heartbeat not signed: %s", exc)
                except FullNodeError as exc:
                    hb_log.warning("heartbeat to %s failed: %s", base, exc)
                except Exception as exc:  # no endpoint read yet: try again at the next heartbeat
                    hb_log.warning("heartbeat not sent: %s", exc)
                if stop.wait(interval):
                    break
        finally:
            record.close()


@client_group.command("connect")
@click.option("--order", "order_ref", required=True, help="The order to use: its number or id.")
@click.option("--listen", default="127.0.0.1:1080", show_default=True, help="SOCKS5 listen address, host:port.")
@click.option("--wallet", help=WALLET_HELP)
@click.option("--endpoint", help="The provider's tunnel host:port (default: from its signed metadata).")
@click.option(
    "--cert", type=click.Path(dir_okay=False, path_type=Path), help="Certificate PEM (default: the wallet's)."
)
@click.option(
    "--key", type=click.Path(dir_okay=False, path_type=Path), help="Its encrypted key (default: the wallet's)."
)
@click.option(
    "--receipt-interval", default=4.0, show_default=True, type=click.FloatRange(0.0625), help="MiB per receipt."
)
@click.option("--ready-file", type=click.Path(dir_okay=False, path_type=Path), help="Write host:port here when ready.")
@pass_app
def connect(
    app: App,
    order_ref: str,
    listen: str,
    wallet: str | None,
    endpoint: str | None,
    cert: Path | None,
    key: Path | None,
    receipt_interval: float,
    ready_file: Path | None,
) -> None:
    """Run a local SOCKS5 proxy (no auth, CONNECT) that tunnels through the order's provider and pays it."""
    from flownet.chain.market import FlowNet
    from flownet.chain.registry import Registry
    from flownet.tunnel.client import ClientConfig, ClientTunnel, ReceiptLog, provider_identity_check
    from flownet.tunnel.payment import ReceiptSigner

    _logging(app)
    listen_host, listen_port = _host_port(listen, "--listen")
    name = app.wallet_name(wallet)
    app.keystores.info(name)
    password = resolve_password(f"wallet {name!r}", app.password_file)
    account = app.keystores.unlock(name, password)
    identity = _identity(app, name, password, cert, key)
    net = FlowNet(app.w3, app.deployment, account)
    order = find_order(net, order_ref, client=account.address)
    paid, status = net.order_state(order)
    if status != 1:
        raise ConfigError(f"order {order.nonce} is not open (status {status})")
    if order.expiry <= time.time():
        raise ConfigError(f"order {order.nonce} expired at {order.expiry}")
    if endpoint is None:
        try:
            endpoint = _current_metadata(app, FlowNet.readonly(app.w3, app.deployment, order.provider)).endpoint
        except FlowNetError as exc:
            raise ConfigError(f"cannot read provider {order.provider}'s endpoint ({exc}); pass --endpoint") from None
    provider_host, provider_port = _host_port(parse_endpoint(endpoint), "--endpoint")
    registry = Registry(app.w3, app.deployment)
    config = ClientConfig(
        identity=identity,
        order=order,
        domain=net.domain,
        signer=ReceiptSigner(bytes(account.key), net.domain),
        provider_host=provider_host,
        provider_port=provider_port,
        provider_check=provider_identity_check(
            order, app.deployment.chain_id, lambda h: registry.is_valid(h, order.provider)
        ),
        receipts=ReceiptLog(app.settings.home / "client" / f"{account.address}.receipts.sqlite"),
        listen_host=listen_host,
        listen_port=listen_port,
        receipt_interval=int(receipt_interval * MIB),
    )
    manager = app.deployment.addresses.get("SlashingManager")
    if manager is not None:  # sign the bytes of each epoch so the provider can rebut disputes about it
        from flownet.chain.slashing import Slashing
        from flownet.tunnel.payment import ServiceProofSigner

        config.proofs = ServiceProofSigner(bytes(account.key), app.deployment.chain_id, manager)
        config.epoch_seconds = Slashing(app.w3, app.deployment).epoch_seconds()

    async def main(stop: asyncio.Event) -> None:
        tunnel = ClientTunnel(config)
        await tunnel.start()
        if ready_file is not None:
            ready_file.write_text(f"{listen_host}:{config.listen_port}\n")
        left = order.deposit - paid
        app.say(
            f"SOCKS5 proxy on {listen_host}:{config.listen_port} for order {order.nonce} with {order.provider} at "
            f"{provider_host}:{provider_port} ({format_flow(left)} of escrow left); Ctrl-C stops"
        )
        await stop.wait()
        await tunnel.stop()
        app.say(
            f"carried {tunnel.total:,} bytes in {tunnel.stats['streams']} stream(s); signed receipts for "
            f"{format_flow(tunnel.signed_amount)}"
        )

    try:
        _run_until_signalled(main)
    finally:
        config.receipts.close()


@provider_group.command("rebut")
@click.argument("dispute_id", type=click.IntRange(1))
@click.option("--wallet", help=WALLET_HELP)
@pass_app
def rebut(app: App, dispute_id: int, wallet: str | None) -> None:
    """Rebut dispute DISPUTE_ID against you: strike each accuser whose own service proof for its epoch your
    book holds (verifiers sign one in-band for an epoch they judged acceptable); once fewer than the quorum
    of accusers remain, the dispute is rebutted and their bonds are burned."""
    from flownet.chain.slashing import Slashing
    from flownet.tunnel.book import PaymentBook
    from flownet.tunnel.defence import Defender

    _logging(app)
    name = app.wallet_name(wallet)
    app.keystores.info(name)
    account = app.keystores.unlock(name, resolve_password(f"wallet {name!r}", app.password_file))
    if "SlashingManager" not in app.deployment.addresses:
        raise ConfigError("the deployment has no SlashingManager: there is nothing to rebut")
    book_path = app.settings.home / "provider" / f"{account.address}.payments.sqlite"
    if not book_path.exists():
        raise ConfigError(f"no payment book at {book_path}: this wallet has not served as a provider here")
    book = PaymentBook(book_path)
    try:
        slashing = Slashing(app.w3, app.deployment, account)
        sent = Defender(book, slashing, account.address).rebut(dispute_id)
        status = slashing.dispute(dispute_id).status
    finally:
        book.close()
    for one in sent:
        app.say(f"accuser struck in {one.tx_hash} (gas {one.gas_used:,})")
    app.say(f"dispute {dispute_id} is {status}" + ("" if status == "rebutted" else ": not enough accusers struck"))


COMMANDS: list[click.Command] = []  # the commands join the provider and client groups
