"""Slashing and trust projections without a chain: disputes, slashes, scores, the burn account, rollback, rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ledger_helpers import CHAIN_ID, CONTRACTS, make_log

from indexer.events import decode, decode_slow
from indexer.store import Block, Ledger

E18 = 10**18
ZERO = "0x0000000000000000000000000000000000000000"
P = "0x00000000000000000000000000000000000000A1"
V1 = "0x00000000000000000000000000000000000000B1"
V2 = "0x00000000000000000000000000000000000000B2"
R = "0x00000000000000000000000000000000000000C1"
SCORER = "0x00000000000000000000000000000000000000D1"
OID = "0x" + "ab" * 32
STAKING, MANAGER, TRUST = CONTRACTS["Staking"], CONTRACTS["SlashingManager"], CONTRACTS["TrustRegistry"]
CONTRACT_OF = {v: k for k, v in CONTRACTS.items()}


def _cs(address: str) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))


P, V1, V2, R, SCORER = map(_cs, (P, V1, V2, R, SCORER))


def _transfer(block: int, index: int, frm: str, to: str, value: int):  # type: ignore[no-untyped-def]
    return make_log("FlowToken", "Transfer", block, index, **{"from": frm, "to": to, "value": value})


def _held(block: int, index: int, who: str, amount: int, held: int, released: bool = False):  # type: ignore[no-untyped-def]
    name = "StakeReleased" if released else "StakeHeld"
    return make_log("Staking", name, block, index, account=who, amount=amount, held=held)


#: The superseding equivocation of block 8: 10% of 8,190, half of it shared by the two accusers.
SLASH_8 = 819 * E18
REWARD_EACH_8 = SLASH_8 // 2 // 2


def story() -> list:
    """Stake a provider and two verifiers (block 1); a scorer (2); dispute 1 opened, holding 100 of each
    (3), V1 struck by its own proof and the dispute rebutted (4); dispute 2 opened (5) and executed with
    no reward (6); an equivocation slash (7); dispute 3 opened and superseded by an equivocation whose
    reward its accusers share (8)."""
    logs = [
        _transfer(1, 0, ZERO, P, 10_000 * E18),
        _transfer(1, 1, ZERO, V1, 1_000 * E18),
        _transfer(1, 2, ZERO, V2, 1_000 * E18),
        make_log("Staking", "Staked", 1, 3, account=P, role=1, amount=10_000 * E18, active=10_000 * E18),
        make_log("Staking", "Staked", 1, 4, account=V1, role=2, amount=1_000 * E18, active=1_000 * E18),
        make_log("Staking", "Staked", 1, 5, account=V2, role=2, amount=1_000 * E18, active=1_000 * E18),
        make_log("TrustRegistry", "ScorerSet", 2, 0, domain=0, scorer=SCORER, allowed=True),
        make_log("TrustRegistry", "ScoreChanged", 2, 1, subject=P, domain=0, scorer=SCORER, oldScore=500,
                 newScore=800, reasonCid="bafkreigood"),
        make_log("SlashingManager", "DisputeOpened", 3, 0, disputeId=1, provider=P, epoch=100, kind=1,
                 evidenceCid="bafkreione", verifiers=[V1, V2], opener=R, challengeEnds=5000, due=100 * E18),
        _held(3, 1, P, 100 * E18, 100 * E18),
        _held(3, 2, V1, 100 * E18, 100 * E18),
        _held(3, 3, V2, 100 * E18, 100 * E18),
        # V1's own proof strikes it: its bond is released, taken and burned; one accuser left, below quorum.
        _held(4, 0, V1, 100 * E18, 0, released=True),
        make_log("Staking", "Slashed", 4, 1, account=V1, slasher=MANAGER, fromActive=100 * E18, fromThawing=0,
                 active=900 * E18, thawing=0),
        make_log("SlashingManager", "AccuserStruck", 4, 2, disputeId=1, verifier=V1, orderId=OID,
                 bytesServed=5_000_000, penalty=100 * E18, remaining=1),
        _held(4, 3, P, 100 * E18, 0, released=True),
        _held(4, 4, V2, 100 * E18, 0, released=True),
        make_log("SlashingManager", "DisputeRebutted", 4, 5, disputeId=1, provider=P, remaining=1),
        _transfer(4, 6, MANAGER, ZERO, 100 * E18),
        make_log("SlashingManager", "DisputeOpened", 5, 0, disputeId=2, provider=P, epoch=101, kind=0,
                 evidenceCid="bafkreitwo", verifiers=[V2, V1], opener=R, challengeEnds=6000, due=900 * E18),
        _held(5, 1, P, 900 * E18, 900 * E18),
        _held(5, 2, V2, 900 * E18, 900 * E18),
        _held(5, 3, V1, 900 * E18, 900 * E18),
        # Execution: the holds end, 900 slashed and all of it burned, score halved.
        _held(6, 0, P, 900 * E18, 0, released=True),
        _held(6, 1, V2, 900 * E18, 0, released=True),
        _held(6, 2, V1, 900 * E18, 0, released=True),
        make_log("Staking", "Slashed", 6, 3, account=P, slasher=MANAGER, fromActive=900 * E18, fromThawing=0,
                 active=9_100 * E18, thawing=0),
        make_log("SlashingManager", "DisputeExecuted", 6, 4, disputeId=2, provider=P, executor=R,
                 slashed=900 * E18, reward=0, rewardEach=0, burned=900 * E18),
        _transfer(6, 5, MANAGER, ZERO, 900 * E18),
        make_log("TrustRegistry", "ScoreChanged", 6, 6, subject=P, domain=0, scorer=MANAGER, oldScore=800,
                 newScore=400, reasonCid="bafkreitwo"),
        # Equivocation: 910 slashed, 455 to the reporter, 455 burned.
        make_log("Staking", "Slashed", 7, 0, account=P, slasher=MANAGER, fromActive=910 * E18, fromThawing=0,
                 active=8_190 * E18, thawing=0),
        make_log("SlashingManager", "EquivocationSlashed", 7, 1, provider=P, epoch=102, reporter=R,
                 endpointA="0x" + "0a" * 32, endpointB="0x" + "0b" * 32, evidenceCid="bafkreiequiv",
                 slashed=910 * E18, reward=455 * E18, burned=455 * E18),
        _transfer(7, 2, MANAGER, R, 455 * E18),
        _transfer(7, 3, MANAGER, ZERO, 455 * E18),
        make_log("TrustRegistry", "ScoreChanged", 7, 4, subject=P, domain=0, scorer=MANAGER, oldScore=400,
                 newScore=200, reasonCid="bafkreiequiv"),
        make_log("SlashingManager", "DisputeOpened", 8, 0, disputeId=3, provider=P, epoch=103, kind=2,
                 evidenceCid="bafkreithree", verifiers=[V1, V2], opener=R, challengeEnds=7000, due=SLASH_8),
        _held(8, 1, P, SLASH_8, SLASH_8),
        _held(8, 2, V1, SLASH_8, SLASH_8),
        _held(8, 3, V2, SLASH_8, SLASH_8),
        # The accused reports its own equivocation of epoch 103 from R: the reward goes to V1 and V2.
        _held(8, 4, P, SLASH_8, 0, released=True),
        _held(8, 5, V1, SLASH_8, 0, released=True),
        _held(8, 6, V2, SLASH_8, 0, released=True),
        make_log("Staking", "Slashed", 8, 7, account=P, slasher=MANAGER, fromActive=SLASH_8, fromThawing=0,
                 active=8_190 * E18 - SLASH_8, thawing=0),
        make_log("SlashingManager", "DisputeSuperseded", 8, 8, disputeId=3, provider=P, epoch=103, rewarded=[V1, V2],
                 rewardEach=REWARD_EACH_8),
        make_log("SlashingManager", "EquivocationSlashed", 8, 9, provider=P, epoch=103, reporter=R,
                 endpointA="0x" + "0a" * 32, endpointB="0x" + "0b" * 32, evidenceCid="bafkreiequiv",
                 slashed=SLASH_8, reward=2 * REWARD_EACH_8, burned=SLASH_8 - 2 * REWARD_EACH_8),
        _transfer(8, 10, MANAGER, V1, REWARD_EACH_8),
        _transfer(8, 11, MANAGER, V2, REWARD_EACH_8),
        _transfer(8, 12, MANAGER, ZERO, SLASH_8 - 2 * REWARD_EACH_8),
        make_log("TrustRegistry", "ScoreChanged", 8, 13, subject=P, domain=0, scorer=MANAGER, oldScore=200,
                 newScore=100, reasonCid="bafkreiequiv"),
        make_log("TrustRegistry", "AuthorityTransferStarted", 8, 14, domain=1, current=SCORER, pending=R),
    ]  # fmt: skip
    return logs


def _ledger(tmp_path: Path, name: str = "l.db") -> Ledger:
    return Ledger(tmp_path / name, CONTRACTS, CHAIN_ID, window=64)


def _apply(ledger: Ledger, logs: list, upto: int, finalized: int = 0) -> None:
    for number in range(1, upto + 1):
        block = Block(number, f"0x{number:064x}", f"0x{number - 1:064x}")
        ledger.apply([block], [log for log in logs if log.block_number == number], finalized=finalized, cursor=block)


def _rows(ledger: Ledger, sql: str) -> list[dict]:
    return [dict(r) for r in ledger.conn.execute(sql)]


def test_fast_decoder_matches_eth_abi_on_arrays() -> None:
    for log in story():
        fast = decode(log, CONTRACT_OF)
        assert fast is not None and fast == decode_slow(log, CONTRACT_OF), log
    superseded = decode(next(log for log in story() if log.block_number == 8 and log.log_index == 8), CONTRACT_OF)
    assert superseded is not None and superseded.name == "DisputeSuperseded"
    assert superseded.args["rewarded"] == [V1, V2] and superseded.args["rewardEach"] == REWARD_EACH_8


def test_disputes_slashes_scores_projected(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _apply(ledger, story(), 8)
    disputes = {d["id"]: d for d in _rows(ledger, "SELECT * FROM disputes")}
    assert [disputes[i]["status"] for i in (1, 2, 3)] == ["rebutted", "executed", "superseded"]
    assert json.loads(disputes[1]["verifiers"]) == [V1, V2] and disputes[1]["rebut_order_id"] == OID
    assert int(disputes[1]["burned"]) == 100 * E18 and json.loads(disputes[1]["penalties"]) == [str(100 * E18)]
    strike = {"verifier": V1, "order_id": OID, "bytes_served": "5000000", "penalty": str(100 * E18)}
    assert json.loads(disputes[1]["struck"]) == [strike] and disputes[1]["remaining"] == 1
    assert [int(disputes[i]["due"]) // E18 for i in (1, 2)] == [100, 900]
    d2 = disputes[2]
    assert (int(d2["slashed"]), int(d2["reward"]), int(d2["burned"])) == (900 * E18, 0, 900 * E18)
    assert d2["executor"] == R and d2["closed_block"] == 6 and d2["challenge_ends"] == 6000
    d3 = disputes[3]
    assert json.loads(d3["rewarded"]) == [V1, V2] and int(d3["reward"]) == 2 * REWARD_EACH_8
    slashes = _rows(ledger, "SELECT * FROM slashes ORDER BY block_number")
    assert [(s["route"], s["epoch"], s["dispute_id"], int(s["amount"]) // E18) for s in slashes] == [
        ("dispute", 101, 2, 900),
        ("equivocation", 102, None, 910),
        ("equivocation", 103, None, 819),
    ]
    assert slashes[1]["evidence_cid"] == "bafkreiequiv" and slashes[0]["evidence_cid"] == "bafkreitwo"
    assert _rows(ledger, "SELECT score FROM scores") == [{"score": 100}]
    history = _rows(ledger, "SELECT old_score, new_score, scorer FROM score_history ORDER BY block_number")
    assert [(h["old_score"], h["new_score"], h["scorer"]) for h in history] == [
        (500, 800, SCORER),
        (800, 400, MANAGER),
        (400, 200, MANAGER),
        (200, 100, MANAGER),
    ]
    held = {r["address"]: int(r["held"]) for r in _rows(ledger, "SELECT address, held FROM stakers")}
    assert held == {P: 0, V1: 0, V2: 0}
    assert _rows(ledger, "SELECT allowed FROM scorers") == [{"allowed": 1}]
    assert _rows(ledger, "SELECT authority, pending FROM trust_authorities") == [{"authority": SCORER, "pending": R}]


def test_slash_journal_goes_stake_to_reporter_and_burned(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _apply(ledger, story(), 8)
    entries = _rows(ledger, "SELECT kind, debit, credit, amount FROM journal WHERE block_number = 7 ORDER BY log_index")
    assert [(e["kind"], e["debit"], e["credit"], int(e["amount"]) // E18) for e in entries] == [
        ("slash", f"stake:active:{P}", f"wallet:{MANAGER}", 910),
        ("transfer", f"wallet:{MANAGER}", f"wallet:{R}", 455),
        ("burn", f"wallet:{MANAGER}", "burned", 455),
    ]
    entries = _rows(ledger, "SELECT kind, debit, credit, amount FROM journal WHERE block_number = 8 ORDER BY log_index")
    assert [(e["kind"], e["debit"], e["credit"], int(e["amount"])) for e in entries] == [
        ("slash", f"stake:active:{P}", f"wallet:{MANAGER}", SLASH_8),
        ("transfer", f"wallet:{MANAGER}", f"wallet:{V1}", REWARD_EACH_8),
        ("transfer", f"wallet:{MANAGER}", f"wallet:{V2}", REWARD_EACH_8),
        ("burn", f"wallet:{MANAGER}", "burned", SLASH_8 - 2 * REWARD_EACH_8),
    ]
    balances = {r["account"]: int(r["balance"]) for r in _rows(ledger, "SELECT * FROM balances")}
    assert balances[f"wallet:{MANAGER}"] == 0  # the manager passes every slashed token on
    assert balances["burned"] == (100 + 900 + 455) * E18 + SLASH_8 - 2 * REWARD_EACH_8
    assert balances.get(f"wallet:{R}", 0) == 455 * E18  # R reported epoch 103 too, but under dispute: nothing
    assert balances["external"] == -12_000 * E18  # minted; burns do not touch it
    assert balances[f"stake:active:{P}"] == 8_190 * E18 - SLASH_8
    assert balances[f"stake:active:{V1}"] == 900 * E18
    assert sum(balances.values()) == 0


@pytest.mark.parametrize("fork", [7, 5, 3, 1])
def test_rollback_and_rebuild_restore_exact_state(tmp_path: Path, fork: int) -> None:
    logs = story()
    reference = _ledger(tmp_path, "ref.db")
    _apply(reference, [log for log in logs if log.block_number <= fork], fork)
    ledger = _ledger(tmp_path)
    _apply(ledger, logs, 8)
    before = ledger.state_hash()
    assert ledger.rebuild() == len(logs) and ledger.state_hash() == before
    ledger.rollback_to(fork)
    assert ledger.state_hash() == reference.state_hash()
    # The search row's trust follows the rolled-back score (unscored: the neutral 500).
    trust = ledger.conn.execute("SELECT trust FROM provider_search WHERE address = ?", (P,)).fetchone()[0]
    assert trust == {7: 200, 5: 800, 3: 800, 1: 500}[fork]


def test_state_hash_covers_new_tables(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _apply(ledger, story(), 8)
    before = ledger.state_hash()
    ledger.conn.execute("UPDATE disputes SET status = 'open' WHERE id = 1")
    assert ledger.state_hash() != before
    ledger.conn.execute("UPDATE disputes SET status = 'rebutted' WHERE id = 1")
    ledger.conn.execute("UPDATE score_history SET reason_cid = 'x' WHERE block_number = 2")
    assert ledger.state_hash() != before
