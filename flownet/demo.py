"""The FlowNet market round, step by step, on any chain with a funded dev account — then the tunnel.

``make demo`` runs it on a fresh anvil devnet: deploy, provider stakes and sets an offer, client
opens an order, provider redeems two receipts, client closes with the provider's signature and gets
the remainder. Every step prints its transaction hash and gas used. Then it runs the whole tunnel
through the command line (`flownet.tunnel.localnet`): both wallets register certificates on chain,
the provider serves, the client's SOCKS5 proxy fetches a file from a local web server, the client
pays with receipts and the provider redeems them on chain.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from eth_account import Account
from web3 import Web3

from flownet.chain.connect import http_web3
from flownet.chain.deploy import TOKEN_UNIT, DeployConfig, Deployment, deploy
from flownet.chain.market import FlowNet, Role
from flownet.chain.tx import Sender, Sent
from flownet.core.pricing import GIB
from flownet.core.units import format_flow as flow
from flownet.devnet import Anvil, fund
from flownet.errors import FlowNetError

MIB = 1 << 20


@dataclass
class RoundResult:
    """What a market round did, for printing and for tests."""

    deployment: Deployment
    steps: list[Sent] = field(default_factory=list)
    provider_earned: int = 0
    client_refund: int = 0
    client_spent: int = 0


def market_round(w3: Web3, say: Callable[[str], None] = print, deposit: int = 100 * TOKEN_UNIT) -> RoundResult:
    """Run one market round on `w3` with fresh keys funded from the node's dev account."""
    deployer, provider_key, client_key = (Account.create() for _ in range(3))
    for who in (deployer, provider_key, client_key):
        fund(w3, who.address, 10 * 10**18)
    say(f"accounts: deployer {deployer.address}, provider {provider_key.address}, client {client_key.address}")

    steps: list[Sent] = []

    def show(sent: Sent, detail: str = "") -> Sent:
        steps.append(sent)
        say(f"  {sent.action:<22} tx {sent.tx_hash}  gas {sent.gas_used:>7,}  {detail}".rstrip())
        return sent

    say("1. deploy FlowToken, Staking, BandwidthMarket, CertificateRegistry, SlashingManager, TrustRegistry")
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig(), on_step=show)
    for name, address in deployment.addresses.items():
        say(f"     {name:<16} {address}")

    owner = FlowNet(w3, deployment, deployer)
    provider = FlowNet(w3, deployment, provider_key)
    client = FlowNet(w3, deployment, client_key)
    show(owner.transfer(provider.address, 20_000 * TOKEN_UNIT), "20000 FLOW to the provider")
    show(owner.transfer(client.address, 1_000 * TOKEN_UNIT), "1000 FLOW to the client")

    price = 2 * TOKEN_UNIT
    say(f"2. provider stakes 10000 FLOW and offers {flow(price)} per GiB")
    show(provider.approve(provider.staking.address))
    show(provider.stake(Role.PROVIDER, 10_000 * TOKEN_UNIT))
    show(provider.set_offer(price, "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"))

    say(f"3. client opens an order: deposit {flow(deposit)} for 1 day, max price {flow(3 * TOKEN_UNIT)}/GiB")
    show(client.approve(client.market.address))
    order, sent = client.open_order(provider.address, deposit, 24 * 3600, 3 * TOKEN_UNIT)
    show(sent, f"order #{order.nonce} id 0x{order.order_id.hex()[:16]}…")
    locked = provider.stake_of(provider.address).locked
    say(f"     provider stake locked for the order: {flow(locked)}")

    say("4. provider redeems two cumulative receipts signed by the client")
    first = client.sign_receipt(order, 3 * GIB)
    show(
        provider.redeem(first),
        f"{first.receipt.cumulative_bytes // MIB} MiB -> {flow(first.receipt.cumulative_amount)}",
    )
    second = client.sign_receipt(order, 7 * GIB + 512 * MIB)
    show(
        provider.redeem(second),
        f"{second.receipt.cumulative_bytes // MIB} MiB -> {flow(second.receipt.cumulative_amount)} "
        f"(+{flow(second.receipt.cumulative_amount - first.receipt.cumulative_amount)})",
    )

    final = second.receipt.cumulative_amount
    say(f"5. client closes with the provider's signature at {flow(final)} and gets the rest back")
    before = client.balance()
    show(client.close(order, final, provider.sign_close(order, final)))
    refund = client.balance() - before
    paid, status = client.order_state(order)
    say(f"     refund {flow(refund)}; order paid {flow(paid)}; status {'closed' if status == 2 else status}")
    unlocked = provider.staking.functions.unlockedStake(provider.address).call()
    say(f"     provider stake unlocked again: {flow(unlocked)}")
    return RoundResult(deployment, steps, provider_earned=paid, client_refund=refund, client_spent=deposit - refund)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="flownet demo",
        description="Run a readable FlowNet market round on a fresh local anvil (or on --rpc).",
    )
    parser.add_argument("--rpc", help="use this JSON-RPC node (with an unlocked funded dev account) instead of anvil")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every transaction")
    parser.add_argument("--no-tunnel", action="store_true", help="only the market round, not the tunnel")
    parser.add_argument("--tunnel-mb", type=int, default=20, help="size of the file fetched through the tunnel")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.rpc:
            result = market_round(http_web3(args.rpc))
        else:
            with Anvil() as node:
                print(f"anvil pid {node.pid} on {node.url} (chain {node.chain_id})")
                result = market_round(http_web3(node.url))
            print("anvil stopped")
    except FlowNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    total = sum(s.gas_used for s in result.steps)
    print(
        f"done: {len(result.steps)} transactions, {total:,} gas; provider earned {flow(result.provider_earned)}, "
        f"client spent {flow(result.client_spent)}"
    )
    if args.no_tunnel or args.rpc:
        return 0
    from flownet.tunnel.demo import tunnel_round

    try:
        tunnel_round(args.tunnel_mb)
    except FlowNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
