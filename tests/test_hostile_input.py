"""Input from the network, the chain or the blob store can neither crash nor stall a node (issue 11.1).

py_ecc (imported through eth-keyfile) raises the recursion limit to 100,000, so before these guards a
request body of 70,000 `[` overflowed the C stack and killed the full node (and its indexer) with
SIGSEGV. The crash-prone checks run in a subprocess, so a regression fails the test instead of killing
pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ledger_helpers import CHAIN_ID, CONTRACTS

from flownet.core import safejson
from flownet.core.safejson import InputRejected, depth_of
from indexer.api import create_app
from indexer.asgiclient import InProcessClient

DEEP = b"[" * 70_000


def test_depth_of_respects_strings_and_escapes() -> None:
    assert depth_of(b'[1, {"a": [2]}]') == 3
    assert depth_of(b'["[[[\\"[[", [1]]') == 2  # brackets and an escaped quote inside a string
    assert depth_of(b'"\\\\" [[]]') == 2  # an escaped backslash ends before the closing quote
    assert depth_of(b'{"k": "}}}}"}') == 1
    assert depth_of(DEEP) == 70_000


def test_loads_refuses_size_and_depth_before_parsing() -> None:
    assert safejson.loads(b'{"a": [1, 2]}', what="doc", max_bytes=100) == {"a": [1, 2]}
    with pytest.raises(InputRejected, match="doc is 101 bytes, more than the 100 accepted") as size:
        safejson.loads(b" " * 101, what="doc", max_bytes=100)
    assert size.value.reason == "size"
    with pytest.raises(InputRejected, match="nests 33 levels deep, more than the 32 accepted") as deep:
        safejson.loads(b"[" * 33 + b"]" * 33, what="doc", max_bytes=1000)
    assert deep.value.reason == "depth"
    assert safejson.loads(b"[" * 32 + b"]" * 32, what="doc", max_bytes=1000) is not None
    with pytest.raises(ValueError):  # plain invalid JSON stays a ValueError
        safejson.loads(b"{", what="doc", max_bytes=10)


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import py_ecc  # noqa: F401  (raises the recursion limit to 100,000, as eth-keyfile's import does)
    assert sys.getrecursionlimit() >= 100_000
    from ledger_helpers import CHAIN_ID, CONTRACTS
    from indexer.api import create_app
    from indexer.asgiclient import InProcessClient
    from flownet.core.metadata import ProviderMetadata
    from flownet.errors import ConfigError
    from flownet.blobs.kubo import _json_object

    out = {}
    app = create_app(sys.argv[1], CHAIN_ID, CONTRACTS["Staking"])
    with InProcessClient(app) as c:
        for n in (70_000, 60_000):  # the issue's 70 KB body, and one under the size cap
            for path in ("/heartbeats", "/attestations"):
                r = c.post(path, content=b"[" * n, headers={"content-type": "application/json"})
                out[f"{path} {n}"] = [r.status_code, r.headers.get("content-type"), r.json()["error"]]
        out["status"] = c.get("/status").status_code
    try:
        ProviderMetadata.from_document(b"[" * 60_000)
    except ConfigError as exc:
        out["metadata"] = str(exc)
    out["kubo"] = _json_object("[" * 200_000)
    print(json.dumps(out))
    """
)


def test_deeply_nested_input_is_refused_not_fatal(tmp_path: Path) -> None:
    """Every parser of outside input survives 70,000 nested `[` with py_ecc's recursion limit in force."""
    tests = Path(__file__).parent
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "node.db")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tests.parent,
        env={"PYTHONPATH": f"{tests}:{tests.parent}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    out = json.loads(result.stdout.strip().splitlines()[-1])
    for path in ("/heartbeats", "/attestations"):
        assert out[f"{path} 70000"] == [413, "application/json", "too_large"], out
        assert out[f"{path} 60000"] == [400, "application/json", "too_deep"], out
    assert out["status"] == 200
    assert "nests 60000 levels deep" in out["metadata"]
    assert out["kubo"] is None


@pytest.fixture
def client(tmp_path: Path) -> Iterator[InProcessClient]:
    app = create_app(tmp_path / "node.db", CHAIN_ID, CONTRACTS["Staking"])
    with InProcessClient(app) as c:
        yield c
    app.state.reader.close()
    app.state.store.close()


@pytest.mark.parametrize("path", ["/heartbeats", "/attestations"])
def test_a_20_mb_body_is_refused_by_its_length(client: InProcessClient, path: str) -> None:
    response = client.post(path, content=b"[" + b"0," * 10_000_000 + b"0]")
    assert response.status_code == 413 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "too_large" and "20,000,003 bytes, more than the 65,536 accepted" in body["message"]
    assert client.get("/status").status_code == 200


def test_a_chunked_body_is_cut_off_while_it_streams() -> None:
    """Without a Content-Length the middleware counts the chunks and answers 413 once past the limit."""
    import asyncio

    from indexer.api import _BodyLimit

    read: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            read.append(len(message.get("body", b"")))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    chunks = [{"type": "http.request", "body": b"x" * 1000, "more_body": True} for _ in range(10_000)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/heartbeats", "headers": []}
    asyncio.run(_BodyLimit(app, limit=4096)(scope, receive, send))
    assert sent[0]["status"] == 413 and json.loads(sent[1]["body"])["error"] == "too_large"
    assert len(read) == 4 and len(chunks) == 10_000 - 5  # stopped after the chunk that crossed the limit


def test_evidence_too_deep_is_not_parsed(tmp_path: Path) -> None:
    """The verifier reads other verifiers' evidence from the blob store: a hostile document is refused
    (and the verifier relies on its own probe) without reaching the decoder."""
    from flownet.agents.verifier import EVIDENCE_MAX_BYTES

    with pytest.raises(InputRejected):
        safejson.loads(DEEP, what="evidence", max_bytes=EVIDENCE_MAX_BYTES)
    with pytest.raises(InputRejected, match="bytes"):
        safejson.loads(b" " * (EVIDENCE_MAX_BYTES + 1), what="evidence", max_bytes=EVIDENCE_MAX_BYTES)
