"""FlowNet's contract events: topic -> decoder, built from the committed ABIs, decoded by hand with eth_abi.

`decode(log)` turns a raw JSON-RPC log (hex strings) into an `Event` with plain Python values:
addresses checksummed, bytes32 as 0x-hex strings, integers as int. Logs of other contracts or unknown
topics decode to None (they are still stored raw).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address

from flownet.chain.artifacts import load_artifact

CONTRACTS = ("FlowToken", "Staking", "BandwidthMarket")


@dataclass(frozen=True)
class RawLog:
    """One log as the node returned it (the unit stored append-only in `raw_logs`)."""

    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str
    address: str
    topics: tuple[str, ...]
    data: str

    @classmethod
    def from_rpc(cls, log: dict[str, Any]) -> RawLog:
        return cls(
            block_number=int(log["blockNumber"], 16),
            block_hash=log["blockHash"],
            log_index=int(log["logIndex"], 16),
            tx_hash=log["transactionHash"],
            address=to_checksum_address(log["address"]),
            topics=tuple(log["topics"]),
            data=log["data"],
        )


@dataclass(frozen=True)
class Event:
    """A decoded FlowNet event."""

    contract: str
    name: str
    block_number: int
    log_index: int
    tx_hash: str
    args: dict[str, Any]


@dataclass(frozen=True)
class _Decoder:
    contract: str
    name: str
    indexed: tuple[tuple[str, str], ...]
    plain_names: tuple[str, ...]
    plain_types: tuple[str, ...]


@cache
def decoders() -> dict[str, _Decoder]:
    """topic0 (0x-hex) -> decoder, for every event in the FlowNet ABIs."""
    table: dict[str, _Decoder] = {}
    for contract in CONTRACTS:
        for entry in load_artifact(contract).abi:
            if entry["type"] != "event":
                continue
            topic = "0x" + event_abi_to_log_topic(entry).hex()
            table[topic] = _Decoder(
                contract,
                entry["name"],
                tuple((i["name"], i["type"]) for i in entry["inputs"] if i["indexed"]),
                tuple(i["name"] for i in entry["inputs"] if not i["indexed"]),
                tuple(i["type"] for i in entry["inputs"] if not i["indexed"]),
            )
    return table


def topics_of(contract: str) -> list[str]:
    return [topic for topic, d in decoders().items() if d.contract == contract]


def _value(kind: str, value: Any) -> Any:
    if kind == "address":
        return to_checksum_address(value)
    if kind.startswith("bytes"):
        return "0x" + bytes(value).hex()
    return value


def decode(log: RawLog, contract_of: dict[str, str]) -> Event | None:
    """Decode `log` if it comes from one of our contracts (`contract_of`: address -> contract name)."""
    contract = contract_of.get(log.address)
    if contract is None or not log.topics:
        return None
    decoder = decoders().get(log.topics[0])
    if decoder is None or decoder.contract != contract or len(log.topics) != 1 + len(decoder.indexed):
        return None
    args: dict[str, Any] = {}
    for (name, kind), topic in zip(decoder.indexed, log.topics[1:], strict=True):
        args[name] = _value(kind, abi_decode([kind], bytes.fromhex(topic[2:]))[0])
    if decoder.plain_types:
        values = abi_decode(list(decoder.plain_types), bytes.fromhex(log.data[2:]))
        for name, kind, value in zip(decoder.plain_names, decoder.plain_types, values, strict=True):
            args[name] = _value(kind, value)
    return Event(contract, decoder.name, log.block_number, log.log_index, log.tx_hash, args)
