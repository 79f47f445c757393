"""Compare the ledger and projections with the chain at one block, through view calls.

Every difference is reported as one line; an empty list means the projection agrees with the chain:
token balances of the contracts and of every wallet the ledger knows, the token supply against the
minted and burned accounts, every stake record, every certificate record and its validity (which
joins the record with its owner's stake), every order's state (a cancelled one: nothing paid, the
whole deposit refunded), every provider's refusal of a client, every dispute's status, every
recorded slash, every trust score, and the journal's own double-entry consistency.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections import defaultdict
from pathlib import Path

from web3 import Web3

from flownet.certstatus import lookup, verdict
from flownet.chain.deploy import Deployment
from flownet.chain.registry import certificate_status
from flownet.chain.views import Dispute, call_struct, order_state, stake_of
from flownet.core.units import format_flow
from indexer.events import RawLog
from indexer.store import Block, IndexerError, Ledger

ROLE_CODES = {"": 0, "provider": 1, "verifier": 2}
STATUS_CODES = {"open": 1, "closed": 2}
DISPUTE_CODES = {"open": 1, "rebutted": 2, "executed": 3, "superseded": 4}


def ledger_at(ledger: Ledger, block: int, chain_id: int, directory: Path) -> Ledger:
    """A temporary ledger rebuilt from `ledger`'s raw logs up to `block` (no RPC)."""
    cursor = ledger.cursor()
    if cursor is None or block > cursor.number:
        raise IndexerError(f"block {block} is not indexed yet (indexed up to {cursor.number if cursor else 'nothing'})")
    past = Ledger(directory / f"at-{block}.db", ledger.contracts, chain_id, ledger.window)
    rows = ledger.conn.execute(
        "SELECT * FROM raw_logs WHERE block_number <= ? ORDER BY block_number, log_index", (block,)
    ).fetchall()
    logs = [RawLog(r[0], r[2], r[1], r[3], r[4], tuple(json.loads(r[5])), r[6]) for r in rows]
    past.apply([], logs, finalized=block, cursor=Block(block, "", ""))
    return past


def reconcile(ledger: Ledger, w3: Web3, deployment: Deployment, block: int | None = None) -> list[str]:
    """Differences between the ledger and the chain at `block` (default: the indexed block)."""
    cursor = ledger.cursor()
    if cursor is None:
        return ["the ledger is empty: nothing indexed yet"]
    block = cursor.number if block is None else block
    if block == cursor.number:
        return _compare(ledger.conn, w3, deployment, block)
    with tempfile.TemporaryDirectory() as tmp:
        past = ledger_at(ledger, block, deployment.chain_id, Path(tmp))
        try:
            return _compare(past.conn, w3, deployment, block)
        finally:
            past.close()


def _compare(conn: sqlite3.Connection, w3: Web3, deployment: Deployment, block: int) -> list[str]:
    token = deployment.contract(w3, "FlowToken")
    staking = deployment.contract(w3, "Staking")
    market = deployment.contract(w3, "BandwidthMarket")
    diffs: list[str] = []
    balances = {row[0]: int(row[1]) for row in conn.execute("SELECT account, balance FROM balances")}

    def chain_balance(address: str) -> int:
        return int(token.functions.balanceOf(address).call(block_identifier=block))

    def check(what: str, ledger_value: int, chain_value: int, money: bool = True) -> None:
        if ledger_value != chain_value:
            show = format_flow if money else str
            diffs.append(f"{what}: ledger {show(ledger_value)} != chain {show(chain_value)}")

    stake_total = sum(v for k, v in balances.items() if k.startswith("stake:"))
    escrow_total = sum(v for k, v in balances.items() if k.startswith("escrow:"))
    check("Staking token balance", stake_total, chain_balance(staking.address))
    check("BandwidthMarket token balance", escrow_total, chain_balance(market.address))
    for account, value in sorted(balances.items()):
        if account.startswith("wallet:"):
            check(f"balance of {account[7:]}", value, chain_balance(account[7:]))
    if sum(balances.values()) != 0:
        diffs.append(f"journal does not balance: accounts sum to {sum(balances.values())}, not 0")

    journal: dict[str, int] = defaultdict(int)
    for debit, credit, amount in conn.execute("SELECT debit, credit, amount FROM journal"):
        journal[debit] -= int(amount)
        journal[credit] += int(amount)
    for account in sorted(set(journal) | set(balances)):
        if journal.get(account, 0) != balances.get(account, 0):
            diffs.append(
                f"balance of {account} is {balances.get(account, 0)} but its journal sums to {journal[account]}"
            )

    for row in conn.execute("SELECT * FROM stakers ORDER BY address"):
        stake = stake_of(staking, row["address"], block)
        who = f"stake of {row['address']}"
        check(f"{who}: active", int(row["active"]), stake.active)
        check(f"{who}: locked", int(row["locked"]), stake.locked)
        check(f"{who}: thawing", int(row["thawing"]), stake.thawing)
        check(f"{who}: thaw end", int(row["thaw_end"]), stake.thaw_end, money=False)
        check(f"{who}: price", int(row["price"]), stake.price_per_gib)
        check(f"{who}: role", ROLE_CODES.get(row["role"], -1), stake.role, money=False)
        check(f"{who}: held", int(row["held"]), staking.functions.heldOf(row["address"]).call(block_identifier=block))
        if row["metadata_cid"] is not None:
            cid = staking.functions.metadataCid(row["address"]).call(block_identifier=block)
            if cid != row["metadata_cid"]:
                diffs.append(f"{who}: metadata CID ledger {row['metadata_cid']} != chain {cid}")
        stake_accounts = balances.get(f"stake:active:{row['address']}", 0)
        check(f"{who}: active vs its ledger account", int(row["active"]), stake_accounts)

    if "CertificateRegistry" in deployment.addresses:
        registry = deployment.contract(w3, "CertificateRegistry")
        now = int(w3.eth.get_block(block)["timestamp"])
        for row in conn.execute("SELECT * FROM certificates ORDER BY cert_key"):
            cert_hash = bytes.fromhex(row["cert_hash"][2:])
            record = certificate_status(registry, cert_hash, row["owner"], block)
            owner, revoked = record.owner, record.revoked
            who = f"certificate {row['cert_hash']} of {row['owner']}"
            if owner != row["owner"] or revoked != bool(row["revoked"]) or record.not_after != row["not_after"]:
                diffs.append(
                    f"{who}: ledger owner {row['owner']} revoked {bool(row['revoked'])} "
                    f"not-after {row['not_after']} != chain owner {owner} revoked {revoked} "
                    f"not-after {record.not_after}"
                )
                continue
            # Validity joins the record with the owner's stake: the ledger's verdict must be the chain's.
            ledger_verdict = verdict(conn, lookup(conn, cert_hash, row["owner"]), now)
            chain_valid = bool(registry.functions.isValid(cert_hash, row["owner"]).call(block_identifier=block))
            if (ledger_verdict == "valid") != chain_valid:
                diffs.append(f"{who}: ledger says {ledger_verdict} != chain isValid {chain_valid}")

    # Minted tokens leave `external`, burned ones reach `burned`: what is left is the supply.
    supply = int(token.functions.totalSupply().call(block_identifier=block))
    check("token supply (minted - burned)", -(balances.get("external", 0) + balances.get("burned", 0)), supply)
    if "SlashingManager" in deployment.addresses:
        diffs.extend(_compare_slashing(conn, w3, deployment, block))
    if "TrustRegistry" in deployment.addresses:
        trust = deployment.contract(w3, "TrustRegistry")
        for row in conn.execute("SELECT subject, domain, score FROM scores ORDER BY score_key"):
            chain_score = int(trust.functions.scoreOf(row["subject"], row["domain"]).call(block_identifier=block))
            if chain_score != row["score"]:
                diffs.append(
                    f"trust score of {row['subject']} in domain {row['domain']}: ledger {row['score']} != "
                    f"chain {chain_score}"
                )

    for row in conn.execute(
        "SELECT order_id, paid, status, deposit, refunded, cancelled FROM orders ORDER BY order_id"
    ):
        paid, status = order_state(market, bytes.fromhex(row["order_id"][2:]), block).as_tuple()
        check(f"order {row['order_id']}: paid", int(row["paid"]), paid)
        check(f"order {row['order_id']}: status", STATUS_CODES.get(row["status"], -1), status, money=False)
        if row["cancelled"] and (int(row["paid"]) != 0 or int(row["refunded"]) != int(row["deposit"])):
            diffs.append(
                f"order {row['order_id']}: cancelled, but paid {format_flow(int(row['paid']))} and refunded "
                f"{format_flow(int(row['refunded']))} of a {format_flow(int(row['deposit']))} deposit"
            )
        escrow = balances.get(f"escrow:{row['order_id']}", 0)
        expected = int(row["deposit"]) - int(row["paid"]) - int(row["refunded"])
        if escrow != expected:
            diffs.append(
                f"order {row['order_id']}: escrow account holds {format_flow(escrow)} but deposit - paid - refunded "
                f"is {format_flow(expected)}"
            )
    for row in conn.execute("SELECT provider, client, refused_until FROM refusals ORDER BY refusal_key"):
        chain_until = int(market.functions.refusedUntil(row["provider"], row["client"]).call(block_identifier=block))
        check(f"refusal of {row['client']} by {row['provider']}: until", int(row["refused_until"]), chain_until, False)
    return diffs


def _compare_slashing(conn: sqlite3.Connection, w3: Web3, deployment: Deployment, block: int) -> list[str]:
    manager = deployment.contract(w3, "SlashingManager")
    diffs: list[str] = []
    for row in conn.execute("SELECT * FROM disputes ORDER BY id"):
        d = call_struct(Dispute, manager, "disputeOf", row["id"], block=block)
        ledger = (
            row["provider"],
            row["epoch"],
            row["challenge_ends"],
            row["kind"],
            int(row["due"]),
            row["remaining"],
            json.loads(row["verifiers"]),
        )
        on_chain = (d.provider, d.epoch, d.challenge_ends, d.kind, d.due, d.remaining, list(d.verifiers))
        if ledger != on_chain:
            diffs.append(f"dispute {row['id']}: ledger terms {ledger} != chain {on_chain}")
        if DISPUTE_CODES.get(row["status"], -1) != d.status:
            diffs.append(f"dispute {row['id']}: status ledger {row['status']} != chain code {d.status}")
    for row in conn.execute("SELECT * FROM slashes ORDER BY block_number, log_index"):
        what = f"{row['route']} slash of {row['provider']} for epoch {row['epoch']} (block {row['block_number']})"
        if int(row["amount"]) != int(row["reward"]) + int(row["burned"]):
            diffs.append(f"{what}: amount {row['amount']} != reward {row['reward']} + burned {row['burned']}")
        if not manager.functions.isEpochSlashed(row["provider"], row["epoch"]).call(block_identifier=block):
            diffs.append(f"{what}: the chain does not mark that epoch slashed")
    # What the slash rows say was taken equals the slash journal entries to the manager, less the bonds
    # of struck accusers (also taken through the manager, recorded in their disputes' strikes).
    taken = sum(int(r[0]) for r in conn.execute("SELECT amount FROM slashes"))
    penalties = sum(
        int(strike["penalty"]) for (text,) in conn.execute("SELECT struck FROM disputes") for strike in json.loads(text)
    )
    booked = sum(
        int(r[0])
        for r in conn.execute(
            "SELECT amount FROM journal WHERE kind = 'slash' AND credit = ?", (f"wallet:{manager.address}",)
        )
    )
    if booked != taken + penalties:
        diffs.append(
            f"slashes: journal moved {format_flow(booked)} from stake to the SlashingManager but slashes and "
            f"rebuttal penalties sum to {format_flow(taken + penalties)}"
        )
    return diffs
