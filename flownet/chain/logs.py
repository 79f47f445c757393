"""Read contract events with raw ``eth_getLogs`` and ``eth_abi`` (web3's log processing is slow).

Used by the CLI to list orders until the fullnode's indexer serves them. Ranges are fetched in chunks
that halve when the node refuses a range as too large.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic
from web3 import Web3

from flownet.chain.artifacts import load_artifact
from flownet.chain.deploy import Deployment
from flownet.core.receipts import Order
from flownet.errors import ChainError

CHUNK = 50_000


@dataclass(frozen=True)
class Event:
    name: str
    block_number: int
    tx_hash: str
    log_index: int
    args: dict[str, Any]


def _event_abi(contract: str, name: str) -> dict[str, Any]:
    for entry in load_artifact(contract).abi:
        if entry["type"] == "event" and entry["name"] == name:
            return entry
    raise ChainError(f"{contract} has no event {name!r}")


def _topic_address(address: str) -> str:
    return "0x" + "00" * 12 + Web3.to_checksum_address(address)[2:].lower()


def fetch(
    w3: Web3,
    deployment: Deployment,
    contract: str,
    event: str,
    topics: list[str | None] | None = None,
    from_block: int | None = None,
    to_block: int | None = None,
) -> list[Event]:
    """Every `event` of `contract` matching the indexed `topics` (after the signature topic), in chain order."""
    abi = _event_abi(contract, event)
    signature = "0x" + event_abi_to_log_topic(abi).hex()
    indexed = [i for i in abi["inputs"] if i["indexed"]]
    plain = [i for i in abi["inputs"] if not i["indexed"]]
    start = deployment.deployment_block if from_block is None else from_block
    end = w3.eth.block_number if to_block is None else to_block
    chunk = CHUNK
    events: list[Event] = []
    while start <= end:
        stop = min(end, start + chunk - 1)
        params = {
            "address": deployment.addresses[contract],
            "fromBlock": hex(start),
            "toBlock": hex(stop),
            "topics": [signature, *(topics or [])],
        }
        try:
            logs = w3.provider.make_request("eth_getLogs", [params])  # type: ignore[arg-type]
        except Exception as exc:
            raise ChainError(f"eth_getLogs {start}..{stop} failed: {exc}") from exc
        if "error" in logs:
            if chunk > 1:
                chunk //= 2
                continue
            raise ChainError(f"eth_getLogs {start}..{stop} failed: {logs['error']}")
        for log in logs["result"]:
            args: dict[str, Any] = {}
            for item, topic in zip(indexed, log["topics"][1:], strict=True):
                args[item["name"]] = abi_decode([item["type"]], bytes.fromhex(topic[2:]))[0]
            values = abi_decode([i["type"] for i in plain], bytes.fromhex(log["data"][2:]))
            args.update(zip((i["name"] for i in plain), values, strict=True))
            for key, value in args.items():
                if isinstance(value, str) and Web3.is_address(value):
                    args[key] = Web3.to_checksum_address(value)
            events.append(
                Event(event, int(log["blockNumber"], 16), log["transactionHash"], int(log["logIndex"], 16), args)
            )
        start = stop + 1
    return events


def orders(w3: Web3, deployment: Deployment, client: str | None = None, provider: str | None = None) -> list[Order]:
    """Terms of every order opened on the market, optionally only one client's or one provider's."""
    topics: list[str | None] = [None, _topic_address(client) if client else None]
    topics.append(_topic_address(provider) if provider else None)
    while topics and topics[-1] is None:
        topics.pop()
    found = []
    for e in fetch(w3, deployment, "BandwidthMarket", "OrderOpened", topics):
        a = e.args
        order = Order(a["nonce"], a["client"], a["provider"], a["deposit"], a["pricePerGiB"], a["expiry"])
        if order.order_id != bytes(a["orderId"]):
            raise ChainError(f"OrderOpened in {e.tx_hash} has id 0x{bytes(a['orderId']).hex()} not matching its terms")
        found.append(order)
    return found


def cancelled(w3: Web3, deployment: Deployment, client: str | None = None, provider: str | None = None) -> set[bytes]:
    """Ids of the orders their providers cancelled (OrderCancelled), optionally only one client's or provider's."""
    topics: list[str | None] = [None, _topic_address(client) if client else None]
    topics.append(_topic_address(provider) if provider else None)
    while topics and topics[-1] is None:
        topics.pop()
    return {bytes(e.args["orderId"]) for e in fetch(w3, deployment, "BandwidthMarket", "OrderCancelled", topics)}
