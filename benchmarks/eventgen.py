"""Generate many real FlowNet events on a local anvil, fast (for the indexer benchmarks).

Deploys the contracts from the node's unlocked dev account, registers providers, opens orders and
then redeems batches of client-signed receipts with redeemMany (one Redeemed event per receipt): each
provider first redeems the first receipts of its own orders (only it may), then the dev account the rest.
Receipts are signed with coincurve over a precomputed EIP-712 domain (about 50,000 per second), and
the redeemMany transactions are sent from the unlocked dev account without waiting for each one.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from coincurve import PrivateKey
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flownet.chain.deploy import TOKEN_UNIT, DeployConfig, Deployment, deploy
from flownet.chain.market import FlowNet, Role
from flownet.chain.tx import NodeSender
from flownet.core.receipts import Order
from flownet.devnet import fund

GIB = 1 << 30
PRICE = TOKEN_UNIT  # 1 FLOW per GiB
BATCH = 250  # receipts per redeemMany


def _domain_separator(chain_id: int, market: str) -> bytes:
    typehash = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [typehash, keccak(b"FlowNet BandwidthMarket"), keccak(b"1"), chain_id, market],
        )
    )


RECEIPT_TYPEHASH = keccak(b"Receipt(bytes32 orderId,uint256 cumulativeBytes,uint256 cumulativeAmount)")


def sign_receipt_fast(key: PrivateKey, domain: bytes, order_id: bytes, cumulative_bytes: int, amount: int) -> bytes:
    struct = keccak(RECEIPT_TYPEHASH + order_id + cumulative_bytes.to_bytes(32, "big") + amount.to_bytes(32, "big"))
    signature = key.sign_recoverable(keccak(b"\x19\x01" + domain + struct), hasher=None)
    return signature[:64] + bytes([signature[64] + 27])


def generate(w3: Web3, events: int, providers: int = 10, orders: int = 400, say=print) -> Deployment:
    """Create at least `events` FlowNet events on `w3`; returns the deployment."""
    started = time.monotonic()
    dev = w3.eth.accounts[0]
    node = NodeSender(w3, dev)
    deployment = deploy(w3, node, DeployConfig(max_duration=365 * 24 * 3600))
    token = deployment.contract(w3, "FlowToken")
    market = deployment.contract(w3, "BandwidthMarket")
    receipts_per_order = max(1, (events - 3 * orders) // orders + 1)
    deposit = (receipts_per_order + 1) * PRICE
    people = []
    for role in ("provider", "client"):
        for _ in range(providers):
            account = Account.create(os.urandom(32))
            fund(w3, account.address, 10**20)
            node.transact(token.functions.transfer(account.address, 10**6 * TOKEN_UNIT), action=f"fund {role}")
            net = FlowNet(w3, deployment, account)
            net.approve(net.staking.address if role == "provider" else net.market.address)
            if role == "provider":
                net.stake(Role.PROVIDER, 100_000 * TOKEN_UNIT)
                net.set_offer(PRICE, "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
            people.append(net)
    provider_nets, client_nets = people[:providers], people[providers:]
    opened: list[tuple[Order, PrivateKey]] = []
    for i in range(orders):
        client = client_nets[i % providers]
        order, _ = client.open_order(provider_nets[i % providers].address, deposit, 300 * 24 * 3600, PRICE)
        opened.append((order, PrivateKey(bytes(client.account.key))))
    elapsed = time.monotonic() - started
    say(f"  {orders} orders opened in {elapsed:.0f} s; signing {orders * receipts_per_order} receipts")
    domain = _domain_separator(deployment.chain_id, market.address)
    redemptions = []
    for order, key in opened:
        for r in range(1, receipts_per_order + 1):
            amount = r * PRICE
            signature = sign_receipt_fast(key, domain, order.order_id, r * GIB, amount)
            redemptions.append((order.order_id, order.as_tuple(), r * GIB, amount, signature))
    # Amount-major order keeps each order's receipts increasing within and across batches; grouping
    # by provider inside one amount lets redeemMany pay each provider with one transfer per run.
    redemptions.sort(key=lambda x: (x[3], x[1][2], x[1][0]))
    # Only an order's provider may redeem its first receipt (that accepts the order): each provider
    # sends the first receipts of its own orders, the dev account all later ones.
    firsts = [r for r in redemptions if r[3] == PRICE]
    redemptions = [r for r in redemptions if r[3] != PRICE]
    for net in provider_nets:
        own = [r for r in firsts if r[1][2].lower() == net.address.lower()]
        for start in range(0, len(own), BATCH):
            net.sender.transact(net.market.functions.redeemMany(own[start : start + BATCH]), "redeemMany (accept)")
    hashes = []
    for start in range(0, len(redemptions), BATCH):
        data = market.encode_abi("redeemMany", args=[redemptions[start : start + BATCH]])
        tx = {"from": dev, "to": market.address, "data": data, "gas": 29_000_000}
        hashes.append(w3.eth.send_transaction(tx))  # type: ignore[arg-type]
    for tx_hash in hashes:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=300, poll_latency=0.05)
        if receipt["status"] != 1:
            raise RuntimeError(f"redeemMany {tx_hash.hex()} reverted")
    say(f"  generated in {time.monotonic() - started:.0f} s up to block {w3.eth.block_number}")
    return deployment


if __name__ == "__main__":
    from flownet.chain.connect import http_web3
    from flownet.devnet import Anvil

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with Anvil() as anvil:
        w3 = http_web3(anvil.url)
        d = generate(w3, count)
        logs = w3.provider.make_request(
            "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": list(d.addresses.values())}]
        )["result"]
        print(f"{len(logs)} events")
