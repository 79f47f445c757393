"""The full node's equivocation evidence: ``GET /providers/{address}/equivocations``.

`ApiStore.record_heartbeat` keeps, per (provider, epoch), the first two valid signed heartbeats that
name different endpoints in the ``equivocations`` table (migration 0006), also when the second one is
refused as one too many for its epoch, so later heartbeats never bury the evidence. This route serves
those pairs for the epochs the SlashingManager can still slash (within its ``statuteEpochs`` of the
current epoch), each with both signed heartbeats in full — exactly the arguments of
``slashEquivocation(a, sigA, b, sigB, evidenceCid)`` — and whether the index already holds a slash of
that (provider, epoch). `register(app, ...)` adds it to the app built by `indexer.api.create_app`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from indexer import queries
from indexer.api_contract import DIGITS, LOOKUP, ApiError, ProviderPath, checksummed


class SignedHeartbeatOut(BaseModel):
    """A signed heartbeat in the body format of ``POST /heartbeats`` (`SignedHeartbeat.from_json` reads it)."""

    provider: str
    epoch: int
    endpointHash: str = Field(description="0x + 64 hex: keccak256 of the endpoint named.")
    load: int
    timestamp: int
    signature: str = Field(description="0x + 130 hex: the provider's EIP-712 signature (r, s, v).")


class EquivocationOut(BaseModel):
    provider: str
    epoch: int
    a: SignedHeartbeatOut = Field(description="The earlier heartbeat.")
    b: SignedHeartbeatOut = Field(description="A heartbeat of the same epoch naming a different endpoint.")
    slashed: bool = Field(
        description="The index holds a slash of (provider, epoch) by either route: the chain would refuse another."
    )
    received_at: float = Field(description="When this node received the second heartbeat.")


class EquivocationPage(BaseModel):
    total: int
    limit: int
    offset: int
    current_epoch: int
    statute_epochs: int = Field(description="The SlashingManager's statute of limitations, in epochs.")
    oldest_epoch: int = Field(description="The oldest epoch still slashable (older pairs are not listed).")
    items: list[EquivocationOut] = Field(description="Newest epoch first.")


def equivocations(
    conn: sqlite3.Connection, provider: str, oldest_epoch: int, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """(total, one page) of `provider`'s kept equivocations from `oldest_epoch` on, newest first, each with
    ``slashed`` 1 if a slash of its (provider, epoch) is indexed."""
    total = conn.execute(
        "SELECT COUNT(*) FROM equivocations WHERE provider = ? AND epoch >= ?", (provider, oldest_epoch)
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT e.*, EXISTS (SELECT 1 FROM slashes s WHERE s.provider = e.provider AND s.epoch = e.epoch) AS slashed "
        "FROM equivocations e WHERE e.provider = ? AND e.epoch >= ? ORDER BY e.epoch DESC LIMIT ? OFFSET ?",
        (provider, oldest_epoch, limit, offset),
    ).fetchall()
    return int(total), [dict(r) for r in rows]


def equivocation_json(row: dict[str, Any]) -> dict[str, Any]:
    def heartbeat(side: str) -> dict[str, Any]:
        return {
            "provider": row["provider"],
            "epoch": row["epoch"],
            "endpointHash": row[f"endpoint_{side}"],
            "load": row[f"load_{side}"],
            "timestamp": row[f"timestamp_{side}"],
            "signature": row[f"signature_{side}"],
        }

    return {
        "provider": row["provider"],
        "epoch": row["epoch"],
        "a": heartbeat("a"),
        "b": heartbeat("b"),
        "slashed": bool(row["slashed"]),
        "received_at": row["received_at"],
    }


def register(
    app: FastAPI,
    *,
    reader: sqlite3.Connection,
    now: Callable[[], float],
    epoch_seconds: int,
    statute_epochs: int,
    known_params: Callable[..., Callable[[Request], None]],
) -> None:
    """Add ``GET /providers/{address}/equivocations`` to `app`."""

    @app.get(
        "/providers/{address}/equivocations",
        response_model=EquivocationPage,
        responses=LOOKUP,
        dependencies=[Depends(known_params("limit", "offset"))],
    )
    async def list_equivocations(
        address: ProviderPath,
        limit: Annotated[int, Query(ge=1, le=500, description="Page size."), DIGITS] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip."), DIGITS] = 0,
    ) -> JSONResponse:
        """A provider's provable equivocations: per epoch still within the statute of limitations, two signed
        heartbeats naming different endpoints, ready for `slashEquivocation`."""
        checked = checksummed(address, "provider address")
        current = int(now()) // epoch_seconds
        oldest = max(current - statute_epochs, 0)
        with queries.snapshot(reader):
            row = queries.provider(reader, checked)
            total, rows = equivocations(reader, checked, oldest, limit, offset)
        if row is None or row["role"] != "provider":
            what = f"a {row['role']}, not a provider" if row else "not a provider known to this node"
            raise ApiError(404, "not_found", f"{checked} is {what}")
        return JSONResponse(
            {
                "total": total,
                "limit": limit,
                "offset": offset,
                "current_epoch": current,
                "statute_epochs": statute_epochs,
                "oldest_epoch": oldest,
                "items": [equivocation_json(r) for r in rows],
            }
        )
