"""Indexer backfill on dense or sparse chains: events/s, blocks/s and headers fetched per bloom-check mode.

    .venv/bin/python benchmarks/indexer_bloom.py --txs 4000

Generates about 2.3 events per transaction (orders, redeems, transfers, closes; 1-8 transactions per block)
with the test suite's bulk generator, then indexes the chain into a fresh SQLite ledger in one `step()`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flownet.devnet import Anvil  # noqa: E402
from tests.indexer_helpers import Sim, make_indexer, node_log_keys  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=4000, help="transactions of FlowNet activity to generate")
    parser.add_argument("--bloom-check", choices=("all", "window"), default="all")
    parser.add_argument("--range", type=int, default=2000, help="initial eth_getLogs range")
    parser.add_argument("--empty-blocks", type=int, default=0, help="blocks without FlowNet events to mine after")
    args = parser.parse_args()
    with Anvil() as node, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        sim = Sim(node.url, clients=8, providers=3, seed=1)
        sim.activity(args.txs)
        if args.empty_blocks:
            for _ in range(args.empty_blocks // 200):  # anvil_mine is superlinear in the count
                sim.mine(200)
        head = sim.head()
        expected = node_log_keys(sim, head)
        print(f"generated {len(expected)} events in {head} blocks in {time.perf_counter() - started:.1f} s")
        indexer = make_indexer(
            node.url, sim.deployment, Path(tmp) / "bench.db", initial_range=args.range, bloom_check=args.bloom_check
        )
        started = time.perf_counter()
        result = indexer.step()
        elapsed = time.perf_counter() - started
        assert result.cursor == head and result.logs == len(expected)
        stats = indexer.stats
        print(
            f"indexed {result.logs} events in {result.blocks} blocks in {elapsed:.2f} s: "
            f"{result.logs / elapsed:,.0f} events/s, {result.blocks / elapsed:,.0f} blocks/s; "
            f"{result.batches} batches, {stats.headers} headers, {indexer.rpc.requests} HTTP requests, "
            f"range now {indexer.sizer.size}"
        )


if __name__ == "__main__":
    main()
