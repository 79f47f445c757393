"""Read one contract's events straight from the chain, decoded by the indexer's decoder (indexer.events).

For the places that need a few events before (or without) a full node's index: the CLI's order lists,
the verifier's probe orders and open disputes, the demos. Logs are fetched with raw ``eth_getLogs``
(web3's log processing is slow) in chunks that halve when the node refuses a range as too large, and
decoded by `indexer.events.decode`, the one decoder of FlowNet's events: addresses checksummed,
integers as int, bytes32 as 0x-hex strings.
"""

from __future__ import annotations

from web3 import Web3

from flownet.chain.deploy import Deployment
from flownet.core.receipts import Order
from flownet.errors import ChainError
from indexer.events import Event, RawLog, decode, decoders

__all__ = ["CHUNK", "Event", "cancelled", "fetch", "orders"]

CHUNK = 50_000


def _topic_address(address: str) -> str:
    return "0x" + "00" * 12 + Web3.to_checksum_address(address)[2:].lower()


def _signature(contract: str, event: str) -> str:
    for topic, decoder in decoders().items():
        if decoder.contract == contract and decoder.name == event:
            return topic
    raise ChainError(f"{contract} has no event {event!r}")


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
    signature = _signature(contract, event)
    address = deployment.addresses[contract]
    contract_of: dict[str, str] = {Web3.to_checksum_address(address): contract}
    start = deployment.deployment_block if from_block is None else from_block
    end = w3.eth.block_number if to_block is None else to_block
    chunk = CHUNK
    events: list[Event] = []
    while start <= end:
        stop = min(end, start + chunk - 1)
        params = {
            "address": address,
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
            decoded = decode(RawLog.from_rpc(log), contract_of)
            if decoded is None:
                raise ChainError(f"cannot decode a {contract}.{event} log in {log['transactionHash']}")
            events.append(decoded)
        start = stop + 1
    return events


def _party_topics(client: str | None, provider: str | None) -> list[str | None]:
    topics: list[str | None] = [None, _topic_address(client) if client else None]
    topics.append(_topic_address(provider) if provider else None)
    while topics and topics[-1] is None:
        topics.pop()
    return topics


def orders(w3: Web3, deployment: Deployment, client: str | None = None, provider: str | None = None) -> list[Order]:
    """Terms of every order opened on the market, optionally only one client's or one provider's."""
    found = []
    for e in fetch(w3, deployment, "BandwidthMarket", "OrderOpened", _party_topics(client, provider)):
        a = e.args
        order = Order(a["nonce"], a["client"], a["provider"], a["deposit"], a["pricePerGiB"], a["expiry"])
        if "0x" + order.order_id.hex() != a["orderId"]:
            raise ChainError(f"OrderOpened in {e.tx_hash} has id {a['orderId']} not matching its terms")
        found.append(order)
    return found


def cancelled(w3: Web3, deployment: Deployment, client: str | None = None, provider: str | None = None) -> set[bytes]:
    """Ids of the orders their providers cancelled (OrderCancelled), optionally only one client's or provider's."""
    events = fetch(w3, deployment, "BandwidthMarket", "OrderCancelled", _party_topics(client, provider))
    return {bytes.fromhex(e.args["orderId"][2:]) for e in events}
