"""Cancelled orders and client refusals in the full node's ledger (issue 11, finding 6).

Reducers without a chain (double entry, rollback, rebuild, the 0008 migration on an existing
database), then the real events on anvil, indexed and reconciled against the chain.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import PRICE, Market
from ledger_helpers import CHAIN_ID, CONTRACTS, index_once, make_log

from flownet.chain.deploy import TOKEN_UNIT
from indexer import db
from indexer.events import decode
from indexer.projections import amt, reduce
from indexer.reconcile import reconcile
from indexer.store import Block, Ledger

E18 = 10**18
OID = "0x" + "cd" * 32
OID2 = "0x" + "ef" * 32
PROVIDER = "0x00000000000000000000000000000000000000A1"
CLIENT = "0x00000000000000000000000000000000000000c1"
FOREVER = 2**64 - 1
CONTRACT_OF = {v: k for k, v in CONTRACTS.items()}


def _cs(address: str) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))


P, C = _cs(PROVIDER), _cs(CLIENT)


def story() -> list:
    """Mint, stake, offer, open two orders; the provider cancels the first (refusing the client for
    good), then lifts the refusal: blocks 1..7."""
    return [
        make_log("FlowToken", "Transfer", 1, 0, **{"from": "0x" + "00" * 20, "to": P, "value": 5000 * E18}),
        make_log("FlowToken", "Transfer", 1, 1, **{"from": P, "to": C, "value": 1000 * E18}),
        make_log("Staking", "Staked", 2, 0, account=P, role=1, amount=2000 * E18, active=2000 * E18),
        make_log("FlowToken", "Transfer", 2, 1, **{"from": P, "to": CONTRACTS["Staking"], "value": 2000 * E18}),
        make_log("Staking", "OfferPublished", 3, 0, provider=P, pricePerGiB=2 * E18, metadataCid="bafkreiex"),
        make_log("Staking", "StakeLocked", 4, 0, provider=P, amount=50 * E18, locked=50 * E18),
        make_log(
            "BandwidthMarket", "OrderOpened", 4, 1, orderId=OID, client=C, provider=P, nonce=1,
            deposit=100 * E18, pricePerGiB=2 * E18, expiry=2_000_000_000, lockedStake=50 * E18,
        ),
        make_log("Staking", "StakeLocked", 5, 0, provider=P, amount=20 * E18, locked=70 * E18),
        make_log(
            "BandwidthMarket", "OrderOpened", 5, 1, orderId=OID2, client=C, provider=P, nonce=2,
            deposit=40 * E18, pricePerGiB=2 * E18, expiry=2_000_000_000, lockedStake=20 * E18,
        ),
        make_log("BandwidthMarket", "OrderCancelled", 6, 0, orderId=OID, client=C, provider=P, refund=100 * E18),
        make_log("BandwidthMarket", "ClientRefused", 6, 1, provider=P, client=C, refusedUntil=FOREVER),
        make_log("Staking", "StakeUnlocked", 6, 2, provider=P, amount=50 * E18, locked=20 * E18),
        make_log("BandwidthMarket", "ClientRefused", 7, 0, provider=P, client=C, refusedUntil=0),
    ]  # fmt: skip


def _apply(ledger: Ledger, logs: list, upto: int, finalized: int) -> None:
    for number in range(1, upto + 1):
        block = Block(number, f"0x{number:064x}", f"0x{number - 1:064x}")
        ledger.apply([block], [log for log in logs if log.block_number == number], finalized=finalized, cursor=block)


def _order(ledger: Ledger, order_id: str) -> sqlite3.Row:
    return ledger.conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()


def _refusal(ledger: Ledger) -> str | None:
    row = ledger.conn.execute("SELECT refused_until FROM refusals WHERE provider = ? AND client = ?", (P, C)).fetchone()
    return None if row is None else str(row[0])


def test_cancel_reducer_refunds_the_whole_deposit() -> None:
    rows: dict = {}

    class State:
        def get(self, table: str, key: str) -> dict | None:
            return rows.get((table, key))

    journal = []
    for log in story()[:10]:
        event = decode(log, CONTRACT_OF)
        assert event is not None
        for change in reduce(State(), event, CONTRACT_OF):
            if hasattr(change, "key"):
                rows[(change.table, change.key)] = change.row
            elif change.table == "journal":
                journal.append(change.row)
    order = rows[("orders", OID)]
    assert (order["status"], order["cancelled"], order["cooperative"]) == ("closed", 1, 0)
    assert (order["paid"], order["refunded"], order["closed_block"]) == (amt(0), amt(100 * E18), 6)
    assert rows[("orders", OID2)]["cancelled"] == 0 and rows[("orders", OID2)]["status"] == "open"
    assert (journal[-1]["kind"], journal[-1]["debit"], journal[-1]["credit"], int(journal[-1]["amount"])) == (
        "refund",
        f"escrow:{OID}",
        f"wallet:{C}",
        100 * E18,
    )


def test_ledger_books_cancel_and_refusals_and_rolls_back(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db", CONTRACTS, CHAIN_ID, window=64)
    logs = story()
    _apply(ledger, logs, 6, finalized=0)
    balances = {r[0]: int(r[1]) for r in ledger.conn.execute("SELECT account, balance FROM balances")}
    assert balances[f"escrow:{OID}"] == 0, "the cancelled order's escrow is empty"
    assert balances[f"escrow:{OID2}"] == 40 * E18
    assert balances[f"wallet:{C}"] == (1000 - 40) * E18, "the client got the first deposit back"
    assert sum(balances.values()) == 0
    assert _order(ledger, OID)["cancelled"] == 1
    assert ledger.conn.execute("SELECT locked FROM stakers").fetchone()[0] == amt(20 * E18)
    assert _refusal(ledger) == str(FOREVER), "2**64 - 1 (forever) is kept exactly"
    at_six = ledger.state_hash()

    seven = Block(7, f"0x{7:064x}", f"0x{6:064x}")
    ledger.apply([seven], [log for log in logs if log.block_number == 7], finalized=0, cursor=seven)
    assert _refusal(ledger) == "0" * 20, "lifted"
    ledger.rollback_to(6)
    assert _refusal(ledger) == str(FOREVER) and ledger.state_hash() == at_six
    ledger.rollback_to(5)
    assert _refusal(ledger) is None
    assert (_order(ledger, OID)["status"], _order(ledger, OID)["cancelled"]) == ("open", 0)

    fresh = Ledger(tmp_path / "r.db", CONTRACTS, CHAIN_ID, window=64)
    _apply(fresh, logs, 7, finalized=7)
    expected = fresh.state_hash()
    assert fresh.rebuild() == len(logs)
    assert fresh.state_hash() == expected, "rebuild from the raw logs gives the same projections"


def test_migration_0008_upgrades_an_existing_database(tmp_path: Path) -> None:
    """A full node indexed before the migration keeps its orders (not cancelled) and gains the tables."""
    old = tmp_path / "old-migrations"
    old.mkdir()
    for version, _name, path in db.migration_files():
        if version < 8:
            (old / path.name).write_text(path.read_text())
    conn = db.connect(tmp_path / "fullnode.db")
    assert db.migrate(conn, old) == [1, 2, 3, 4, 5, 6, 7]
    conn.execute(
        "INSERT INTO orders (order_id, nonce, client, provider, deposit, price, expiry, locked_stake, paid, "
        "paid_bytes, refunded, status, cooperative, opened_block, closed_block) "
        "VALUES (?, 1, ?, ?, ?, ?, 2000000000, ?, ?, ?, ?, 'closed', 1, 4, 6)",
        (OID, C, P, amt(100), amt(2), amt(50), amt(10), amt(5), amt(90)),
    )
    assert db.migrate(conn) == [v for v, _, _ in db.migration_files() if v >= 8]
    assert conn.execute("SELECT cancelled FROM orders WHERE order_id = ?", (OID,)).fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM refusals").fetchone()[0] == 0
    conn.close()


@pytest.mark.parametrize("w3", ["anvil"], indirect=True)
def test_cancel_and_refusal_indexed_and_reconciled(market: Market, tmp_path: Path) -> None:
    """On anvil: an order cancelled with a refusal, a lifted refusal of another client and an accepted
    order; the ledger agrees with the chain, and a tampered refusal or cancel is reported."""
    w3, provider, client, stranger = market.w3, market.provider, market.client, market.stranger
    cancelled, _ = client.open_order(provider.address, 100 * TOKEN_UNIT, 86_400, PRICE)
    kept, _ = stranger.open_order(provider.address, 30 * TOKEN_UNIT, 86_400, PRICE)
    provider.redeem(stranger.sign_receipt(kept, 1 << 30))
    until = w3.eth.get_block("latest")["timestamp"] + 86_400
    provider.cancel(cancelled, refuse_until=until)
    provider.refuse(stranger.address, 2**64 - 1)
    provider.refuse(stranger.address, 0)

    deployment = market.deployment
    ledger = Ledger(tmp_path / "fullnode.db", deployment.addresses, deployment.chain_id)
    index_once(w3, deployment, ledger)
    row = _order(ledger, "0x" + cancelled.order_id.hex())
    assert (row["status"], row["cancelled"], int(row["refunded"]), int(row["paid"])) == (
        "closed",
        1,
        100 * TOKEN_UNIT,
        0,
    )
    assert _order(ledger, "0x" + kept.order_id.hex())["cancelled"] == 0
    refusals = dict(ledger.conn.execute("SELECT client, refused_until FROM refusals").fetchall())
    assert refusals == {client.address: str(until).zfill(20), stranger.address: "0" * 20}
    assert reconcile(ledger, w3, deployment) == []

    ledger.conn.execute("UPDATE refusals SET refused_until = ? WHERE client = ?", ("0" * 20, client.address))
    ledger.conn.execute("UPDATE orders SET refunded = ? WHERE cancelled = 1", (amt(1),))
    diffs = reconcile(ledger, w3, deployment)
    assert f"refusal of {client.address} by {provider.address}: until: ledger 0 != chain {until}" in diffs
    assert any("cancelled, but paid 0 FLOW and refunded 0.000000000000000001 FLOW" in d for d in diffs)
    ledger.close()
