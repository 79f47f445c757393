"""Synthetic FlowNet logs for ledger tests without a chain: events ABI-encoded exactly as the contracts emit them."""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode

from indexer.events import RawLog, decoders

CONTRACTS = {
    "FlowToken": "0x00000000000000000000000000000000000000F1",
    "Staking": "0x00000000000000000000000000000000000000F2",
    "BandwidthMarket": "0x00000000000000000000000000000000000000F3",
    "CertificateRegistry": "0x00000000000000000000000000000000000000F4",
    "SlashingManager": "0x00000000000000000000000000000000000000F5",
    "TrustRegistry": "0x00000000000000000000000000000000000000F6",
}
CHAIN_ID = 31337


def _topic(kind: str, value: Any) -> str:
    if kind == "bytes32":
        return value if isinstance(value, str) else "0x" + bytes(value).hex()
    return "0x" + abi_encode([kind], [value]).hex()


def make_log(contract: str, event: str, block: int, index: int, **args: Any) -> RawLog:
    """The RawLog `contract` would emit for `event(args)` at (block, index)."""
    for topic0, d in decoders().items():
        if d.contract == contract and d.name == event:
            topics = [topic0, *(_topic(kind, args[name]) for name, kind in d.indexed)]
            values = [
                bytes.fromhex(args[n][2:]) if t == "bytes32" else args[n]
                for n, t in zip(d.plain_names, d.plain_types, strict=True)
            ]
            data = "0x" + abi_encode(list(d.plain_types), values).hex()
            return RawLog(
                block,
                f"0x{block:064x}",
                index,
                f"0x{block * 1000 + index:064x}",
                CONTRACTS[contract],
                tuple(topics),
                data,
            )
    raise KeyError(f"{contract} has no event {event}")


def index_once(w3: Any, deployment: Any, ledger: Any) -> int:
    """Index every FlowNet log up to the head in one eth_getLogs call (test helper, not the indexer)."""
    from indexer.store import Block

    head = w3.eth.get_block("latest")
    answer = w3.provider.make_request(
        "eth_getLogs",
        [{"fromBlock": hex(deployment.deployment_block), "toBlock": hex(head["number"]),
          "address": list(deployment.addresses.values())}],
    )  # fmt: skip
    logs = [RawLog.from_rpc(entry) for entry in answer["result"]]
    block = Block(head["number"], "0x" + bytes(head["hash"]).hex(), "0x" + bytes(head["parentHash"]).hex())
    ledger.apply([block], logs, finalized=head["number"], cursor=block)
    return len(logs)
