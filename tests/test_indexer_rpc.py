"""indexer.rpc: single and batch calls, the retry policy and typed errors, on httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from flownet.errors import ChainError
from indexer.rpc import RetryPolicy, RpcClient, RpcError, RpcUnavailable, redact

URL = "https://user:pw@rpc.example.test/v3/0123456789abcdef0123456789abcdef?key=secret"


class Clock:
    """A fake clock advanced by the client's sleeps (so retry tests take no time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def client(handler: Callable[[httpx.Request], httpx.Response], clock: Clock, **kwargs: Any) -> RpcClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=5, max_elapsed=100, base=0.5, cap=4))
    return RpcClient(URL, transport=httpx.MockTransport(handler), sleep=clock.sleep, clock=clock, **kwargs)


def ok(request: httpx.Request, result: Any) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": result})


def flaky(failures: list[Callable[[httpx.Request], httpx.Response]], result: Any = "0x10") -> Any:
    """A handler failing with each of `failures` in turn, then answering `result`."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) <= len(failures):
            return failures[len(seen) - 1](request)
        return ok(request, result)

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def raise_(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def test_call_sends_json_rpc_and_returns_the_result() -> None:
    clock = Clock()
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return ok(request, "0x2a")

    rpc = client(handler, clock)
    assert rpc.call("eth_blockNumber") == "0x2a"
    assert rpc.call("eth_getBlockByNumber", ["0x1", False]) == "0x2a"
    assert sent[0]["method"] == "eth_blockNumber" and sent[0]["params"] == [] and sent[0]["jsonrpc"] == "2.0"
    assert sent[1]["params"] == ["0x1", False] and sent[1]["id"] != sent[0]["id"]
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        lambda r: httpx.Response(500, text="boom"),
        lambda r: httpx.Response(503, text="unavailable"),
        lambda r: httpx.Response(429, text="slow down"),
        raise_(httpx.ReadTimeout("read timed out")),
        raise_(httpx.ConnectTimeout("connect timed out")),
        raise_(httpx.ConnectError("connection refused")),
        raise_(httpx.RemoteProtocolError("server disconnected")),
        lambda r: httpx.Response(200, text='{"jsonrpc": "2.0", "id": 1, "resu'),  # truncated JSON
        lambda r: httpx.Response(200, content=b'{"jsonrpc": "2.0", "id": 1, "result": "\xc3'),  # cut mid-character
        lambda r: httpx.Response(200, json={"jsonrpc": "2.0", "id": 999_999, "result": "0x1"}),  # another id
        lambda r: httpx.Response(200, json=[]),  # not an object
    ],
    ids=[
        "500",
        "503",
        "429",
        "read-timeout",
        "connect-timeout",
        "refused",
        "disconnect",
        "truncated",
        "not-utf8",
        "id",
        "shape",
    ],
)
def test_transient_failures_are_retried_with_backoff(failure: Callable[[httpx.Request], httpx.Response]) -> None:
    clock = Clock()
    handler = flaky([failure, failure, failure])
    rpc = client(handler, clock)
    assert rpc.call("eth_blockNumber") == "0x10"
    assert len(handler.seen) == 4 and rpc.retries == 3
    # exponential with equal jitter: attempt k waits in [d/2, d] for d = 0.5 * 2**(k-1)
    for k, pause in enumerate(clock.sleeps, start=1):
        full = 0.5 * 2 ** (k - 1)
        assert full / 2 <= pause <= full
    assert clock.sleeps[2] > clock.sleeps[0]


def test_jitter_spreads_the_delays() -> None:
    policy = RetryPolicy(base=1, cap=100)
    values = iter([0.0, 1.0, 0.5])
    assert [policy.delay(3, lambda: next(values)) for _ in range(3)] == [2.0, 4.0, 3.0]
    assert RetryPolicy(base=1, cap=5).delay(10, lambda: 1.0) == 5  # capped


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    clock = Clock()
    rpc = client(flaky([lambda r: httpx.Response(429, headers={"Retry-After": "3"})]), clock)
    assert rpc.call("eth_chainId") == "0x10"
    assert clock.sleeps == [3.0]
    clock = Clock()
    rpc = client(flaky([lambda r: httpx.Response(503, headers={"Retry-After": "3600"})]), clock)
    rpc.call("eth_chainId")
    assert clock.sleeps == [4.0]  # the policy's cap, not an hour


def test_attempts_are_bounded_and_the_error_names_url_and_method() -> None:
    clock = Clock()
    handler = flaky([lambda r: httpx.Response(502, text="bad gateway")] * 100)
    rpc = client(handler, clock)
    with pytest.raises(RpcUnavailable) as caught:
        rpc.call("eth_getLogs", [{}])
    assert len(handler.seen) == 5
    message = str(caught.value)
    assert "eth_getLogs" in message and "HTTP 502" in message and "5 attempt" in message
    assert "https://rpc.example.test/v3/***" in message
    assert "secret" not in message and "pw" not in message and "0123456789abcdef0123" not in message
    assert isinstance(caught.value, ChainError)


def test_total_time_is_bounded() -> None:
    clock = Clock()

    def slow_failure(request: httpx.Request) -> httpx.Response:
        clock.now += 4.0  # each attempt takes 4 s before it fails
        raise httpx.ReadTimeout("timed out")

    rpc = client(flaky([slow_failure] * 100), clock, retry=RetryPolicy(max_attempts=100, max_elapsed=10, base=0.5))
    with pytest.raises(RpcUnavailable) as caught:
        rpc.call("eth_blockNumber")
    assert clock.now <= 10 + 4  # stops before a pause would cross the budget (one attempt may overrun)
    assert caught.value.attempts < 5
    assert "timed out" in str(caught.value)


def test_json_rpc_errors_are_typed_and_not_retried() -> None:
    clock = Clock()
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        body = json.loads(request.content)
        error = {"code": 3, "message": "execution reverted", "data": "0x08c379a0"}
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "error": error})

    rpc = client(handler, clock)
    with pytest.raises(RpcError) as caught:
        rpc.call("eth_call", [{}, "latest"])
    assert (caught.value.code, caught.value.message, caught.value.data) == (3, "execution reverted", "0x08c379a0")
    assert caught.value.method == "eth_call" and "rpc.example.test" in caught.value.url
    assert len(calls) == 1 and clock.sleeps == []


def test_http_error_status_with_a_json_rpc_error_body_is_an_rpc_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(
            400, json={"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32602, "message": "bad"}}
        )

    with pytest.raises(RpcError) as caught:
        client(handler, Clock()).call("eth_getLogs", [{}])
    assert caught.value.code == -32602


def test_other_http_errors_fail_at_once() -> None:
    clock = Clock()
    handler = flaky([lambda r: httpx.Response(401, text="unauthorized")] * 3)
    with pytest.raises(ChainError, match="HTTP 401"):
        client(handler, clock).call("eth_blockNumber")
    assert len(handler.seen) == 1


def batch_handler(shuffle: bool = False, drop: int = 0, error_at: int | None = None) -> Any:
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        answers: list[dict[str, Any]] = []
        for i, call in enumerate(body):
            if error_at == i:
                answers.append(
                    {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32000, "message": "header not found"}}
                )
            else:
                answers.append({"jsonrpc": "2.0", "id": call["id"], "result": call["params"][0]})
        if shuffle:
            answers.reverse()
        if drop and len(seen) == 1:
            answers = answers[drop:]
        return httpx.Response(200, json=answers)

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def test_batch_returns_results_in_call_order_in_chunks() -> None:
    handler = batch_handler(shuffle=True)
    rpc = client(handler, Clock(), max_batch=3)
    calls = [("eth_getBlockByNumber", [hex(n), False]) for n in range(7)]
    assert rpc.batch(calls) == [hex(n) for n in range(7)]
    assert [len(b) for b in handler.seen] == [3, 3, 1]


def test_batch_answer_with_missing_responses_is_retried() -> None:
    clock = Clock()
    handler = batch_handler(drop=2)
    rpc = client(handler, clock)
    assert rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(5)]) == [hex(n) for n in range(5)]
    assert len(handler.seen) == 2 and len(clock.sleeps) == 1


def test_batch_error_elements_raise_or_are_returned() -> None:
    calls = [("eth_getBlockByNumber", [hex(n), False]) for n in range(4)]
    with pytest.raises(RpcError, match="header not found"):
        client(batch_handler(error_at=2), Clock()).batch(calls)
    results = client(batch_handler(error_at=2), Clock()).batch(calls, errors="return")
    assert results[:2] == ["0x0", "0x1"] and results[3] == "0x3"
    assert isinstance(results[2], RpcError) and results[2].code == -32000


def test_whole_batch_refused_is_an_rpc_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch too large"}}
        )

    with pytest.raises(RpcError, match="batch too large"):
        client(handler, Clock()).batch([("eth_chainId", [])] * 2)


def test_redact() -> None:
    assert redact(URL) == "https://rpc.example.test/v3/***"
    assert redact("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert redact("wss://x.test/ws/v2/abcdefghijklmnopqrstuvwxyz123456") == "wss://x.test/ws/v2/***"
