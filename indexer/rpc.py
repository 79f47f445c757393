"""A raw JSON-RPC client on httpx: single and batch calls, bounded retries, typed errors.

The indexer's hot path (eth_getLogs, block headers, eth_blockNumber) talks to the node through this
client, not through web3: it needs batches, exact control over retries, and the raw hex answers.

Retry policy (per call or per batch request): timeouts, connection errors, HTTP 429 and 5xx, and
answers that are not a well-formed JSON-RPC response (truncated or garbled JSON, a batch answer with
missing ids) are retried with exponential backoff and "equal jitter" (half the delay fixed, half random)
— at most `max_attempts` attempts and `max_elapsed` seconds in all, honouring a `Retry-After` header up
to the backoff cap. When that budget is spent, `RpcUnavailable` names the (redacted) URL, the method
and the last problem. A JSON-RPC error object is the node's answer, not a transport fault: it is raised
at once as `RpcError` carrying `code`, `message` and `data`; the caller decides what it means.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from flownet.core.safejson import clamp_recursion_limit
from flownet.errors import ChainError

log = logging.getLogger(__name__)

__all__ = ["RetryPolicy", "RpcClient", "RpcError", "RpcUnavailable", "redact"]

_SECRETISH = re.compile(r"^[A-Za-z0-9_\-]{16,}$")


def redact(url: str) -> str:
    """`url` without credentials, query string, or path segments that look like API keys."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    path = "/".join("***" if _SECRETISH.match(seg) else seg for seg in parts.path.split("/"))
    return urlunsplit((parts.scheme, host, path, "", ""))


class RpcError(ChainError):
    """The node answered a call with a JSON-RPC error object."""

    def __init__(self, method: str, code: int | None, message: str, data: Any = None, url: str = "") -> None:
        self.method = method
        self.code = code
        self.message = message
        self.data = data
        self.url = url
        extra = f" (data: {str(data)[:200]})" if data is not None else ""
        super().__init__(f"{method} on {url}: JSON-RPC error {code}: {message}{extra}")


class RpcUnavailable(ChainError):
    """No usable answer within the retry budget (attempts or total time)."""

    def __init__(self, method: str, url: str, attempts: int, elapsed: float, last: str) -> None:
        self.method = method
        self.url = url
        self.attempts = attempts
        self.last = last
        super().__init__(
            f"{method} on {url}: no usable answer after {attempts} attempt(s) in {elapsed:.1f} s; last problem: "
            f"{last} — check that the node is up and reachable, or use another RPC URL"
        )


class _Retry(Exception):
    """An attempt failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with equal jitter, bounded in attempts and in total time."""

    max_attempts: int = 6
    max_elapsed: float = 60.0
    base: float = 0.25
    cap: float = 8.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The pause after failed attempt number `attempt` (1, 2, ...)."""
        full = min(self.cap, self.base * 2.0 ** (attempt - 1))
        return float(full / 2 + rng() * full / 2)


class RpcClient:
    """JSON-RPC over HTTP(S). ``transport`` (an httpx transport) is injectable for tests."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        max_batch: int = 100,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.url = url
        self.display_url = redact(url)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_batch = max_batch
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._ids = itertools.count(1)
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"Content-Type": "application/json", "Accept": "application/json", **(headers or {})},
        )
        self.requests = 0  # HTTP requests sent
        self.retries = 0  # of which retries

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One call; its `result`, or RpcError for an error object."""
        call_id = next(self._ids)
        payload = {"jsonrpc": "2.0", "id": call_id, "method": method, "params": list(params)}

        def check(body: Any) -> dict[str, Any]:
            if not isinstance(body, dict):
                raise _Retry(f"answer is a {type(body).__name__}, not a JSON-RPC object")
            if "error" in body and body.get("id") in (call_id, None):
                return body
            if body.get("id") != call_id or "result" not in body:
                raise _Retry("answer is not a JSON-RPC response to this call (wrong id or no result)")
            return body

        answer = self._post(payload, method, check)
        return self._result(method, answer)

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], *, errors: str = "raise") -> list[Any]:
        """Several calls in JSON-RPC batches of at most `max_batch`; results in the order of `calls`.

        ``errors="raise"`` raises the first RpcError; ``errors="return"`` puts RpcError objects in the list.
        """
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', not {errors!r}")
        results: list[Any] = []
        for start in range(0, len(calls), self.max_batch):
            chunk = calls[start : start + self.max_batch]
            ids = [next(self._ids) for _ in chunk]
            payload = [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                for i, (m, p) in zip(ids, chunk, strict=True)
            ]
            methods = sorted({m for m, _ in chunk})
            label = f"batch of {len(chunk)} ({', '.join(methods)})"

            def check(body: Any, ids: list[int] = ids, label: str = label) -> dict[Any, dict[str, Any]]:
                if isinstance(body, dict) and "error" in body:
                    # The whole batch was refused (too large, batches unsupported, ...).
                    raise self._error(label, body["error"])
                if not isinstance(body, list):
                    raise _Retry(f"batch answer is a {type(body).__name__}, not a list")
                by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
                missing = [i for i in ids if i not in by_id or ("result" not in by_id[i] and "error" not in by_id[i])]
                if missing:
                    raise _Retry(f"batch answer lacks {len(missing)} of {len(ids)} responses")
                return by_id

            by_id = self._post(payload, label, check)
            for call_id, (method, _) in zip(ids, chunk, strict=True):
                try:
                    results.append(self._result(method, by_id[call_id]))
                except RpcError as exc:
                    if errors == "raise":
                        raise
                    results.append(exc)
        return results

    # ------------------------------------------------------------------ internals

    def _error(self, method: str, error: Any) -> RpcError:
        if not isinstance(error, dict):
            return RpcError(method, None, str(error), url=self.display_url)
        code = error.get("code")
        return RpcError(
            method,
            code if isinstance(code, int) else None,
            str(error.get("message", "")),
            error.get("data"),
            url=self.display_url,
        )

    def _result(self, method: str, answer: dict[str, Any]) -> Any:
        if "error" in answer and answer["error"] is not None:
            raise self._error(method, answer["error"])
        return answer["result"]

    def _post(self, payload: Any, label: str, check: Callable[[Any], Any]) -> Any:
        content = json.dumps(payload, separators=(",", ":")).encode()
        policy = self.retry
        start = self._clock()
        attempt = 0
        while True:
            attempt += 1
            remaining = policy.max_elapsed - (self._clock() - start)
            timeout = max(0.05, min(self.timeout, remaining))
            try:
                self.requests += 1
                response = self._http.post(self.url, content=content, timeout=timeout)
                return check(self._decode(response, label))
            except httpx.TimeoutException as exc:
                reason, retry_after = f"timed out after {timeout:.1f} s ({type(exc).__name__})", None
            except httpx.TransportError as exc:
                reason, retry_after = f"connection error: {type(exc).__name__}: {exc}", None
            except _Retry as exc:
                reason, retry_after = str(exc), exc.retry_after
            elapsed = self._clock() - start
            pause = policy.delay(attempt, self._rng)
            if retry_after is not None:
                pause = max(pause, min(retry_after, policy.cap))
            if attempt >= policy.max_attempts or elapsed + pause >= policy.max_elapsed:
                raise RpcUnavailable(label, self.display_url, attempt, elapsed, reason)
            log.debug("%s on %s: %s; retry %d in %.2f s", label, self.display_url, reason, attempt, pause)
            self.retries += 1
            self._sleep(pause)

    def _decode(self, response: httpx.Response, label: str) -> Any:
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retry(f"HTTP {status}", _retry_after(response))
        clamp_recursion_limit()  # a deeply nested answer then raises RecursionError instead of crashing
        try:
            body = json.loads(response.content)
        except RecursionError:
            raise ChainError(f"{label} on {self.display_url}: the answer nests too deeply to be JSON-RPC") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if status >= 400:
                text = response.content[:200].decode(errors="replace")
                raise ChainError(f"{label} on {self.display_url}: HTTP {status}: {text}") from None
            where = f"{exc.msg} at byte {exc.pos}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            raise _Retry(f"answer is not valid JSON ({where} of {len(response.content)})") from None
        if status >= 400 and not (isinstance(body, dict) and "error" in body):
            raise ChainError(f"{label} on {self.display_url}: HTTP {status}: {str(body)[:200]}")
        return body


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
