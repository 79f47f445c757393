"""The full node's HTTP API (FastAPI): providers, orders, the ledger, raw events, status, heartbeats,
disputes and attestations (indexer.api_slashing), equivocation evidence (indexer.api_equivocations), metrics.

The server reads the indexer's database through a read-only connection; its only writes are accepted
heartbeats (with equivocation evidence) and attestations (and fetched provider metadata), through one
`ApiStore` writer connection.

Conventions:

- Token amounts are decimal strings of token units (1 FLOW = 10^18 units), without zero padding;
  fields ending in ``_flow`` repeat them for people ("2.5 FLOW").
- Every error is JSON ``{"error": "<code>", "message": "<sentence naming the bad value>"}`` with a 4xx
  status; unknown query parameters are refused too (a typo never silently widens a search). Parameter
  types, their patterns and bounds, and the error handlers are in `indexer.api_contract`.
- Lists are paginated with ``limit``/``offset`` and carry ``total``.

The OpenAPI description is served at ``/openapi.json``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from eth_utils.address import is_address, to_checksum_address
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flownet import __version__
from flownet.core.heartbeat import (
    DEFAULT_EPOCH_SECONDS,
    DEFAULT_MAX_SKEW,
    REASONS,
    HeartbeatDomain,
    HeartbeatRejected,
    SignedHeartbeat,
    check,
)
from flownet.core.safejson import InputRejected, clamp_recursion_limit
from flownet.core.units import format_flow
from flownet.errors import ConfigError
from indexer import api_contract, api_equivocations, api_slashing, queries, rejections
from indexer.api_contract import (
    ADDRESS_PATTERN,
    BAD_REQUEST,
    BOOLEAN,
    BYTES32_PATTERN,
    DIGITS,
    LOOKUP,
    SIGNATURE_PATTERN,
    SQL_INT_MAX,
    UINT64_END,
    ApiError,
    ErrorOut,
    OrderIdPath,
    ProviderPath,
    UnitsFilter,
    checksummed,
    error,
)
from indexer.api_slashing import MAX_BODY_BYTES, DisputeOut, SlashOut, TrustDetail, TrustOut, body_refusal, parse_body
from indexer.apistore import DEFAULT_MAX_PER_EPOCH, ApiStore
from indexer.events import RawLog, decode
from indexer.queries import ProviderQuery

__all__ = ["ApiError", "create_app"]

MAX_LIMIT = 500
MAX_EVENTS = 1000
MAX_OFFSET = 10_000_000
MAX_ACCOUNT = 200  # characters of an account name or prefix
_ACCOUNT_RE = re.compile(r"^(wallet|stake:active|stake:thawing|escrow):(0x[0-9a-fA-F]{40}|0x[0-9a-fA-F]{64})$")
ACCOUNT_HELP = (
    "accounts are wallet:<address>, stake:active:<address>, stake:thawing:<address>, escrow:<orderId>, "
    "external and burned"
)
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


# ----------------------------------------------------------------------------------------- models
# The handlers return JSONResponse directly (no per-request validation cost); these models describe
# the answers in /openapi.json and the tests check the answers against them.


class MetadataOut(BaseModel):
    cid: str
    current: bool = Field(description="Whether this is the document of the provider's current on-chain CID.")
    endpoint: str | None
    endpoint_hash: str | None
    region: str | None
    capacity_mbps: int | None
    fetched_at: float
    error: str | None = Field(description="Why the document was refused or could not be fetched (then no fields).")


class LastHeartbeatOut(BaseModel):
    epoch: int
    timestamp: int
    load: int = Field(description="Basis points of capacity in use (0..10000).")
    endpoint_hash: str
    received_at: float
    endpoint_matches_metadata: bool | None = Field(description="null when the metadata is unknown.")


class ProviderOut(BaseModel):
    address: str
    role: str
    price: str = Field(description="Price per GiB in token units (0: no offer).")
    price_flow: str
    stake_active: str
    stake_active_flow: str
    stake_locked: str
    stake_thawing: str
    thaw_end: int
    slashed: str
    metadata_cid: str | None
    metadata: MetadataOut | None
    trust: TrustOut = Field(description="The provider's network trust score (TrustRegistry domain 0).")
    live: bool = Field(description="A heartbeat was signed within the last 3 epochs.")
    last_heartbeat: LastHeartbeatOut | None
    updated_block: int


class ProviderPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ProviderOut]


class HeartbeatRecordOut(BaseModel):
    epoch: int
    timestamp: int
    load: int
    endpoint_hash: str
    signature: str
    received_at: float


class ProviderDetail(ProviderOut):
    recent_heartbeats: list[HeartbeatRecordOut] = Field(description="The 10 latest stored heartbeats.")
    equivocating_epochs: list[int] = Field(
        description="The 10 latest epochs with heartbeats naming different endpoints (the signed pairs: "
        "GET /providers/{address}/equivocations)."
    )
    trust: TrustDetail = Field(description="Network trust score and its changes with their reasons.")  # type: ignore[assignment]
    disputes: list[DisputeOut] = Field(description="Disputes against the provider, newest first (at most 50).")
    slashes: list[SlashOut] = Field(description="The provider's slashes, newest first (at most 50).")


class ReceiptOut(BaseModel):
    block_number: int
    log_index: int
    cumulative_bytes: str
    cumulative_amount: str
    payout: str


class OrderOut(BaseModel):
    order_id: str
    nonce: int
    client: str
    provider: str
    deposit: str
    deposit_flow: str
    price: str
    price_flow: str
    expiry: int
    locked_stake: str
    paid: str
    paid_flow: str
    paid_bytes: str
    refunded: str
    escrow: str = Field(description="Deposit still held by the market (0 once closed).")
    status: Literal["open", "closed"]
    cooperative: bool | None
    cancelled: bool = Field(
        description="Closed by its provider's cancel before the provider accepted it: nothing was paid and the "
        "whole deposit was refunded."
    )
    opened_block: int
    closed_block: int | None
    receipts: list[ReceiptOut]


class AccountOut(BaseModel):
    account: str
    balance: str = Field(
        description="Signed token units (external is minus everything minted; burned holds everything burned)."
    )
    balance_flow: str


class AccountPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AccountOut]


class EntryOut(BaseModel):
    block_number: int
    log_index: int
    seq: int
    kind: str
    debit: str
    credit: str
    amount: str
    amount_flow: str
    delta: str = Field(description="Signed change of this account's balance.")


class AccountDetail(AccountOut):
    total: int = Field(description="Number of journal entries touching the account.")
    limit: int
    offset: int
    entries: list[EntryOut] = Field(description="Newest first.")


class EventOut(BaseModel):
    block_number: int
    log_index: int
    block_hash: str
    tx_hash: str
    address: str
    contract: str | None
    event: str | None
    topics: list[str]
    data: str
    args: dict[str, Any] | None = Field(description="Decoded arguments (integers as decimal strings).")


class EventCursor(BaseModel):
    from_block: int
    from_log_index: int


class EventPage(BaseModel):
    items: list[EventOut]
    next: EventCursor | None = Field(description="Parameters for the next page; null at the end.")


class StatusOut(BaseModel):
    version: str
    chain_id: int
    contracts: dict[str, str]
    indexed_block: int | None
    indexed_hash: str | None
    head: int | None = Field(description="The chain head the indexer last saw (null until it reports one).")
    lag: int | None
    rollback_floor: int | None
    now: int
    epoch_seconds: int
    current_epoch: int
    heartbeat_max_skew: float


class HeartbeatIn(BaseModel):
    provider: str = Field(
        pattern=ADDRESS_PATTERN, description="0x + 40 hex: lower or upper case, or mixed as its EIP-55 checksum."
    )
    epoch: int = Field(ge=0, lt=UINT64_END, description="timestamp // epoch_seconds.")
    endpointHash: str = Field(
        pattern=BYTES32_PATTERN, description="0x + 64 hex: keccak256 of the endpoint in the provider's metadata."
    )
    load: int = Field(ge=0, le=10_000, description="0..10000 basis points of capacity.")
    timestamp: int = Field(ge=0, lt=UINT64_END, description="Unix seconds; within the node's max skew of its clock.")
    signature: str = Field(
        pattern=SIGNATURE_PATTERN, description="0x + 130 hex: EIP-712 signature (65 bytes, v 27/28, low s)."
    )


class HeartbeatAccepted(BaseModel):
    accepted: bool
    duplicate: bool = Field(description="The same statement was already stored (nothing changed).")
    provider: str
    epoch: int
    live_until: int = Field(description="Unix time until which this heartbeat keeps the provider live.")


# ----------------------------------------------------------------------------------------- metrics


class Metrics:
    """Counters and latency histograms kept in memory, rendered in Prometheus' text format."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.latency: dict[str, list[float]] = {}  # route -> bucket counts..., sum, count
        self.heartbeats: Counter[str] = Counter({"accepted": 0, "duplicate": 0})
        self.rejected: Counter[str] = Counter(dict.fromkeys(REASONS, 0))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(method, route, status)] += 1
            hist = self.latency.setdefault(route, [0.0] * (len(BUCKETS) + 2))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    hist[i] += 1
            hist[-2] += seconds
            hist[-1] += 1

    def heartbeat(self, outcome: str, reason: str | None = None) -> None:
        with self.lock:
            if outcome == "rejected" and reason:
                self.rejected[reason] += 1
            else:
                self.heartbeats[outcome] += 1

    def render(self, gauges: Iterable[tuple[str, str, str, list[tuple[dict[str, str], float]]]]) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{_labels(labels)} {_number(value)}")

        for name, kind, help_text, samples in gauges:
            family(name, kind, help_text, samples)
        with self.lock:
            family(
                "flownet_heartbeats_accepted_total",
                "counter",
                "Heartbeats accepted and stored since the server started.",
                [({}, self.heartbeats["accepted"])],
            )
            family(
                "flownet_heartbeats_duplicate_total",
                "counter",
                "Heartbeats accepted that repeated an already stored statement.",
                [({}, self.heartbeats["duplicate"])],
            )
            family(
                "flownet_heartbeats_rejected_total",
                "counter",
                "Heartbeats refused, by reason.",
                [({"reason": r}, n) for r, n in sorted(self.rejected.items())],
            )
            family(
                "flownet_http_requests_total",
                "counter",
                "HTTP requests by method, route template and status.",
                [({"method": m, "route": r, "status": str(s)}, n) for (m, r, s), n in sorted(self.requests.items())],
            )
            out.append("# HELP flownet_http_request_duration_seconds HTTP request latency by route template.")
            out.append("# TYPE flownet_http_request_duration_seconds histogram")
            name = "flownet_http_request_duration_seconds"
            for route, hist in sorted(self.latency.items()):
                for bound, count in zip(BUCKETS, hist, strict=False):
                    out.append(f"{name}_bucket{_labels({'route': route, 'le': _number(bound)})} {_number(count)}")
                out.append(f"{name}_bucket{_labels({'route': route, 'le': '+Inf'})} {_number(hist[-1])}")
                out.append(f"{name}_sum{_labels({'route': route})} {_number(hist[-2])}")
                out.append(f"{name}_count{_labels({'route': route})} {_number(hist[-1])}")
        return "\n".join(out) + "\n"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    escaped = (
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + "n").replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items()
    )
    return "{" + ",".join(escaped) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _BodyTooLarge(Exception):
    pass


class _BodyLimit:
    """ASGI middleware refusing a request body over `limit` bytes with 413 JSON before it is read whole:
    by its Content-Length at once, or while a chunked body streams in."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, send: Send, size: str) -> None:
        body = json.dumps(
            {
                "error": "too_large",
                "message": f"the request body is {size} bytes, more than the {self.limit:,} accepted",
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, f"{int(declared):,}")
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send, f"over {self.limit:,}")


class _Instrument:
    """ASGI middleware counting requests and their latency per route template (bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], path, status, time.perf_counter() - start)


# ----------------------------------------------------------------------------------------- helpers


def _units(value: Any) -> str:
    return str(int(value)) if value not in (None, "") else "0"


def _flow(value: Any) -> str:
    return format_flow(int(value) if value not in (None, "") else 0)


def _json_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def known_params(*names: str) -> Callable[[Request], None]:
    """A dependency refusing query parameters a route does not take (a typo must not widen a search)."""
    allowed = set(names)

    def dependency(request: Request) -> None:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            hint = f"; this route takes {', '.join(sorted(allowed))}" if allowed else "; this route takes none"
            raise ApiError(400, "bad_request", f"unknown query parameter {unknown[0]!r}{hint}")

    return dependency


def provider_json(row: dict[str, Any], now: float, epoch_seconds: int) -> dict[str, Any]:
    """A provider row (stakers + provider_meta + liveness) as the API renders it."""
    metadata = None
    if row.get("meta_cid") is not None:
        metadata = {
            "cid": row["meta_cid"],
            "current": row["meta_cid"] == row["metadata_cid"],
            "endpoint": row["endpoint"],
            "endpoint_hash": row["meta_endpoint_hash"],
            "region": row["region"],
            "capacity_mbps": row["capacity_mbps"],
            "fetched_at": row["fetched"],
            "error": row["meta_error"],
        }
    heartbeat = None
    live = False
    if row.get("hb_timestamp") is not None:
        live = row["hb_timestamp"] >= queries.live_since(now, epoch_seconds)
        matches = None
        if metadata is not None and metadata["current"] and row["meta_endpoint_hash"]:
            matches = row["hb_endpoint_hash"] == row["meta_endpoint_hash"]
        heartbeat = {
            "epoch": row["hb_epoch"],
            "timestamp": row["hb_timestamp"],
            "load": row["hb_load"],
            "endpoint_hash": row["hb_endpoint_hash"],
            "received_at": row["hb_received_at"],
            "endpoint_matches_metadata": matches,
        }
    return {
        "address": row["address"],
        "role": row["role"],
        "price": _units(row["price"]),
        "price_flow": _flow(row["price"]),
        "stake_active": _units(row["active"]),
        "stake_active_flow": _flow(row["active"]),
        "stake_locked": _units(row["locked"]),
        "stake_thawing": _units(row["thawing"]),
        "thaw_end": row["thaw_end"],
        "slashed": _units(row["slashed"]),
        "metadata_cid": row["metadata_cid"],
        "metadata": metadata,
        "trust": {"score": row["trust_score"]},
        "live": live,
        "last_heartbeat": heartbeat,
        "updated_block": row["updated_block"],
    }


def _order_json(row: dict[str, Any], receipt_rows: list[dict[str, Any]]) -> dict[str, Any]:
    deposit, paid, refunded = int(row["deposit"]), int(row["paid"]), int(row["refunded"])
    escrow = 0 if row["status"] == "closed" else max(deposit - paid - refunded, 0)
    return {
        "order_id": row["order_id"],
        "nonce": row["nonce"],
        "client": row["client"],
        "provider": row["provider"],
        "deposit": str(deposit),
        "deposit_flow": format_flow(deposit),
        "price": _units(row["price"]),
        "price_flow": _flow(row["price"]),
        "expiry": row["expiry"],
        "locked_stake": _units(row["locked_stake"]),
        "paid": str(paid),
        "paid_flow": format_flow(paid),
        "paid_bytes": _units(row["paid_bytes"]),
        "refunded": str(refunded),
        "escrow": str(escrow),
        "status": row["status"],
        "cooperative": None if row["cooperative"] is None else bool(row["cooperative"]),
        "cancelled": bool(row["cancelled"]),
        "opened_block": row["opened_block"],
        "closed_block": row["closed_block"],
        "receipts": [
            {
                "block_number": r["block_number"],
                "log_index": r["log_index"],
                "cumulative_bytes": _units(r["cumulative_bytes"]),
                "cumulative_amount": _units(r["cumulative_amount"]),
                "payout": _units(r["payout"]),
            }
            for r in receipt_rows
        ],
    }


def _account_name(text: str) -> str:
    """Normalize the address (checksum) or order id (lower case) inside an account name."""
    match = _ACCOUNT_RE.fullmatch(text)
    if not match:
        return text
    kind, tail = match.groups()
    return f"{kind}:{to_checksum_address(tail) if len(tail) == 42 else tail.lower()}"


# ----------------------------------------------------------------------------------------- the app


def create_app(
    db_path: Path | str,
    chain_id: int,
    staking_address: str,
    clock: Callable[[], float] = time.time,
    *,
    epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
    max_skew: float = DEFAULT_MAX_SKEW,
    max_per_epoch: int = DEFAULT_MAX_PER_EPOCH,
    store: ApiStore | None = None,
    slashing_address: str | None = None,
    statute_epochs: int = api_slashing.DEFAULT_STATUTE_EPOCHS,
) -> FastAPI:
    """The API over the database at `db_path` (created and migrated if needed) for one deployment.

    `chain_id` and `staking_address` fix the heartbeat domain; if the indexer has recorded its
    deployment in the database, they must match it. `clock` gives the time (tests pass a fixed one).
    `slashing_address` (default: the SlashingManager the indexer recorded) fixes the attestation domain;
    `statute_epochs` (the SlashingManager's) how old an attested epoch, or a listed equivocation, may be.
    """
    if not is_address(staking_address):
        raise ConfigError(f"invalid Staking address {staking_address!r}")
    clamp_recursion_limit()  # eth-keyfile's py_ecc raises it to 100,000: deep input must raise, not crash
    staking_address = to_checksum_address(staking_address)
    store = store or ApiStore(db_path, max_per_epoch=max_per_epoch)
    reader = queries.open_reader(db_path)
    recorded = queries.deployment(reader)
    if recorded is not None:
        recorded_staking = recorded.get("contracts", {}).get("Staking")
        if recorded_staking and is_address(recorded_staking):
            recorded_staking = to_checksum_address(recorded_staking)
        if recorded.get("chain_id") != chain_id or recorded_staking != staking_address:
            raise ConfigError(
                f"{db_path} indexes chain {recorded.get('chain_id')} with Staking {recorded_staking}, "
                f"not chain {chain_id} with Staking {staking_address}"
            )
    domain = HeartbeatDomain(chain_id, staking_address)
    metrics = Metrics()
    if slashing_address is None and recorded is not None:
        slashing_address = recorded.get("contracts", {}).get("SlashingManager")
    if slashing_address is not None:
        if not is_address(slashing_address):
            raise ConfigError(f"invalid SlashingManager address {slashing_address!r}")
        slashing_address = to_checksum_address(slashing_address)

    app = FastAPI(
        title="FlowNet full node",
        version=__version__,
        description=__doc__,
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.reader = reader
    app.state.metrics = metrics
    app.state.domain = domain
    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(_Instrument, metrics=metrics)

    api_contract.install(app)

    def now() -> float:
        return float(clock())

    # ------------------------------------------------------------------ providers

    @app.get(
        "/providers",
        response_model=ProviderPage,
        responses=BAD_REQUEST,
        dependencies=[
            Depends(known_params("region", "max_price", "min_trust", "live", "sort", "order", "limit", "offset"))
        ],
    )
    async def list_providers(
        region: str | None = Query(None, max_length=64, description="Exact region label from the metadata."),
        max_price: UnitsFilter = None,
        min_trust: float | None = Query(
            None,
            allow_inf_nan=False,
            description="Lowest network trust score (TrustRegistry domain 0, 0..1000); providers never "
            "scored count as 500, the registry's neutral score.",
        ),
        live: Annotated[
            bool | None,
            Query(description="true: only providers with a heartbeat in the last 3 epochs; false: only others."),
            BOOLEAN,
        ] = None,
        sort: Literal["price", "stake", "last_seen"] = Query("price", description="Sort key."),
        order: Literal["asc", "desc"] = Query("asc", description="Sort direction (never-seen providers last)."),
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size."), DIGITS] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip."), DIGITS] = 0,
    ) -> JSONResponse:
        """Search providers; `total` counts every match."""
        price_limit = int(max_price) if max_price is not None else None
        query = ProviderQuery(region, price_limit, min_trust, live, sort, order, limit, offset)
        t = now()
        total, rows = queries.search_providers(reader, query, t, epoch_seconds)
        return JSONResponse(
            {
                "total": total,
                "limit": limit,
                "offset": offset,
                "items": [provider_json(r, t, epoch_seconds) for r in rows],
            }
        )

    @app.get(
        "/providers/{address}",
        response_model=ProviderDetail,
        responses=LOOKUP,
        dependencies=[Depends(known_params())],
    )
    async def get_provider(address: ProviderPath) -> JSONResponse:
        """One provider with its metadata, liveness and latest heartbeats."""
        checked = checksummed(address, "provider address")
        with queries.snapshot(reader):
            row = queries.provider(reader, checked)
            recent = queries.recent_heartbeats(reader, checked)
            equivocating = queries.equivocating_epochs(reader, checked)
            extras = api_slashing.provider_extras(reader, checked, row["trust_score"]) if row else {}
        if row is None or row["role"] != "provider":
            what = f"a {row['role']}, not a provider" if row else "not a provider known to this node"
            raise ApiError(404, "not_found", f"{checked} is {what}")
        body = provider_json(row, now(), epoch_seconds)
        body["recent_heartbeats"] = recent
        body["equivocating_epochs"] = equivocating
        body.update(extras)
        return JSONResponse(body)

    # ------------------------------------------------------------------ orders and ledger

    @app.get("/orders/{order_id}", response_model=OrderOut, responses=LOOKUP, dependencies=[Depends(known_params())])
    async def get_order(order_id: OrderIdPath) -> JSONResponse:
        """An order's terms, state and redeemed receipts."""
        key = order_id.lower()
        with queries.snapshot(reader):
            row = queries.order(reader, key)
            receipt_rows = queries.receipts(reader, key)
        if row is None:
            raise ApiError(404, "not_found", f"no order {key} indexed (yet)")
        return JSONResponse(_order_json(row, receipt_rows))

    @app.get(
        "/ledger/accounts",
        response_model=AccountPage,
        responses=BAD_REQUEST,
        dependencies=[Depends(known_params("prefix", "limit", "offset"))],
    )
    async def list_accounts(
        prefix: str = Query("", max_length=MAX_ACCOUNT, description="Account name prefix, e.g. wallet: or escrow:."),
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size."), DIGITS] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip."), DIGITS] = 0,
    ) -> JSONResponse:
        """Ledger accounts and balances in name order."""
        with queries.snapshot(reader):
            total, rows = queries.accounts(reader, _account_name(prefix), limit, offset)
        items = [
            {"account": r["account"], "balance": _units(r["balance"]), "balance_flow": _flow(r["balance"])}
            for r in rows
        ]
        return JSONResponse({"total": total, "limit": limit, "offset": offset, "items": items})

    @app.get(
        "/ledger/accounts/{account}",
        response_model=AccountDetail,
        responses=LOOKUP,
        dependencies=[Depends(known_params("limit", "offset"))],
    )
    async def get_account(
        account: Annotated[str, PathParam(max_length=MAX_ACCOUNT, description="Account name, e.g. wallet:0x...")],
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Entries per page."), DIGITS] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Entries to skip."), DIGITS] = 0,
    ) -> JSONResponse:
        """An account's balance and its journal entries, newest first."""
        name = _account_name(account)
        with queries.snapshot(reader):
            value = queries.balance(reader, name)
            total, rows = queries.entries(reader, name, limit, offset)
        if value is None and total == 0:
            raise ApiError(404, "not_found", f"no ledger account {name!r}; {ACCOUNT_HELP}")
        value = value or 0
        entries = []
        for r in rows:
            amount = int(r["amount"])
            delta = (amount if r["credit"] == name else 0) - (amount if r["debit"] == name else 0)
            entries.append(
                {
                    "block_number": r["block_number"],
                    "log_index": r["log_index"],
                    "seq": r["seq"],
                    "kind": r["kind"],
                    "debit": r["debit"],
                    "credit": r["credit"],
                    "amount": str(amount),
                    "amount_flow": format_flow(amount),
                    "delta": str(delta),
                }
            )
        return JSONResponse(
            {
                "account": name,
                "balance": str(value),
                "balance_flow": format_flow(value),
                "total": total,
                "limit": limit,
                "offset": offset,
                "entries": entries,
            }
        )

    # ------------------------------------------------------------------ events and status

    @app.get(
        "/events",
        response_model=EventPage,
        responses=BAD_REQUEST,
        dependencies=[Depends(known_params("from_block", "from_log_index", "limit"))],
    )
    async def list_events(
        from_block: Annotated[int, Query(ge=0, le=SQL_INT_MAX, description="First block."), DIGITS] = 0,
        from_log_index: Annotated[
            int, Query(ge=0, le=SQL_INT_MAX, description="First log index within from_block."), DIGITS
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_EVENTS, description="Page size."), DIGITS] = 100,
    ) -> JSONResponse:
        """Raw logs in chain order, with decoded event names and arguments where known."""
        recorded = queries.deployment(reader) or {}
        contract_of = {address: name for name, address in recorded.get("contracts", {}).items()}
        rows = queries.events(reader, from_block, from_log_index, limit + 1)
        items = []
        for r in rows[:limit]:
            topics = json.loads(r["topics"])
            args = None
            if r["event"] is not None:
                log = RawLog(
                    r["block_number"],
                    r["block_hash"],
                    r["log_index"],
                    r["tx_hash"],
                    r["address"],
                    tuple(topics),
                    r["data"],
                )
                try:
                    decoded = decode(log, contract_of)
                except Exception:  # a log the current ABIs cannot decode: keep it raw
                    decoded = None
                if decoded is not None:
                    args = {k: _json_value(v) for k, v in decoded.args.items()}
            items.append(
                {
                    "block_number": r["block_number"],
                    "log_index": r["log_index"],
                    "block_hash": r["block_hash"],
                    "tx_hash": r["tx_hash"],
                    "address": r["address"],
                    "contract": r["contract"],
                    "event": r["event"],
                    "topics": topics,
                    "data": r["data"],
                    "args": args,
                }
            )
        following = None
        if len(rows) > limit:
            following = {"from_block": rows[limit]["block_number"], "from_log_index": rows[limit]["log_index"]}
        return JSONResponse({"items": items, "next": following})

    def _status() -> dict[str, Any]:
        t = now()
        with queries.snapshot(reader):
            recorded = queries.deployment(reader) or {}
            position = queries.cursor(reader)
            head = queries.head(reader)
            floor = queries.meta(reader, "rollback_floor")
        contracts = {
            name: to_checksum_address(address) if is_address(address) else address
            for name, address in (recorded.get("contracts") or {"Staking": staking_address}).items()
        }
        indexed = position[0] if position else None
        return {
            "version": __version__,
            "chain_id": chain_id,
            "contracts": contracts,
            "indexed_block": indexed,
            "indexed_hash": position[1] if position else None,
            "head": head,
            "lag": max(head - indexed, 0) if head is not None and indexed is not None else None,
            "rollback_floor": int(floor) if floor is not None else None,
            "now": int(t),
            "epoch_seconds": epoch_seconds,
            "current_epoch": int(t) // epoch_seconds,
            "heartbeat_max_skew": max_skew,
        }

    @app.get("/status", response_model=StatusOut, responses=BAD_REQUEST, dependencies=[Depends(known_params())])
    async def status() -> JSONResponse:
        """Deployment, indexing progress (indexed block, head, lag) and the heartbeat epoch."""
        return JSONResponse(_status())

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4."},
            400: {  # JSON, unlike the route's own answers
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
                "description": BAD_REQUEST[400]["description"],
            },
        },
        dependencies=[Depends(known_params())],
    )
    async def get_metrics() -> PlainTextResponse:
        """Prometheus metrics: indexing progress, row counts, heartbeats, HTTP requests and latency."""
        state = _status()
        with queries.snapshot(reader):
            counts = queries.counts(reader, now(), epoch_seconds)
        gauges: list[tuple[str, str, str, list[tuple[dict[str, str], float]]]] = []
        for name, key, help_text in (
            ("flownet_indexed_block", "indexed_block", "Last block applied by the indexer."),
            ("flownet_chain_head", "head", "Chain head last seen by the indexer."),
            ("flownet_index_lag_blocks", "lag", "Blocks between the chain head and the indexed block."),
        ):
            gauges.append((name, "gauge", help_text, [({}, state[key])] if state[key] is not None else []))
        gauges += [
            ("flownet_providers", "gauge", "Staking accounts with the provider role.", [({}, counts["providers"])]),
            ("flownet_verifiers", "gauge", "Staking accounts with the verifier role.", [({}, counts["verifiers"])]),
            (
                "flownet_providers_live",
                "gauge",
                "Providers with a heartbeat in the last 3 epochs.",
                [({}, counts["providers_live"])],
            ),
            (
                "flownet_orders",
                "gauge",
                "Orders by status.",
                [({"status": s}, n) for s, n in counts["orders"].items()],
            ),
            ("flownet_events", "gauge", "Raw logs stored.", [({}, counts["events"])]),
            ("flownet_heartbeats_stored", "gauge", "Signed heartbeats stored.", [({}, counts["heartbeats_stored"])]),
            *attestation_metrics.families(counts),
        ]
        return PlainTextResponse(metrics.render(gauges), media_type="text/plain; version=0.0.4; charset=utf-8")

    attestation_metrics = api_slashing.register(
        app,
        reader=reader,
        store=store,
        now=now,
        chain_id=chain_id,
        manager=slashing_address,
        epoch_seconds=epoch_seconds,
        statute_epochs=statute_epochs,
        known_params=known_params,
    )
    api_equivocations.register(
        app,
        reader=reader,
        now=now,
        epoch_seconds=epoch_seconds,
        statute_epochs=statute_epochs,
        known_params=known_params,
    )

    # ------------------------------------------------------------------ heartbeats

    def accept(data: Any) -> tuple[int, dict[str, Any]]:
        try:
            signed = SignedHeartbeat.from_json(data)
            t = now()
            check(signed, domain, t, store.is_staked_provider, epoch_seconds=epoch_seconds, max_skew=max_skew)
            stored = store.record_heartbeat(signed, t)
        except HeartbeatRejected as exc:
            metrics.heartbeat("rejected", exc.reason)
            return rejections.answer(exc)
        metrics.heartbeat("accepted" if stored else "duplicate")
        hb = signed.heartbeat
        return (201 if stored else 200), {
            "accepted": True,
            "duplicate": not stored,
            "provider": hb.provider,
            "epoch": hb.epoch,
            "live_until": hb.timestamp + queries.LIVE_EPOCHS * epoch_seconds,
        }

    @app.post(
        "/heartbeats",
        status_code=201,
        response_model=HeartbeatAccepted,
        responses={
            200: {"model": HeartbeatAccepted, "description": "The same statement was already stored."},
            400: {
                "model": ErrorOut,
                "description": "invalid, too_deep (nested over 32 levels), wrong_epoch, stale, or bad_request "
                "(a query parameter).",
            },
            401: {"model": ErrorOut, "description": "bad_signature."},
            403: {"model": ErrorOut, "description": "not_staked."},
            413: {"model": ErrorOut, "description": "too_large: the body is over 65,536 bytes."},
            429: {"model": ErrorOut, "description": "too_many different heartbeats in one epoch."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": HeartbeatIn.model_json_schema()}},
            }
        },
        dependencies=[Depends(known_params())],
    )
    async def post_heartbeat(request: Request) -> JSONResponse:
        """Submit a signed heartbeat (EIP-712 `Heartbeat` over the "FlowNet Heartbeat" domain)."""
        try:
            data = parse_body(await request.body())
        except InputRejected as exc:
            metrics.heartbeat("rejected", "invalid")
            return error(*body_refusal(exc), str(exc))
        except (ValueError, UnicodeDecodeError) as exc:
            metrics.heartbeat("rejected", "invalid")
            return error(400, "invalid", f"the body is not JSON: {exc}")
        code, body = await run_in_threadpool(accept, data)
        return JSONResponse(body, status_code=code)

    return app
