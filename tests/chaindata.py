"""Chain events for tests, built from the committed ABIs and applied with the indexer's own Ledger."""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import event_abi_to_log_topic, to_checksum_address
from eth_utils.crypto import keccak

from flownet.chain.artifacts import load_artifact
from indexer.events import RawLog

CHAIN_ID = 31337
CONTRACTS = {
    "FlowToken": to_checksum_address("0x" + "1f" * 20),
    "Staking": to_checksum_address("0x" + "5a" * 20),
    "BandwidthMarket": to_checksum_address("0x" + "3b" * 20),
}


class Events:
    """Raw logs built from the committed ABIs, numbered in order."""

    def __init__(self) -> None:
        self.abis = {(c, e["name"]): e for c in CONTRACTS for e in load_artifact(c).abi if e["type"] == "event"}
        self.logs: list[RawLog] = []

    def add(self, block: int, contract: str, name: str, **args: Any) -> None:
        abi = self.abis[(contract, name)]
        topics = ["0x" + event_abi_to_log_topic(abi).hex()]
        plain_types, plain_values = [], []
        for item in abi["inputs"]:
            if item["indexed"]:
                topics.append("0x" + abi_encode([item["type"]], [args[item["name"]]]).hex())
            else:
                plain_types.append(item["type"])
                plain_values.append(args[item["name"]])
        index = sum(1 for log in self.logs if log.block_number == block)
        self.logs.append(
            RawLog(
                block,
                block_hash(block),
                index,
                "0x" + keccak(text=f"tx {block} {index}").hex(),
                CONTRACTS[contract],
                tuple(topics),
                "0x" + abi_encode(plain_types, plain_values).hex(),
            )
        )


def block_hash(n: int) -> str:
    return "0x" + keccak(text=f"block {n}").hex()
