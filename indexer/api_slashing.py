"""The full node's slashing and trust routes: disputes, attestations, and a provider's trust and slashes.

`register(app, ...)` adds ``GET /disputes``, ``GET /disputes/{id}``, ``POST /attestations`` and
``GET /attestations`` to the app built by `indexer.api.create_app`, with the same conventions (JSON
errors naming the bad value, unknown query parameters refused, ``limit``/``offset``/``total``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from flownet.core import safejson
from flownet.core.safejson import InputRejected
from flownet.core.units import format_flow
from indexer import queries, rejections, slashing_queries
from indexer.api_contract import (
    ADDRESS_PATTERN,
    BAD_REQUEST,
    DIGITS,
    LOOKUP,
    SIGNATURE_PATTERN,
    SQL_INT_MAX,
    UINT64_END,
    ApiError,
    DisputeIdPath,
    ErrorOut,
    ProviderFilter,
    checksummed,
)
from indexer.apistore import ApiStore
from indexer.attestations import KIND_NAMES, MAX_CID_LENGTH, REASONS, AttestationRejected, SignedAttestation, check

#: The largest request body accepted (a heartbeat or an attestation is well under 1 KiB); the API's
#: middleware refuses a longer body before reading it whole.
MAX_BODY_BYTES = 64 * 1024


def parse_body(body: bytes) -> Any:
    """A request body as JSON: at most MAX_BODY_BYTES and safejson.MAX_DEPTH levels (InputRejected)."""
    return safejson.loads(body, what="the request body", max_bytes=MAX_BODY_BYTES)


def body_refusal(exc: InputRejected) -> tuple[int, str]:
    """The status and error code for a refused body: 413 too_large or 400 too_deep."""
    return (413, "too_large") if exc.reason == "size" else (400, "too_deep")


DEFAULT_STATUTE_EPOCHS = 2_880  # DeployConfig's default: one day of 30 s epochs
STATUSES = ("open", "rebutted", "executed", "superseded")
Gauge = tuple[str, str, str, list[tuple[dict[str, str], float]]]


class ScoreChangeOut(BaseModel):
    old: int
    new: int
    scorer: str
    reason_cid: str
    block: int


class TrustOut(BaseModel):
    score: int = Field(description="Network-domain trust score 0..1000; 500 (neutral) when never scored.")


class TrustDetail(TrustOut):
    history: list[ScoreChangeOut] = Field(description="Network score changes, newest first (at most 50).")


class StrikeOut(BaseModel):
    verifier: str = Field(description="The struck accuser.")
    order_id: str = Field(description="Its order whose service proof struck it.")
    bytes_served: str = Field(description="Bytes it signed as served in the disputed epoch.")
    penalty: str = Field(description="Its bond, burned.")


class DisputeOut(BaseModel):
    id: int
    provider: str
    epoch: int
    kind: int = Field(description="0 unreachable, 1 latency, 2 throughput, 3 metering.")
    kind_name: str
    evidence_cid: str
    verifiers: list[str]
    opener: str
    challenge_ends: int = Field(description="Unix time: rebuttable before, executable from.")
    status: Literal["open", "rebutted", "executed", "superseded"]
    slashed: str = Field(description="Executed: token units taken from the provider.")
    slashed_flow: str
    reward: str
    burned: str = Field(
        description="Executed: the slash (all of it is burned); otherwise: struck accusers' bonds burned."
    )
    due: str = Field(description="The provider's stake held while the dispute is open, and each accuser's bond.")
    remaining: int = Field(
        description="Accusers not struck; the dispute is rebutted when fewer than the quorum remain."
    )
    struck: list[StrikeOut] = Field(description="Accusers struck by their own service proofs, in order.")
    rewarded: list[str] | None = Field(description="Superseded: the accusers that shared the equivocation reward.")
    penalties: list[str] | None = Field(description="The bond burned for each strike, in strike order.")
    rebut_order_id: str | None = Field(description="The order of the latest strike's service proof.")
    bytes_served: str | None = Field(description="The bytes the latest struck accuser signed for.")
    executor: str | None
    opened_block: int
    closed_block: int | None


class DisputePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[DisputeOut]


class SlashOut(BaseModel):
    block_number: int
    log_index: int
    epoch: int
    route: Literal["equivocation", "dispute"]
    dispute_id: int | None
    reporter: str = Field(description="Equivocation: the reporter; dispute: the executor.")
    amount: str
    amount_flow: str
    reward: str
    burned: str
    evidence_cid: str


_ADDRESS_CASE = "lower or upper case, or mixed as its EIP-55 checksum"
# A kind's name in any case, e.g. ^([lL][aA][tT]...)$ for latency (JSON Schema patterns have no flags).
_KIND_NAME_PATTERN = "^(" + "|".join("".join(f"[{c}{c.upper()}]" for c in name) for name in KIND_NAMES.values()) + ")$"


class AttestationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(pattern=ADDRESS_PATTERN, description=f"The accused provider: 0x + 40 hex, {_ADDRESS_CASE}.")
    epoch: int = Field(
        ge=0,
        lt=UINT64_END,
        description="Epoch of the failure: not in the future, within the statute of limitations.",
    )
    kind: Annotated[int, Field(ge=0, le=3)] | Annotated[str, Field(pattern=_KIND_NAME_PATTERN)] = Field(
        description="0..3, or its name in any case: unreachable, latency, throughput, metering."
    )
    evidence_cid: str = Field(
        min_length=1, max_length=MAX_CID_LENGTH, description=f"CID of the evidence, 1..{MAX_CID_LENGTH} UTF-8 bytes."
    )
    verifier: str = Field(
        pattern=ADDRESS_PATTERN, description=f"The signing verifier (staked, role verifier): {_ADDRESS_CASE}."
    )
    signature: str = Field(
        pattern=SIGNATURE_PATTERN, description="0x + 130 hex: EIP-712 Attestation signature (v 27/28, low s)."
    )


class AttestationOut(BaseModel):
    provider: str
    epoch: int
    kind: int
    kind_name: str
    evidence_cid: str
    verifier: str
    signature: str
    received_at: float


class AttestationAccepted(BaseModel):
    accepted: bool
    duplicate: bool = Field(description="This verifier's attestation of the statement was already stored.")
    attestation: AttestationOut


class AttestationPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AttestationOut]


def dispute_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "provider": row["provider"],
        "epoch": row["epoch"],
        "kind": row["kind"],
        "kind_name": KIND_NAMES.get(row["kind"], str(row["kind"])),
        "evidence_cid": row["evidence_cid"],
        "verifiers": json.loads(row["verifiers"]),
        "opener": row["opener"],
        "challenge_ends": row["challenge_ends"],
        "status": row["status"],
        "slashed": str(int(row["slashed"])),
        "slashed_flow": format_flow(int(row["slashed"])),
        "reward": str(int(row["reward"])),
        "burned": str(int(row["burned"])),
        "due": str(int(row["due"])),
        "remaining": row["remaining"],
        "struck": json.loads(row["struck"]),
        "rewarded": json.loads(row["rewarded"]) if row["rewarded"] else None,
        "penalties": json.loads(row["penalties"]) if row["penalties"] else None,
        "rebut_order_id": row["rebut_order_id"],
        "bytes_served": str(int(row["bytes_served"])) if row["bytes_served"] is not None else None,
        "executor": row["executor"],
        "opened_block": row["opened_block"],
        "closed_block": row["closed_block"],
    }


def slash_json(row: dict[str, Any]) -> dict[str, Any]:
    amount = int(row["amount"])
    return {
        "block_number": row["block_number"],
        "log_index": row["log_index"],
        "epoch": row["epoch"],
        "route": row["route"],
        "dispute_id": row["dispute_id"],
        "reporter": row["reporter"],
        "amount": str(amount),
        "amount_flow": format_flow(amount),
        "reward": str(int(row["reward"])),
        "burned": str(int(row["burned"])),
        "evidence_cid": row["evidence_cid"],
    }


def attestation_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "provider": row["provider"],
        "epoch": row["epoch"],
        "kind": row["kind"],
        "kind_name": KIND_NAMES.get(row["kind"], str(row["kind"])),
        "evidence_cid": row["evidence_cid"],
        "verifier": row["verifier"],
        "signature": row["signature"],
        "received_at": row["received_at"],
    }


def provider_extras(conn: sqlite3.Connection, address: str, score: int) -> dict[str, Any]:
    """What GET /providers/{address} adds: trust with its history, disputes and slashes (call in a snapshot)."""
    history = [
        {
            "old": h["old_score"],
            "new": h["new_score"],
            "scorer": h["scorer"],
            "reason_cid": h["reason_cid"],
            "block": h["block_number"],
        }
        for h in slashing_queries.score_history(conn, address)
    ]
    _, disputes = slashing_queries.disputes(conn, address, None, 50, 0)
    return {
        "trust": {"score": score, "history": history},
        "disputes": [dispute_json(d) for d in disputes],
        "slashes": [slash_json(s) for s in slashing_queries.slashes(conn, address)],
    }


class AttestationMetrics:
    """Counters of POST /attestations outcomes, as gauge-family tuples for indexer.api.Metrics.render."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter({"accepted": 0, "duplicate": 0})
        self.rejected: Counter[str] = Counter(dict.fromkeys(REASONS, 0))

    def count(self, outcome: str, reason: str | None = None) -> None:
        with self.lock:
            if reason is not None:
                self.rejected[reason] += 1
            else:
                self.outcomes[outcome] += 1

    def families(self, counts: dict[str, Any]) -> list[Gauge]:
        with self.lock:
            return [
                (
                    "flownet_attestations_accepted_total",
                    "counter",
                    "Attestations accepted and stored since the server started.",
                    [({}, self.outcomes["accepted"])],
                ),
                (
                    "flownet_attestations_duplicate_total",
                    "counter",
                    "Attestations accepted that were already stored.",
                    [({}, self.outcomes["duplicate"])],
                ),
                (
                    "flownet_attestations_rejected_total",
                    "counter",
                    "Attestations refused, by reason.",
                    [({"reason": r}, n) for r, n in sorted(self.rejected.items())],
                ),
                ("flownet_attestations_stored", "gauge", "Attestations stored.", [({}, counts["attestations_stored"])]),
                (
                    "flownet_disputes",
                    "gauge",
                    "Disputes by status.",
                    [({"status": s}, n) for s, n in counts["disputes"].items()],
                ),
                (
                    "flownet_slashes",
                    "gauge",
                    "Provider slashes by route.",
                    [({"route": r}, n) for r, n in counts["slashes"].items()],
                ),
            ]


def register(
    app: FastAPI,
    *,
    reader: sqlite3.Connection,
    store: ApiStore,
    now: Callable[[], float],
    chain_id: int,
    manager: str | None,
    epoch_seconds: int,
    statute_epochs: int,
    known_params: Callable[..., Callable[[Request], None]],
) -> AttestationMetrics:
    """Add the slashing routes to `app`; returns the attestation counters for /metrics."""
    metrics = AttestationMetrics()

    @app.get(
        "/disputes",
        response_model=DisputePage,
        responses=BAD_REQUEST,
        dependencies=[Depends(known_params("provider", "status", "limit", "offset"))],
    )
    async def list_disputes(
        provider: ProviderFilter = None,
        status: Literal["open", "rebutted", "executed", "superseded"] | None = Query(
            None, description="Only this status."
        ),
        limit: Annotated[int, Query(ge=1, le=500, description="Page size."), DIGITS] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip."), DIGITS] = 0,
    ) -> JSONResponse:
        """Disputes, newest first."""
        who = checksummed(provider, "provider") if provider is not None else None
        with queries.snapshot(reader):
            total, rows = slashing_queries.disputes(reader, who, status, limit, offset)
        return JSONResponse(
            {"total": total, "limit": limit, "offset": offset, "items": [dispute_json(r) for r in rows]}
        )

    @app.get(
        "/disputes/{dispute_id}", response_model=DisputeOut, responses=LOOKUP, dependencies=[Depends(known_params())]
    )
    async def get_dispute(dispute_id: DisputeIdPath) -> JSONResponse:
        """One dispute with its verifiers and outcome."""
        row = slashing_queries.dispute(reader, dispute_id)
        if row is None:
            raise ApiError(404, "not_found", f"no dispute {dispute_id} indexed (yet)")
        return JSONResponse(dispute_json(row))

    def accept(data: Any) -> tuple[int, dict[str, Any]]:
        try:
            if manager is None:
                raise AttestationRejected("invalid", "this node's deployment has no SlashingManager")
            att = SignedAttestation.from_submission(data)
            t = now()
            check(att, chain_id, manager, int(t) // epoch_seconds, statute_epochs, store.is_staked_verifier)
            stored, row = store.record_attestation(
                att.provider, att.epoch, att.kind, att.evidence_cid, att.verifier, att.signature, t
            )
        except AttestationRejected as exc:
            metrics.count("rejected", exc.reason)
            return rejections.answer(exc)
        metrics.count("accepted" if stored else "duplicate")
        return (201 if stored else 200), {
            "accepted": True,
            "duplicate": not stored,
            "attestation": attestation_json(row),
        }

    @app.post(
        "/attestations",
        status_code=201,
        response_model=AttestationAccepted,
        responses={
            200: {"model": AttestationAccepted, "description": "Already stored (nothing changed)."},
            400: {
                "model": ErrorOut,
                "description": "invalid, too_deep (over 32 levels), wrong_epoch, or bad_request (a query parameter).",
            },
            401: {"model": ErrorOut, "description": "bad_signature."},
            403: {"model": ErrorOut, "description": "not_staked."},
            413: {"model": ErrorOut, "description": "too_large: the body is over 65,536 bytes."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": AttestationIn.model_json_schema()}},
            }
        },
        dependencies=[Depends(known_params())],
    )
    async def post_attestation(request: Request) -> JSONResponse:
        """Submit a verifier's signed attestation (EIP-712 `Attestation` over the SlashingManager's domain)."""
        try:
            data = parse_body(await request.body())
        except InputRejected as exc:
            metrics.count("rejected", "invalid")
            status, code = body_refusal(exc)
            return JSONResponse({"error": code, "message": str(exc)}, status_code=status)
        except (ValueError, UnicodeDecodeError) as exc:
            metrics.count("rejected", "invalid")
            return JSONResponse({"error": "invalid", "message": f"the body is not JSON: {exc}"}, status_code=400)
        code, body = await run_in_threadpool(accept, data)
        return JSONResponse(body, status_code=code)

    @app.get(
        "/attestations",
        response_model=AttestationPage,
        responses=BAD_REQUEST,
        dependencies=[Depends(known_params("provider", "epoch", "kind", "evidence_cid", "limit", "offset"))],
    )
    async def list_attestations(
        provider: ProviderFilter = None,
        epoch: Annotated[
            int | None, Query(ge=0, le=SQL_INT_MAX, description="The epoch of the failure."), DIGITS
        ] = None,
        kind: Annotated[
            int | None, Query(ge=0, le=3, description="0 unreachable, 1 latency, 2 throughput, 3 metering."), DIGITS
        ] = None,
        evidence_cid: str | None = Query(None, max_length=MAX_CID_LENGTH, description="The evidence CID."),
        limit: Annotated[int, Query(ge=1, le=500, description="Page size."), DIGITS] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip."), DIGITS] = 0,
    ) -> JSONResponse:
        """Stored attestations with their signatures, to gather a quorum for openDispute."""
        filters: dict[str, Any] = {}
        if provider is not None:
            filters["provider"] = checksummed(provider, "provider")
        for key, value in (("epoch", epoch), ("kind", kind), ("evidence_cid", evidence_cid)):
            if value is not None:
                filters[key] = value
        with queries.snapshot(reader):
            total, rows = slashing_queries.attestations(reader, filters, limit, offset)
        return JSONResponse(
            {"total": total, "limit": limit, "offset": offset, "items": [attestation_json(r) for r in rows]}
        )

    return metrics
