"""indexer.sync without a node: adaptive eth_getLogs ranges, answer checks, the bloom completeness check,
lagging heads and reorgs, on an in-memory chain served through httpx.MockTransport (FakeChain)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak, to_checksum_address

from flownet.errors import ChainError
from indexer.rpc import RetryPolicy, RpcClient
from indexer.store import IndexerError, Ledger
from indexer.sync import Indexer, Manifest, RangeSizer, bloom_bits, bloom_contains, is_range_error, range_hint
from tests.indexer_helpers import FakeChain

CONTRACTS = {
    name: to_checksum_address("0x" + keccak(name.encode()).hex()[-40:])
    for name in ("FlowToken", "Staking", "BandwidthMarket")
}
DEPLOYMENT = Manifest(chain_id=31337, addresses=CONTRACTS, deployment_block=1)

INFURA = "query returned more than {limit} results. Try with this block range [{lo}, {hi}]."


def indexer_for(chain: FakeChain, db: Path, window: int = 16, **kwargs: Any) -> Indexer:
    rpc = RpcClient(
        "http://fake.test",
        transport=chain.transport(),
        retry=RetryPolicy(max_attempts=3, base=0.001),
        sleep=lambda s: None,
    )
    ledger = Ledger(db, CONTRACTS, DEPLOYMENT.chain_id, window=window)
    kwargs.setdefault("sleep", lambda s: None)
    return Indexer(rpc, ledger, DEPLOYMENT, window=window, **kwargs)


def keys(ledger: Ledger) -> list[tuple[int, int]]:
    return [(r[0], r[1]) for r in ledger.conn.execute("SELECT block_number, log_index FROM raw_logs ORDER BY 1, 2")]


def truth(chain: FakeChain, upto: int | None = None) -> list[tuple[int, int]]:
    upto = chain.head if upto is None else upto
    found = [(int(e["blockNumber"], 16), int(e["logIndex"], 16)) for e in chain.all_logs()]
    return sorted(k for k in found if k[0] <= upto)


def fresh_hash(chain: FakeChain, db: Path, window: int = 16) -> str:
    lag, chain.lag = chain.lag, 0
    indexer = indexer_for(chain, db, window=window)
    indexer.step()
    chain.lag = lag
    return indexer.ledger.state_hash()


# --------------------------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("message", "lo", "expected"),
    [
        (INFURA.format(limit=10000, lo="0x64", hi="0x1f3"), 100, (400, None)),
        (
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on "
            "the response size, or you can request any block range with a cap of 10K logs in the response. Based on "
            "your parameters, this block range should work: [0x10, 0x8f]",
            16,
            (128, None),
        ),
        ("eth_getLogs is limited to a 10,000 range", 5, (10_000, 10_000)),
        ("exceed maximum block range: 5000", 5, (5_000, 5_000)),
        ("Invalid eth_getLogs request. 'fromBlock'-'toBlock' range too large. Max range: 800", 5, (800, 800)),
        ("eth_getLogs range is too large, max is 1k blocks", 5, (1_000, 1_000)),
        ("query returned more than 10000 results", 5, (None, None)),
        ("block range is too wide", 5, (None, None)),
        ("query exceeds max results 20000, retry with the range 100-150", 100, (None, None)),
    ],
)
def test_range_hints(message: str, lo: int, expected: tuple[int | None, int | None]) -> None:
    assert is_range_error(message)
    assert range_hint(message, lo) == expected


@pytest.mark.parametrize(
    "message", ["internal error", "header not found", "rate limit exceeded", "too many requests", "execution reverted"]
)
def test_other_errors_are_not_range_errors(message: str) -> None:
    assert not is_range_error(message)


def test_sizer_halves_follows_hints_grows_and_respects_a_stated_maximum() -> None:
    sizer = RangeSizer(initial=2000, maximum=10_000, hold=0)
    assert sizer.refused(0, 1999, "block range is too wide") == 1000
    assert sizer.refused(0, 999, INFURA.format(limit=1, lo="0x0", hi="0x63")) == 100
    sizer.success(0, 99)
    assert sizer.size == 100  # grows after two clean answers in a row
    sizer.success(100, 199)
    assert sizer.size == 200
    sizer.success(200, 250)  # clipped by the head: no evidence
    sizer.success(251, 300)
    assert sizer.size == 200
    assert sizer.refused(0, 199, "eth_getLogs is limited to a 150 range") == 150
    for n in range(10):
        sizer.success(n * 150, n * 150 + 149)
    assert sizer.size == 150  # the node's stated maximum is a ceiling
    with pytest.raises(ValueError):
        RangeSizer(initial=5, maximum=4)


def test_sizer_holds_its_size_after_a_refusal() -> None:
    sizer = RangeSizer(initial=100, maximum=1000, hold=3)
    sizer.refused(0, 99, "block range is too wide")
    for n in range(4):
        sizer.success(n * 50, n * 50 + 49)
    assert sizer.size == 50  # 3 held, 1 counted
    sizer.success(200, 249)
    assert sizer.size == 100


def test_sizer_gives_up_at_one_block() -> None:
    sizer = RangeSizer(initial=2, maximum=2)
    assert sizer.refused(7, 8, "block range too large") == 1
    with pytest.raises(ChainError, match="even for 1 block"):
        sizer.refused(7, 7, "block range too large")


def test_bloom_bits_match_an_ethereum_bloom() -> None:
    chain = FakeChain(CONTRACTS, blocks=4, logs_every=3)
    block = chain.chain[3]
    bloom = bytes.fromhex(block["logsBloom"][2:])
    assert bloom_contains(bloom, bytes.fromhex(CONTRACTS["FlowToken"][2:]))
    assert bloom_contains(bloom, bytes.fromhex(FakeChain.TRANSFER[2:]))
    assert not bloom_contains(bloom, bytes.fromhex(CONTRACTS["Staking"][2:]))
    # A known vector: the bloom of the zero address sets these three bits.
    assert bloom_bits(b"\0" * 20) == tuple(
        (255 - b // 8, 1 << (b % 8))
        for b in (((keccak(b"\0" * 20)[i] << 8) | keccak(b"\0" * 20)[i + 1]) & 2047 for i in (0, 2, 4))
    )


# --------------------------------------------------------------------------------------------- adaptive range


def test_the_nodes_range_hint_is_followed(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=3000, logs_every=2)
    chain.max_results = 300
    chain.refusal = INFURA
    indexer = indexer_for(chain, tmp_path / "a.db")
    result = indexer.step()
    assert result.cursor == chain.head and keys(indexer.ledger) == truth(chain)
    first, second = chain.ranges[0], chain.ranges[1]
    assert first == (1, 2000)
    # The hint names the largest range from 1 with at most 300 logs: the next query is exactly that range.
    logs_in = [len(b["logs"]) for b in chain.chain]
    count, end = 0, 1
    for n in range(1, 3000):
        count += logs_in[n]
        if count > 300:
            break
        end = n
    assert second == (1, end)
    assert indexer.sizer.shrinks >= 1


def test_ranges_halve_without_a_hint_then_grow_after_clean_answers(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=7000, logs_every=5)
    chain.max_range = 300
    chain.refusal = "block range is too wide"
    indexer = indexer_for(chain, tmp_path / "a.db")
    indexer.step()
    widths = [hi - lo + 1 for lo, hi in chain.ranges]
    assert widths[:3] == [2000, 1000, 500]
    # held for 16 clean answers after the refusal, then two more, then doubled: refused again, halved
    assert widths[3:21] == [250] * 18
    assert widths[21:23] == [500, 250]
    assert keys(indexer.ledger) == truth(chain)


def test_a_stated_maximum_caps_growth(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=3000, logs_every=5)
    chain.max_range = 400
    chain.refusal = "eth_getLogs is limited to a {limit} range"
    indexer = indexer_for(chain, tmp_path / "a.db")
    indexer.step()
    widths = [hi - lo + 1 for lo, hi in chain.ranges]
    assert widths[0] == 2000 and set(widths[1:-1]) == {400}
    assert keys(indexer.ledger) == truth(chain)


def test_ranges_grow_up_to_the_cap(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=1200, logs_every=7)
    indexer = indexer_for(chain, tmp_path / "a.db", initial_range=16, max_range=128)
    indexer.step()
    widths = [hi - lo + 1 for lo, hi in chain.ranges]
    assert widths[:8] == [16, 16, 32, 32, 64, 64, 128, 128]
    assert max(widths) == 128
    assert keys(indexer.ledger) == truth(chain)


# --------------------------------------------------------------------------------------------- answer checks


def mangled(chain: FakeChain, how: str) -> Any:
    """A wrong answer for the first range query (blocks 1..head of a small chain)."""
    logs = copy.deepcopy([e for b in chain.chain[1:] for e in b["logs"]])
    if how == "empty":
        return []
    if how == "truncated":
        return logs[: len(logs) // 2]
    if how == "outside":
        logs[0]["blockNumber"] = hex(chain.head + 5)
    elif how == "foreign":
        logs[0]["address"] = "0x" + "ab" * 20
    elif how == "duplicate":
        logs.append(logs[0])
    elif how == "two-hashes":
        second = next(e for e in logs[1:] if e["blockNumber"] == logs[0]["blockNumber"])
        second["blockHash"] = "0x" + "cd" * 32
    elif how == "removed":
        logs[0]["removed"] = True
    elif how == "garbled":
        del logs[0]["topics"]
    elif how == "bad-data":
        logs[0]["data"] = "0x1234"  # a Transfer needs 32 bytes of data
    elif how == "not-a-list":
        return {"logs": logs}
    elif how == "wrong-hash":  # every log of a block agrees, but not with the block's header
        for e in logs:
            if e["blockNumber"] == logs[-1]["blockNumber"]:
                e["blockHash"] = "0x" + "ef" * 32
    return logs


@pytest.mark.parametrize(
    "how",
    [
        "empty",
        "truncated",
        "outside",
        "foreign",
        "duplicate",
        "two-hashes",
        "removed",
        "garbled",
        "bad-data",
        "not-a-list",
        "wrong-hash",
    ],
)
def test_a_bad_answer_is_retried_never_applied(tmp_path: Path, how: str) -> None:
    chain = FakeChain(CONTRACTS, blocks=40, logs_every=2)
    chain.answers = [mangled(chain, how)]
    indexer = indexer_for(chain, tmp_path / "a.db")
    indexer.step()
    assert indexer.stats.bad_answers == 1, indexer.stats.reasons
    assert keys(indexer.ledger) == truth(chain)
    assert indexer.ledger.state_hash() == fresh_hash(chain, tmp_path / "fresh.db")


def test_persistently_bad_answers_stop_the_step_and_change_nothing(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=40, logs_every=2)
    chain.answers = [[]] * 100
    indexer = indexer_for(chain, tmp_path / "a.db", answer_retries=4)
    with pytest.raises(ChainError, match="4 unusable answers"):
        indexer.step()
    assert indexer.ledger.cursor() is None and keys(indexer.ledger) == []


def false_positive(chain: FakeChain, number: int) -> None:
    """Give block `number` (without logs) a bloom that says "maybe a FlowToken Transfer"."""
    block = chain.chain[number]
    assert not block["logs"]
    bloom = bytearray(256)
    for item in (CONTRACTS["FlowToken"], FakeChain.TRANSFER):
        for index, mask in bloom_bits(bytes.fromhex(item[2:])):
            bloom[index] |= mask
    block["logsBloom"] = "0x" + bloom.hex()


@pytest.mark.parametrize("receipts", [True, False], ids=["receipts", "no-receipts"])
def test_a_bloom_false_positive_is_accepted_after_a_recheck(tmp_path: Path, receipts: bool) -> None:
    chain = FakeChain(CONTRACTS, blocks=40, logs_every=4)
    chain.receipts = receipts
    false_positive(chain, 10)
    false_positive(chain, 30)
    indexer = indexer_for(chain, tmp_path / "a.db", initial_range=20)
    indexer.step()
    assert indexer.stats.bloom_rechecks == 2 and indexer.stats.bloom_false_positives == 2
    assert indexer.stats.bad_answers == 0
    assert keys(indexer.ledger) == truth(chain)
    # Confirmed by the block's receipts where the node has them; asked once only where it has not.
    assert chain.calls.count("eth_getBlockReceipts") == (2 if receipts else 1)


def test_two_silent_lies_about_a_block_are_caught_by_its_receipts(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=40, logs_every=2)
    truthful = mangled(chain, "none")
    victim = truthful[0]["blockNumber"]
    chain.answers = [[e for e in truthful if e["blockNumber"] != victim]]  # the range answer drops a block
    chain.hash_answers = [[]]  # and the recheck by block hash says it has none
    indexer = indexer_for(chain, tmp_path / "a.db")
    indexer.step()
    assert indexer.stats.bad_answers == 1 and "receipts" in indexer.stats.reasons[0], indexer.stats.reasons
    assert keys(indexer.ledger) == truth(chain)


def test_headers_are_fetched_only_where_needed(tmp_path: Path) -> None:
    # Every block has logs: a backfill needs the headers of the window and the range ends only.
    chain = FakeChain(CONTRACTS, blocks=2001, logs_every=1)
    indexer = indexer_for(chain, tmp_path / "a.db", window=16)
    indexer.step()
    assert keys(indexer.ledger) == truth(chain)
    assert indexer.stats.headers <= 16 + 1 + 2
    # Blocks without logs are bloom-checked ("all"), or only those in the window ("window").
    sparse = FakeChain(CONTRACTS, blocks=2001, logs_every=10)
    everything = indexer_for(sparse, tmp_path / "b.db", window=16)
    everything.step()
    window_only = indexer_for(sparse, tmp_path / "c.db", window=16, bloom_check="window")
    window_only.step()
    assert everything.stats.headers >= 2000 - 200
    assert window_only.stats.headers <= 16 + 1 + 2
    assert keys(everything.ledger) == keys(window_only.ledger) == truth(sparse)


# --------------------------------------------------------------------------------------------- head and reorgs


def test_a_lagging_head_waits_without_rolling_back(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=100, logs_every=3)
    indexer = indexer_for(chain, tmp_path / "a.db")
    indexer.step()
    before = indexer.ledger.state_hash()
    chain.lag = 5  # a backend behind the one we read before: same chain, lower head
    result = indexer.step()
    assert result.lagging and result.reorgs == 0 and result.blocks == 0
    assert indexer.ledger.state_hash() == before and indexer.stats.reorgs == 0
    chain.lag = 0
    chain.extend(5, salt=b"main")
    result = indexer.step()
    assert not result.lagging and result.cursor == chain.head
    assert keys(indexer.ledger) == truth(chain)


@pytest.mark.parametrize(("depth", "new_blocks"), [(1, 1), (3, 6), (8, 4), (16, 16)])
def test_reorgs_within_the_window_roll_back_and_match_a_fresh_index(
    tmp_path: Path, depth: int, new_blocks: int
) -> None:
    chain = FakeChain(CONTRACTS, blocks=200, logs_every=2)
    indexer = indexer_for(chain, tmp_path / "a.db", window=16)
    indexer.step()
    old = indexer.ledger.state_hash()
    chain.reorg(depth, new_blocks, salt=b"fork")
    result = indexer.step()
    assert result.reorgs == 1 and indexer.stats.rolled_back == depth
    assert result.cursor == chain.head
    assert keys(indexer.ledger) == truth(chain)
    assert indexer.ledger.state_hash() == fresh_hash(chain, tmp_path / "fresh.db") != old


def test_a_reorg_deeper_than_the_window_stops_and_changes_nothing(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=200, logs_every=2)
    indexer = indexer_for(chain, tmp_path / "a.db", window=16)
    indexer.step()
    before = indexer.ledger.state_hash()
    chain.reorg(17, 20, salt=b"deep")
    with pytest.raises(IndexerError, match="deeper than the unfinalized window"):
        indexer.step()
    assert indexer.ledger.state_hash() == before
    with pytest.raises(IndexerError):
        indexer.step()


def test_a_reorg_found_by_the_parent_link_mid_step(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=100, logs_every=2)
    indexer = indexer_for(chain, tmp_path / "a.db", window=16)
    indexer.step()
    # The cursor check at the start of the step sees the old chain; the batch's first block doesn't build on it.
    real = indexer._on_chain
    calls = []

    def stale(number: int, stored: str) -> bool:
        calls.append(number)
        return True

    indexer._on_chain = stale  # type: ignore[method-assign]
    chain.reorg(2, 5, salt=b"fork")
    result = indexer.step()
    indexer._on_chain = real  # type: ignore[method-assign]
    assert calls and result.reorgs == 1
    assert indexer.ledger.state_hash() == fresh_hash(chain, tmp_path / "fresh.db")


def test_confirmations_hold_the_cursor_back(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=100, logs_every=2)
    indexer = indexer_for(chain, tmp_path / "a.db", confirmations=6)
    assert indexer.step().cursor == chain.head - 6
    assert keys(indexer.ledger) == truth(chain, chain.head - 6)


def test_another_chain_is_refused(tmp_path: Path) -> None:
    chain = FakeChain(CONTRACTS, blocks=10, chain_id=1)
    with pytest.raises(IndexerError, match="serves chain 1"):
        indexer_for(chain, tmp_path / "a.db").step()
