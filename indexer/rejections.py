"""The HTTP answer to a refused signed statement (heartbeat, attestation): the API's mapping, not core's.

flownet.core raises a `Rejected` subclass with a machine-readable `reason`; the full node's routes
answer it with the status below and the JSON body ``{"error": reason, "message": sentence}``.
"""

from __future__ import annotations

from typing import Any

from flownet.core.eip712 import Rejected

__all__ = ["HTTP_STATUS", "answer", "http_status"]

#: A rejection's reason -> the HTTP status a full node answers with.
HTTP_STATUS = {
    "invalid": 400,
    "wrong_epoch": 400,
    "stale": 400,
    "bad_signature": 401,
    "not_staked": 403,
    "too_many": 429,
}


def http_status(exc: Rejected) -> int:
    """The status for `exc` (every reason a core rejection can carry is in HTTP_STATUS; a test keeps it so)."""
    return HTTP_STATUS[exc.reason]


def answer(exc: Rejected) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for a refused statement."""
    return http_status(exc), {"error": exc.reason, "message": str(exc)}
