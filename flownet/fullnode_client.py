"""The one HTTP client of a full node's API (``flownet fullnode serve``), for every agent that talks to one.

The verifier (providers, equivocations, attestations), the heartbeat senders (``flownet provider
heartbeat`` and ``flownet provider serve --fullnode``: the deployment from ``/status``, the provider's
metadata, ``POST /heartbeats``) and the demos use `FullNodeClient`. Every request has a bounded
timeout (`timeout` seconds, connecting at most `CONNECT_TIMEOUT`); a node that cannot be reached,
answers an error status or answers something other than JSON raises `FullNodeError` with one line
naming the URL, the request and the answer. `transport` replaces the network in tests
(``httpx.MockTransport``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from flownet.errors import FlowNetError

if TYPE_CHECKING:
    from flownet.core.attestation import Attestation
    from flownet.core.heartbeat import SignedHeartbeat

__all__ = ["CONNECT_TIMEOUT", "PAGE", "Answer", "FullNodeClient", "FullNodeError"]

log = logging.getLogger("flownet.fullnode_client")

T = TypeVar("T")

CONNECT_TIMEOUT = 5.0
#: Page size for list endpoints (the API's maximum is 500).
PAGE = 200
MAX_PAGES = 100


class FullNodeError(FlowNetError):
    """The full node could not be reached or refused a request."""

    exit_code = 12


@dataclass(frozen=True)
class Answer:
    """A full node's answer to a submission: its HTTP status and JSON body (empty if it sent none)."""

    status: int
    body: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return self.status in (200, 201)

    def describe(self) -> str:
        """``accepted``, ``duplicate`` or ``rejected 401 bad_signature: <message>``."""
        if self.accepted:
            return "duplicate" if self.body.get("duplicate") else "accepted"
        return f"rejected {self.status} {self.body.get('error', '?')}: {self.body.get('message', '')}"


class FullNodeClient:
    """A full node's API at `base_url` (``http://127.0.0.1:8700``)."""

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None, timeout: float = 10.0) -> None:
        self.base = base_url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.base,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> FullNodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw response (any status); FullNodeError only if the node cannot be reached."""
        try:
            return self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise FullNodeError(f"full node {self.base} unreachable ({method} {path}): {exc}") from None

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a request that must succeed (FullNodeError for a status >= 400 or non-JSON)."""
        response = self.send(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise FullNodeError(f"full node {self.base}: {method} {path} answered {response.status_code}: {message}")
        try:
            return response.json()
        except ValueError:
            raise FullNodeError(f"full node {self.base}: {method} {path} did not answer JSON") from None

    def submit(self, path: str, body: dict[str, Any]) -> Answer:
        """POST `body`; a refusal (4xx, 5xx) is an `Answer` too, not an exception."""
        response = self.send("POST", path, json=body)
        try:
            parsed = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        except ValueError:
            parsed = {}
        if not isinstance(parsed, dict):
            parsed = {}
        if response.status_code >= 400 and "message" not in parsed:
            parsed["message"] = response.text
        return Answer(response.status_code, parsed)

    def pages(self, path: str, params: dict[str, Any], parse: Callable[[Any], T], what: str) -> list[T]:
        """Every item of a paginated list route (`items`, `total`), parsed; malformed items are skipped."""
        found: list[T] = []
        offset = 0
        for _ in range(MAX_PAGES):  # bounded whatever the node answers
            body = self.call("GET", path, params={**params, "limit": PAGE, "offset": offset})
            items = body.get("items", [])
            for entry in items:
                try:
                    found.append(parse(entry))
                except ValueError as exc:
                    log.info("skipping a malformed %s from the full node %s: %s", what, self.base, exc)
            offset += len(items)
            if not items or offset >= int(body.get("total", 0)):
                break
        return found

    # ------------------------------------------------------------------ routes

    def status(self) -> dict[str, Any]:
        """``GET /status``: the deployment served (chain id, contracts), epoch length, indexing progress."""
        return dict(self.call("GET", "/status"))

    def providers(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.call("GET", "/providers", params={"limit": 100, "offset": offset})
            found += page.get("items", [])
            offset += 100
            if offset >= int(page.get("total", 0)) or not page.get("items"):
                return found

    def provider(self, address: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/providers/{address}"))

    def provider_endpoint(self, address: str) -> str | None:
        """The endpoint of `address`'s metadata as the node verified it (None if it has no current copy)."""
        response = self.send("GET", f"/providers/{address}")
        if response.status_code != 200:
            return None
        try:
            meta = response.json().get("metadata") or {}
        except (ValueError, AttributeError):  # not JSON, or not an object
            return None
        return str(meta["endpoint"]) if meta.get("current") and meta.get("endpoint") else None

    def post_heartbeat(self, signed: SignedHeartbeat) -> Answer:
        return self.submit("/heartbeats", signed.to_json())

    def post_attestation(self, attestation: Attestation) -> None:
        self.call("POST", "/attestations", json=attestation.to_json())

    def attestations(self, provider: str, epoch: int, kind: int) -> list[Attestation]:
        """Every stored attestation of (provider, epoch, kind), page by page (the API answers `items`)."""
        from flownet.core.attestation import Attestation

        params = {"provider": provider, "epoch": epoch, "kind": kind}
        return self.pages("/attestations", params, Attestation.from_json, "attestation")
