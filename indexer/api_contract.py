"""What the full node's HTTP API accepts and how it refuses, declared once for every route.

The parameter types below carry their patterns and bounds into ``/openapi.json``, so the document states
exactly what the server takes, and the same declaration refuses anything else:

- Integers are ASCII decimal digits within their bounds (a superscript or an Arabic-Indic digit is not a
  number here, nor are ``+5``, `` 5`` or ``5.0``); block numbers, log indexes and epochs stop at 2^63 - 1,
  SQLite's widest integer.
- Addresses are 0x and 40 hex digits in any case (answers are checksummed); order ids 0x and 64 hex digits;
  token amounts decimal strings of at most 78 digits (uint256).
- ``true`` and ``false`` are the only booleans.

`install(app)` makes every refusal JSON ``{"error", "message"}``: a value outside its type is 400
``bad_request`` naming it (there is no 422), an unknown path 404 ``not_found``, a method the path does not
take 405 ``method_not_allowed`` with ``Allow`` listing the methods it does, and an unexpected failure 500
``internal`` (a bug: the schemathesis run in ``make test`` fails on any). It also removes the 422 answer
FastAPI would otherwise declare for every route.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from eth_utils.address import to_checksum_address
from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

ADDRESS_PATTERN = "^0x[0-9a-fA-F]{40}$"
BYTES32_PATTERN = "^0x[0-9a-fA-F]{64}$"
SIGNATURE_PATTERN = "^0x[0-9a-fA-F]{130}$"
UNITS_PATTERN = "^[0-9]{1,78}$"  # up to uint256
ADDRESS_HINT = "expected 0x followed by 40 hex digits"
ORDER_ID_HINT = "expected 0x followed by 64 hex digits"
UNITS_HINT = "expected token units as a decimal integer string (e.g. 2000000000000000000 for 2 FLOW)"
SQL_INT_MAX = 2**63 - 1  # the widest integer SQLite stores: row numbers and epochs stop here
# Body bounds reach the document as floats (FastAPI's OpenAPI model): 2^64 is one exactly, 2^64 - 1 is not,
# so uint64 fields are declared with an exclusive bound.
UINT64_END = 2**64
MAX_SHOWN = 200  # characters of a refused value quoted in a message

_ADDRESS_RE = re.compile(ADDRESS_PATTERN[1:-1])
_DIGITS_RE = re.compile("[0-9]+")


class ErrorOut(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. bad_request, not_found, stale, not_staked.")
    message: str = Field(description="What is wrong, naming the offending value.")


#: The error answers of a route that only reads parameters, and of one that looks something up.
BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "bad_request: a parameter outside its declared type or unknown."}
}
LOOKUP: dict[int | str, dict[str, Any]] = {
    **BAD_REQUEST,
    404: {"model": ErrorOut, "description": "not_found: nothing indexed under that name."},
}


class ApiError(Exception):
    """An error answer: status, machine-readable code and a sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def checksummed(text: str, what: str) -> str:
    """`text` (0x + 40 hex digits, any case) checksummed, or ApiError 400 naming it as `what`."""
    if not isinstance(text, str) or not _ADDRESS_RE.fullmatch(text):
        raise ApiError(400, "bad_request", f"invalid {what} {shown(text)}: {ADDRESS_HINT}")
    return str(to_checksum_address(text.lower()))


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


# ----------------------------------------------------------------------------------------- parameter types


def _refuse(hint: str, label: str | None) -> PydanticCustomError:
    # `label` names the value in the message ("invalid provider address '0x12': ..."); without one the
    # message reads "invalid name='value': ...".
    return PydanticCustomError("flownet_format", hint, {"label": label} if label else None)


def _matching(pattern: str, hint: str, label: str | None = None) -> BeforeValidator:
    compiled = re.compile(pattern[1:-1])  # fullmatch: "$" in Python's re would let a trailing newline through

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise _refuse(hint, label)
        return value

    return BeforeValidator(check)


def _digits(value: Any) -> Any:
    if isinstance(value, str) and not _DIGITS_RE.fullmatch(value):
        raise _refuse("Input should be a decimal integer (ASCII digits 0-9)", None)
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value not in ("true", "false"):
        raise _refuse("Input should be true or false", None)
    return value


def _dispute_id(value: Any) -> Any:
    digits = value.lstrip("0") if isinstance(value, str) and _DIGITS_RE.fullmatch(value) else ""
    if isinstance(value, str) and not (digits and len(digits) <= 19 and int(digits) <= SQL_INT_MAX):
        raise _refuse("expected a positive integer", "dispute_id")
    return value


#: An integer query parameter: ASCII digits, within the bounds of its Query(ge=..., le=...).
DIGITS = BeforeValidator(_digits)
#: A boolean query parameter: true or false.
BOOLEAN = BeforeValidator(_boolean)

ProviderPath = Annotated[
    str,
    PathParam(pattern=ADDRESS_PATTERN, description="Provider address: 0x and 40 hex digits, any case."),
    _matching(ADDRESS_PATTERN, ADDRESS_HINT, "provider address"),
]
ProviderFilter = Annotated[
    str | None,
    Query(pattern=ADDRESS_PATTERN, description="Only this provider: 0x and 40 hex digits, any case."),
    _matching(ADDRESS_PATTERN, ADDRESS_HINT, "provider"),
]
OrderIdPath = Annotated[
    str,
    PathParam(pattern=BYTES32_PATTERN, description="The order id: 0x and 64 hex digits, any case."),
    _matching(BYTES32_PATTERN, ORDER_ID_HINT, "order_id"),
]
DisputeIdPath = Annotated[
    int,
    PathParam(ge=1, le=SQL_INT_MAX, description="The dispute id (1, 2, ...) in ASCII digits."),
    BeforeValidator(_dispute_id),
]
UnitsFilter = Annotated[
    str | None,
    Query(
        pattern=UNITS_PATTERN,
        description="Highest price per GiB in token units, as a decimal integer string (1 FLOW = "
        "1000000000000000000). Providers without an offer (price 0) never match.",
    ),
    _matching(UNITS_PATTERN, UNITS_HINT),
]


# ----------------------------------------------------------------------------------------- the handlers


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    where = [str(part) for part in first.get("loc", ())]
    name = where[-1] if where else "request"
    value = first.get("input")
    label = (first.get("ctx") or {}).get("label")
    message = first.get("msg", "invalid value")
    if label:
        return f"invalid {label} {shown(value)}: {message}"
    if where and where[0] in ("query", "path"):
        return f"invalid {name}={shown(value)}: {message}"
    return f"invalid {name}: {message}"


def _allowed(request: Request) -> str:
    """The methods of every route matching the request's path (several routes may share one path)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    """The JSON error handlers and the OpenAPI document without FastAPI's 422 (see the module docstring)."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, "bad_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error(404, "not_found", f"no route {request.method} {request.url.path} (see /openapi.json)")
        if exc.status_code == 405:
            allow = _allowed(request)
            message = f"{request.method} is not allowed on {request.url.path}; it takes {allow}"
            return error(405, "method_not_allowed", message, headers={"Allow": allow})
        return error(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the exception and re-raises it after this answer is sent.
        return error(500, "internal", f"the node failed to answer {request.method} {request.url.path}")

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()
            for operations in doc["paths"].values():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                doc.get("components", {}).get("schemas", {}).pop(name, None)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
