"""indexer.sync on a real anvil: reorgs of depth 1, 10 and 64 (and one deeper than the window), a faulty RPC
node, and reconciliation of the ledger against view calls after each.

Every test compares the live index with a fresh index of the final chain (state hash and the exact set of
(block, logIndex) the node returns), so an event lost, duplicated or invented anywhere shows up.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flownet.devnet import Anvil
from indexer.rpc import RpcClient
from indexer.store import IndexerError
from indexer.sync import Indexer
from tests.indexer_helpers import (
    Faults,
    Sim,
    check_reconciles,
    close_all,
    fault_proxy,
    index_fresh,
    log_keys,
    make_indexer,
    node_log_keys,
)


@pytest.fixture(autouse=True)
def _close_helpers() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture(scope="module")
def base() -> Iterator[Sim]:
    """One anvil for the module with a FlowNet deployment and some history."""
    with Anvil() as node:
        sim = Sim(node.url, clients=4, providers=2, seed=7)
        sim.activity(120)
        yield sim
        sim.close()


@pytest.fixture
def sim(base: Sim) -> Iterator[Sim]:
    """The module's chain, reverted to where it was after each test."""
    checkpoint = base.checkpoint()
    yield base
    base.restore(checkpoint)


def block_hashes(sim: Sim, first: int, last: int) -> dict[int, str]:
    return {n: sim.rpc("eth_getBlockByNumber", hex(n), False)["hash"] for n in range(first, last + 1)}


@pytest.mark.parametrize(
    ("depth", "replacement"),
    [(1, 1), (10, 12), (10, 7), (64, 64)],
    ids=["depth-1", "depth-10-longer", "depth-10-shorter", "depth-64"],
)
def test_a_reorg_ends_in_the_state_of_a_fresh_index(sim: Sim, tmp_path: Path, depth: int, replacement: int) -> None:
    sim.blocks_with_events(3)
    fork_block = sim.head()
    fork = sim.checkpoint()
    sim.blocks_with_events(depth)
    live = make_indexer(sim.url, sim.deployment, tmp_path / "live.db", window=64)
    assert live.step().cursor == sim.head()
    check_reconciles(live.ledger, sim)
    orphaned = block_hashes(sim, fork_block + 1, fork_block + depth)
    before = live.ledger.state_hash()

    sim.restore(fork)
    sim.rng = random.Random(f"other branch {depth}")  # different orders, redeems and transfers
    sim.blocks_with_events(replacement)
    replaced = block_hashes(sim, fork_block + 1, fork_block + min(depth, replacement))
    assert all(replaced[n] != orphaned[n] for n in replaced)

    result = live.step()
    assert result.reorgs == 1 and live.stats.rolled_back == depth
    assert result.cursor == sim.head() == fork_block + replacement
    fresh = index_fresh(sim.url, sim.deployment, tmp_path / "fresh.db")
    assert live.ledger.state_hash() == fresh.state_hash() != before
    assert log_keys(live.ledger) == node_log_keys(sim, sim.head())
    check_reconciles(live.ledger, sim)
    # Nothing left of the orphaned branch.
    stale = live.ledger.conn.execute(
        f"SELECT COUNT(*) FROM raw_logs WHERE block_hash IN ({','.join('?' * len(orphaned))})", list(orphaned.values())
    ).fetchone()[0]
    assert stale == 0


def test_following_the_head_through_repeated_reorgs(sim: Sim, tmp_path: Path) -> None:
    live = make_indexer(sim.url, sim.deployment, tmp_path / "live.db", window=64)
    live.step()
    for round_ in range(4):
        sim.blocks_with_events(2)
        assert live.step().reorgs == 0
        fork = sim.checkpoint()
        sim.blocks_with_events(3)
        live.step()
        sim.restore(fork)
        sim.rng = random.Random(round_)
        sim.blocks_with_events(4)
        assert live.step().reorgs == 1
    assert live.stats.reorgs == 4 and live.stats.rolled_back == 12
    fresh = index_fresh(sim.url, sim.deployment, tmp_path / "fresh.db")
    assert live.ledger.state_hash() == fresh.state_hash()
    check_reconciles(live.ledger, sim)


def test_a_reorg_deeper_than_the_window_stops_and_changes_nothing(sim: Sim, tmp_path: Path) -> None:
    fork = sim.checkpoint()
    sim.blocks_with_events(65)
    live = make_indexer(sim.url, sim.deployment, tmp_path / "live.db", window=64)
    live.step()
    check_reconciles(live.ledger, sim)
    before, cursor = live.ledger.state_hash(), live.ledger.cursor()
    floor = live.ledger.rollback_floor()
    assert floor == sim.head() - 64

    sim.restore(fork)
    sim.rng = random.Random("deep")
    sim.blocks_with_events(66)
    with pytest.raises(IndexerError, match="reorg deeper than the unfinalized window") as caught:
        live.step()
    assert f"{floor}..{cursor.number}" in str(caught.value)
    assert live.ledger.state_hash() == before and live.ledger.cursor() == cursor
    assert live.ledger.rollback_floor() == floor
    with pytest.raises(IndexerError):  # it stays stopped
        live.step()
    assert live.ledger.state_hash() == before


def test_a_lagging_node_is_waited_for_not_rolled_back(sim: Sim, tmp_path: Path) -> None:
    live = make_indexer(sim.url, sim.deployment, tmp_path / "live.db", window=64)
    live.step()
    before = live.ledger.state_hash()
    with fault_proxy(sim.url, Faults.only(head_lag=2), rates={"head_lag": 1.0}) as proxy:
        behind = Indexer(RpcClient(proxy.url), live.ledger, sim.deployment, window=64, sleep=lambda s: None)
        for _ in range(2):
            result = behind.step()  # the node says head - 3: behind the cursor, on the same chain
            assert result.lagging and result.reorgs == 0 and result.blocks == 0
        assert proxy.injected["head_lag"] == 2
        assert behind.stats.lagging == 2 and behind.stats.reorgs == 0
        assert live.ledger.state_hash() == before
        sim.blocks_with_events(2)
        assert behind.step().blocks == 2  # caught up again once the node is
    check_reconciles(live.ledger, sim)


@pytest.mark.parametrize("seed", [1, 3])
def test_a_faulty_rpc_node_yields_exactly_the_events_of_a_clean_run(sim: Sim, tmp_path: Path, seed: int) -> None:
    sim.activity(300)
    head = sim.head()
    reference = index_fresh(sim.url, sim.deployment, tmp_path / "clean.db")
    faults = Faults()
    rates = {"empty_logs": 0.3, "head_lag": 0.5, "range_hint": 0.15}
    with fault_proxy(sim.url, faults, probability=0.06, seed=seed, stall=1.0, rates=rates) as proxy:
        live = make_indexer(
            proxy.url, sim.deployment, tmp_path / "faulty.db", timeout=0.5, initial_range=2, max_range=4
        )
        stop = threading.Event()
        watchdog = threading.Timer(90, stop.set)
        watchdog.start()
        started = time.monotonic()
        try:
            live.run(stop, until=head)
        finally:
            watchdog.cancel()
        elapsed = time.monotonic() - started
    assert not stop.is_set(), f"gave up after {elapsed:.0f} s at {live.ledger.cursor()}"
    assert live.ledger.cursor().number == head
    assert live.ledger.state_hash() == reference.state_hash()
    assert log_keys(live.ledger) == node_log_keys(sim, head)
    check_reconciles(live.ledger, sim)
    # The faults were really there, and the silent ones were caught by the bloom check.
    injected = proxy.injected
    assert sum(injected.values()) >= 25, injected
    assert injected["empty_logs"] >= 3 and injected["truncate"] >= 1 and injected["rpc_error"] >= 1, injected
    caught_by_bloom = [r for r in live.stats.reasons if "(bloom check)" in r]
    assert 1 <= len(caught_by_bloom) <= injected["empty_logs"], (live.stats.reasons, injected)
    assert live.rpc.retries >= 1
