"""Rebuild throughput: recompute every projection from the raw logs alone (no RPC).

Builds a ledger of --events synthetic FlowNet logs (ABI-encoded exactly as the contracts emit them:
stakes, offers, orders, redeems, closes, transfers), then times ``Ledger.rebuild()``. As a baseline
in the same run it times the first, incremental indexing of the same logs through ``Ledger.apply``.
The last line is ``rebuild_events_per_s=<n>``.

    .venv/bin/python benchmarks/indexer_rebuild.py [--events 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ledger_helpers import CHAIN_ID, CONTRACTS, make_log

from indexer.store import Block, Ledger

E18 = 10**18
ZERO = "0x0000000000000000000000000000000000000000"


def synthetic(count: int) -> list:
    """`count` logs over 100 providers and their orders, 50 logs a block."""
    providers = [f"0x{i + 1:040x}" for i in range(100)]
    clients = [f"0x{i + 1001:040x}" for i in range(100)]
    from eth_utils import to_checksum_address

    providers = [to_checksum_address(p) for p in providers]
    clients = [to_checksum_address(c) for c in clients]
    logs = []
    block, index = 1, 0

    def add(contract: str, event: str, **args: object) -> None:
        nonlocal block, index
        logs.append(make_log(contract, event, block, index, **args))
        index += 1
        if index == 50:
            block, index = block + 1, 0

    for p, c in zip(providers, clients, strict=True):
        add("FlowToken", "Transfer", **{"from": ZERO, "to": p, "value": 10**6 * E18})
        add("FlowToken", "Transfer", **{"from": p, "to": c, "value": 10**5 * E18})
        add("Staking", "Staked", account=p, role=1, amount=10**5 * E18, active=10**5 * E18)
        add("Staking", "OfferPublished", provider=p, pricePerGiB=E18, metadataCid="bafkreiexample")
    nonce = 0
    while len(logs) < count:
        nonce += 1
        p, c = providers[nonce % 100], clients[nonce % 100]
        oid = "0x" + nonce.to_bytes(32, "big").hex()
        add("Staking", "StakeLocked", provider=p, amount=50 * E18, locked=50 * E18)
        add("BandwidthMarket", "OrderOpened", orderId=oid, client=c, provider=p, nonce=nonce, deposit=100 * E18,
            pricePerGiB=E18, expiry=2_000_000_000, lockedStake=50 * E18)  # fmt: skip
        for r in range(1, 9):
            add("BandwidthMarket", "Redeemed", orderId=oid, provider=p, cumulativeBytes=r << 30,
                cumulativeAmount=r * E18, payout=E18)  # fmt: skip
        add("BandwidthMarket", "OrderClosed", orderId=oid, client=c, provider=p, payout=0, refund=92 * E18,
            totalPaid=8 * E18, cooperative=True)  # fmt: skip
        add("Staking", "StakeUnlocked", provider=p, amount=50 * E18, locked=0)
    return logs[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description="Ledger rebuild throughput from raw logs.")
    parser.add_argument("--events", type=int, default=100_000, help="logs in the ledger (default 100000)")
    args = parser.parse_args()
    if args.events <= 0:
        parser.error(f"--events must be positive (not {args.events})")
    logs = synthetic(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "rebuild.db", CONTRACTS, CHAIN_ID)
        started = time.perf_counter()
        last = logs[-1].block_number
        for start in range(0, len(logs), 10_000):
            chunk = logs[start : start + 10_000]
            top = chunk[-1].block_number
            ledger.apply([], chunk, finalized=last, cursor=Block(top, f"0x{top:064x}", ""))
        applied_s = time.perf_counter() - started
        before = ledger.state_hash()
        started = time.perf_counter()
        replayed = ledger.rebuild()
        rebuild_s = time.perf_counter() - started
        assert ledger.state_hash() == before, "rebuild changed the state"
        print(f"baseline (first indexing through apply): {len(logs) / applied_s:,.0f} events/s")
        print(f"rebuild: {replayed} events in {rebuild_s:.2f} s, state hash identical")
        print(f"rebuild_events_per_s={replayed / rebuild_s:.0f}")


if __name__ == "__main__":
    main()
