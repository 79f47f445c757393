"""The verifier's I/O seams without a chain: the full node client over httpx.MockTransport, signature
recovery of the chain adapter, and the CLI's early errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from eth_account import Account

from flownet.agents.verifier_io import FullNodeError, HttpFullNode, SlashingChain
from flownet.cli import cli
from flownet.core.verdicts import Attestation

P = "0x" + "11" * 20
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def node(handler: Any) -> HttpFullNode:
    return HttpFullNode("http://fullnode.test/", transport=httpx.MockTransport(handler))


def test_providers_are_paged() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        offset = int(request.url.params["offset"])
        items = [{"address": f"0x{i:040x}"} for i in range(offset, min(offset + 100, 150))]
        return httpx.Response(200, json={"total": 150, "limit": 100, "offset": offset, "items": items})

    found = node(handler).providers()
    assert len(found) == 150 and found[149]["address"] == f"0x{149:040x}"
    assert seen == [
        "http://fullnode.test/providers?limit=100&offset=0",
        "http://fullnode.test/providers?limit=100&offset=100",
    ]


def test_attestations_post_and_get() -> None:
    posted: list[dict[str, Any]] = []
    a = Attestation(P, 7, 3, "bafyx", "0x" + "22" * 20, bytes(range(65)))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            assert request.url.path == "/attestations"
            posted.append(json.loads(request.content))
            return httpx.Response(201, json={"accepted": True})
        assert dict(request.url.params) == {"provider": P, "epoch": "7", "kind": "3", "limit": "200", "offset": "0"}
        items = [*posted, {"provider": P, "epoch": "bad"}]
        return httpx.Response(200, json={"total": len(items), "limit": 200, "offset": 0, "items": items})

    n = node(handler)
    n.post_attestation(a)
    assert posted == [
        {
            "provider": P,
            "epoch": 7,
            "kind": 3,
            "evidence_cid": "bafyx",
            "verifier": "0x" + "22" * 20,
            "signature": "0x" + bytes(range(65)).hex(),
        }
    ]
    assert n.attestations(P, 7, 3) == [a]  # the malformed entry is skipped


def test_full_node_errors_are_one_line() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "not_found", "message": "no route GET /attestations"})

    with pytest.raises(FullNodeError, match="answered 404: no route GET /attestations"):
        node(refuse).attestations(P, 1, 0)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(FullNodeError, match=r"unreachable .*connection refused"):
        node(down).providers()


class FakeSlashing:
    def __init__(self, digest: bytes) -> None:
        self.digest = digest
        self.asked: list[tuple[str, int, int, str]] = []

    def attestation_digest(self, provider: str, epoch: int, kind: int, cid: str) -> bytes:
        self.asked.append((provider, epoch, kind, cid))
        return self.digest


def test_attestation_signer_recovers_canonical_signatures_only() -> None:
    verifier = Account.create()
    digest = bytes(range(32))
    chain = SlashingChain.__new__(SlashingChain)  # only the recovery, which needs no chain
    chain.slashing = FakeSlashing(digest)  # type: ignore[assignment]
    signature = bytes(verifier.unsafe_sign_hash(digest).signature)
    a = Attestation(P.lower(), 4, 1, "bafyx", verifier.address, signature)
    assert chain.attestation_signer(a) == verifier.address
    assert chain.slashing.asked == [(P, 4, 1, "bafyx")]  # type: ignore[attr-defined]  # checksummed for the contract
    s = int.from_bytes(signature[32:64], "big")
    high_s = signature[:32] + (N - s).to_bytes(32, "big") + bytes((55 - signature[64],))
    assert chain.attestation_signer(Attestation(P, 4, 1, "bafyx", verifier.address, high_s)) is None
    assert chain.attestation_signer(Attestation(P, 4, 1, "bafyx", verifier.address, signature[:64] + b"\x01")) is None
    assert chain.attestation_signer(Attestation(P, 4, 1, "bafyx", verifier.address, signature[:10])) is None


def test_cli_refuses_bad_options_before_touching_the_chain(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    result = runner.invoke(cli, [*home, "verifier", "run", "--fullnode", "http://x", "--probe-url", "ftp://x/f"])
    assert result.exit_code == 2 and "invalid probe URL 'ftp://x/f'" in result.output
    result = runner.invoke(
        cli, [*home, "verifier", "run", "--fullnode", "http://x", "--probe-url", "http://x/f", "--duration", "soon"]
    )
    assert result.exit_code == 2 and "invalid duration 'soon'" in result.output
    result = runner.invoke(cli, [*home, "provider", "serve", "--fault", "lie"])
    assert result.exit_code == 2 and "unknown fault 'lie' (choose from drop-streams, over-meter)" in result.output
