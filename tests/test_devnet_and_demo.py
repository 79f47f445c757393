"""The anvil devnet lifecycle and the demo's market round."""

from __future__ import annotations

import os

import pytest

from flownet import demo
from flownet.chain.connect import http_web3, in_process_web3
from flownet.chain.deploy import TOKEN_UNIT
from flownet.devnet import Anvil
from flownet.errors import ChainError, ConfigError


def test_anvil_starts_on_loopback_and_stops_by_pid() -> None:
    with Anvil(chain_id=4242) as node:
        pid = node.pid
        assert pid is not None
        assert node.url.startswith("http://127.0.0.1:")
        assert http_web3(node.url).eth.chain_id == 4242
        os.kill(pid, 0)  # alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ChainError, match="no JSON-RPC node answers"):
        http_web3(node.url, timeout=2)


def test_http_web3_rejects_bad_url() -> None:
    with pytest.raises(ConfigError, match="must start with http:// or https:// \\(not 'localhost:8545'\\)"):
        http_web3("localhost:8545")


def test_market_round_on_eth_tester() -> None:
    lines: list[str] = []
    result = demo.market_round(in_process_web3(), say=lines.append)
    assert result.provider_earned == 15 * TOKEN_UNIT
    assert result.client_refund == 85 * TOKEN_UNIT
    actions = [s.action for s in result.steps]
    assert actions.count("redeem") == 2 and actions[-1] == "close" and "openOrder" in actions
    assert all(s.gas_used > 0 for s in result.steps)
    text = "\n".join(lines)
    assert "refund 85 FLOW" in text and "status closed" in text


def test_demo_main_runs_on_anvil(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--tunnel-mb", "3"]) == 0
    out = capsys.readouterr().out
    assert "anvil stopped" in out
    assert "provider earned 15 FLOW" in out
    # the tunnel part: 3 MB through the tunnel, intact, paid on chain for what the client carried
    assert "fetched 3,000,000 bytes through the tunnel" in out and "sha256 matches" in out
    carried = int(out.split("carried ")[1].split(" bytes")[0].replace(",", ""))
    assert 3_000_000 < carried < 3_010_000
    paid = out.split("on chain: order 1 paid ")[1].split(" FLOW")[0]
    assert paid == demo.flow(-(-carried * 10**18 // (1 << 30))).removesuffix(" FLOW")


def test_flow_formatting() -> None:
    assert demo.flow(15 * TOKEN_UNIT) == "15 FLOW"
    assert demo.flow(TOKEN_UNIT // 4) == "0.25 FLOW"
    assert demo.flow(1) == "0.000000000000000001 FLOW"
    assert demo.flow(1_234_567 * TOKEN_UNIT) == "1,234,567 FLOW"
