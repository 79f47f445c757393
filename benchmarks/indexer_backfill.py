"""Backfill throughput: FlowNet's indexer against a naive web3 baseline, on the same chain, same run.

Generates at least --events FlowNet events on a fresh local anvil (benchmarks/eventgen.py), then
indexes them from scratch twice:

(a) the fullnode indexer: raw eth_getLogs over adaptive ranges, eth_abi decoding, reducers, batched
    SQLite writes (raw logs + projections + cursor per batch);
(b) a naive baseline: web3's contract-event ``get_logs`` (which runs ``process_log`` on every log)
    for each event type, one INSERT per row.

The last line is ``events_per_s=<n> baseline_events_per_s=<m> ratio=<n/m>``.

    .venv/bin/python benchmarks/indexer_backfill.py [--events 100000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eventgen import generate

from flownet.chain.artifacts import load_artifact
from flownet.chain.connect import http_web3
from flownet.devnet import Anvil
from indexer.rpc import RpcClient
from indexer.store import Ledger
from indexer.sync import Indexer


def index_with_fullnode(url: str, deployment, head: int, db: Path) -> tuple[int, float]:
    ledger = Ledger(db, deployment.addresses, deployment.chain_id)
    indexer = Indexer(RpcClient(url), ledger, deployment, poll_interval=0.01, progress_interval=5.0)
    started = time.perf_counter()
    indexer.run(until=head)
    elapsed = time.perf_counter() - started
    count = ledger.conn.execute("SELECT COUNT(*) FROM raw_logs").fetchone()[0]
    ledger.close()
    return count, elapsed


def index_naively(w3, deployment, head: int, db: Path) -> tuple[int, float]:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE events (block INTEGER, log_index INTEGER, contract TEXT, event TEXT, args TEXT)")
    started = time.perf_counter()
    count = 0
    for name, address in deployment.addresses.items():
        contract = w3.eth.contract(address=address, abi=load_artifact(name).abi)
        for entry in load_artifact(name).abi:
            if entry["type"] != "event":
                continue
            event = getattr(contract.events, entry["name"])()
            for start in range(deployment.deployment_block, head + 1, 2_000):
                for log in event.get_logs(from_block=start, to_block=min(head, start + 1_999)):
                    conn.execute(
                        "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                        (
                            log["blockNumber"],
                            log["logIndex"],
                            name,
                            log["event"],
                            json.dumps(dict(log["args"]), default=str),
                        ),
                    )
                    conn.commit()
                    count += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description="Indexer backfill throughput against a naive baseline.")
    parser.add_argument("--events", type=int, default=100_000, help="FlowNet events to generate (default 100000)")
    args = parser.parse_args()
    if args.events <= 0:
        parser.error(f"--events must be positive (not {args.events})")
    with Anvil() as anvil, tempfile.TemporaryDirectory() as tmp:
        w3 = http_web3(anvil.url)
        print(f"generating >= {args.events} events on anvil {anvil.url}")
        deployment = generate(w3, args.events)
        head = w3.eth.block_number
        ours, ours_s = index_with_fullnode(anvil.url, deployment, head, Path(tmp) / "fullnode.db")
        print(f"fullnode indexer: {ours} events in {ours_s:.2f} s ({ours / ours_s:,.0f} events/s)")
        theirs, theirs_s = index_naively(w3, deployment, head, Path(tmp) / "naive.db")
        print(f"naive baseline:   {theirs} events in {theirs_s:.2f} s ({theirs / theirs_s:,.0f} events/s)")
        if ours < args.events or theirs != ours:
            print(f"warning: event counts differ or are short (fullnode {ours}, baseline {theirs})")
        rate, base = ours / ours_s, theirs / theirs_s
        print(f"events_per_s={rate:.0f} baseline_events_per_s={base:.0f} ratio={rate / base:.1f}")


if __name__ == "__main__":
    main()
