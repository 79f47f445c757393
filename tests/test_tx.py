"""Transactions: concurrent nonces from one wallet, and every contract error explained in words."""

from __future__ import annotations

import threading

import pytest
from conftest import new_account
from eth_abi import encode as abi_encode
from eth_utils import function_abi_to_4byte_selector

from flownet.chain import reverts
from flownet.chain.artifacts import load_artifact
from flownet.chain.connect import http_web3
from flownet.chain.deploy import DeployConfig, deploy
from flownet.chain.market import FlowNet
from flownet.chain.tx import Sender
from flownet.devnet import Anvil


def test_concurrent_sends_from_one_wallet_get_consecutive_nonces(anvil: Anvil) -> None:
    w3 = http_web3(anvil.url)
    deployer = new_account(w3)
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig())
    owner = FlowNet(w3, deployment, deployer)
    start_nonce = w3.eth.get_transaction_count(deployer.address)
    recipient = new_account(w3).address
    errors: list[BaseException] = []
    hashes: list[str] = []

    def worker() -> None:
        try:
            for _ in range(5):
                hashes.append(owner.transfer(recipient, 1).tx_hash)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(set(hashes)) == 20
    nonces = sorted(w3.eth.get_transaction(h)["nonce"] for h in hashes)
    assert nonces == list(range(start_nonce, start_nonce + 20))
    assert owner.balance(recipient) == 20


def _every_error() -> list[dict[str, object]]:
    seen: dict[bytes, dict[str, object]] = {}
    for name in reverts.ERROR_SOURCES:
        for entry in load_artifact(name).abi:
            if entry["type"] == "error":
                seen[function_abi_to_4byte_selector(entry)] = entry
    return list(seen.values())


SAMPLE = {"address": "0x000000000000000000000000000000000000dEaD", "uint256": 1500 * 10**18, "bytes32": b"\x11" * 32}


@pytest.mark.parametrize("entry", _every_error(), ids=lambda e: str(e["name"]))
def test_every_contract_error_has_a_sentence(entry: dict[str, object]) -> None:
    inputs = entry["inputs"]
    assert isinstance(inputs, list)
    types = [i["type"] for i in inputs]
    values = [
        SAMPLE.get(t, 3 if t.startswith("uint") else "thawPeriod" if t == "string" else SAMPLE["address"])
        for t in types
    ]
    data = function_abi_to_4byte_selector(entry) + abi_encode(types, values)
    decoded = reverts.decode("0x" + data.hex())
    assert decoded.name == entry["name"]
    assert entry["name"] in reverts.SENTENCES, f"no sentence for {entry['name']}"
    assert "{" not in decoded.sentence and decoded.sentence != decoded.raw


def test_sentence_formats_values() -> None:
    entry = next(e for e in _every_error() if e["name"] == "StakingBelowMinimum")
    data = function_abi_to_4byte_selector(entry) + abi_encode(
        ["address", "uint256", "uint256"], [SAMPLE["address"], 500 * 10**18, 1000 * 10**18]
    )
    decoded = reverts.decode(data)
    assert decoded.sentence == "Staking: stake 500 FLOW is below the minimum 1,000 FLOW"
    assert decoded.raw == (
        "StakingBelowMinimum(account=0x000000000000000000000000000000000000dEaD, "
        "stake=500000000000000000000, minimum=1000000000000000000000)"
    )


def test_unknown_and_empty_revert_data() -> None:
    assert reverts.decode(None).sentence == "the transaction reverted without a reason"
    assert reverts.decode("0xdeadbeef00").name == ""
    assert reverts.decode("0xdeadbeef00").sentence == "unknown error 0xdeadbeef00"
    panic = reverts.decode("0x4e487b71" + (0x11).to_bytes(32, "big").hex())
    assert panic.name == "Panic" and "0x11" in panic.sentence
