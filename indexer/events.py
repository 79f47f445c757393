"""FlowNet's contract events: topic -> decoder, built from the committed ABIs, decoded by hand with eth_abi.

`decode(log)` turns a raw JSON-RPC log (hex strings) into an `Event` with plain Python values:
addresses checksummed, bytes32 as 0x-hex strings, integers as int, dynamic arrays (``address[]``,
``uint256[]``) as lists of those. Logs of other contracts or unknown
topics decode to None (they are still stored raw).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, NamedTuple

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address

from flownet.chain.artifacts import load_artifact

CONTRACTS = ("FlowToken", "Staking", "BandwidthMarket", "CertificateRegistry", "SlashingManager", "TrustRegistry")


class RawLog(NamedTuple):
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


class Event(NamedTuple):
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
            topic = "0x" + event_abi_to_log_topic(entry).hex()  # type: ignore[arg-type]  # an ABIEvent dict
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


@lru_cache(maxsize=65_536)
def _address(word: str) -> str:
    """Checksummed address from a 64-hex-digit ABI word (cached: the same addresses recur constantly)."""
    return str(to_checksum_address("0x" + word[24:]))


def _word(kind: str, word: str) -> Any:
    """A static ABI value from one 64-hex-digit word, decoded by hand (eth_abi is ~20x slower)."""
    if kind == "address":
        return _address(word)
    if kind.startswith("uint"):
        return int(word, 16)
    if kind == "bool":
        return int(word, 16) != 0
    if kind == "bytes32":
        return "0x" + word
    if kind.startswith("int"):
        value = int(word, 16)
        return value - (1 << 256) if value >= 1 << 255 else value
    raise ValueError(f"no fast decoder for {kind}")


def _plain(types: tuple[str, ...], data: str) -> list[Any]:
    """Decode non-indexed values: static words by hand, `string`/`bytes` and `T[]` (T static) through
    their offset (a length word, then the bytes or one word per element)."""
    hexdata = data[2:]
    values: list[Any] = []
    for i, kind in enumerate(types):
        word = hexdata[64 * i : 64 * i + 64]
        if len(word) != 64:
            raise ValueError(f"log data too short for {types}")
        if kind in ("string", "bytes"):
            offset = int(word, 16) * 2
            length = int(hexdata[offset : offset + 64], 16)
            raw = bytes.fromhex(hexdata[offset + 64 : offset + 64 + 2 * length])
            values.append(raw.decode() if kind == "string" else raw)
        elif kind.endswith("[]"):
            offset = int(word, 16) * 2
            length = int(hexdata[offset : offset + 64], 16)
            start = offset + 64
            items = [hexdata[start + 64 * j : start + 64 * j + 64] for j in range(length)]
            if items and len(items[-1]) != 64:
                raise ValueError(f"log data too short for {types}")
            values.append([_word(kind[:-2], item) for item in items])
        else:
            values.append(_word(kind, word))
    return values


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
        args[name] = _word(kind, topic[2:])
    if decoder.plain_types:
        args.update(zip(decoder.plain_names, _plain(decoder.plain_types, log.data), strict=True))
    return Event(contract, decoder.name, log.block_number, log.log_index, log.tx_hash, args)


def decode_slow(log: RawLog, contract_of: dict[str, str]) -> Event | None:
    """The same decoding through eth_abi: the reference the fast path is tested against."""
    contract = contract_of.get(log.address)
    decoder = decoders().get(log.topics[0]) if log.topics else None
    if contract is None or decoder is None or decoder.contract != contract:
        return None

    def value(kind: str, raw: Any) -> Any:
        if kind.endswith("[]"):
            return [value(kind[:-2], item) for item in raw]
        if kind == "address":
            return to_checksum_address(raw)
        if kind.startswith("bytes") and kind != "bytes":
            return "0x" + bytes(raw).hex()
        return raw

    args = {
        name: value(kind, abi_decode([kind], bytes.fromhex(topic[2:]))[0])
        for (name, kind), topic in zip(decoder.indexed, log.topics[1:], strict=True)
    }
    values = abi_decode(list(decoder.plain_types), bytes.fromhex(log.data[2:]))
    args.update((n, value(k, v)) for n, k, v in zip(decoder.plain_names, decoder.plain_types, values, strict=True))
    return Event(contract, decoder.name, log.block_number, log.log_index, log.tx_hash, args)
