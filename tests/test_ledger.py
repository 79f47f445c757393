"""The ledger without a chain: pure reducers, double entry, migrations, atomic batches, rollback, rebuild."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from ledger_helpers import CHAIN_ID, CONTRACTS, make_log

from indexer import db
from indexer.events import decode
from indexer.projections import Append, Put, amt, reduce
from indexer.store import Block, IndexerError, Ledger

P = "0x00000000000000000000000000000000000000a1"
C = "0x00000000000000000000000000000000000000c1"
ZERO = "0x0000000000000000000000000000000000000000"
OID = "0x" + "ab" * 32
E18 = 10**18
CONTRACT_OF = {v: k for k, v in CONTRACTS.items()}


def _cs(address: str) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))


PROVIDER, CLIENT = _cs(P), _cs(C)


def story() -> list:
    """Mint, stake, offer, open an order, redeem, close: blocks 1..6."""
    return [
        make_log("FlowToken", "Transfer", 1, 0, **{"from": ZERO, "to": PROVIDER, "value": 5000 * E18}),
        make_log("FlowToken", "Transfer", 1, 1, **{"from": PROVIDER, "to": CLIENT, "value": 1000 * E18}),
        make_log("Staking", "Staked", 2, 0, account=PROVIDER, role=1, amount=2000 * E18, active=2000 * E18),
        make_log("FlowToken", "Transfer", 2, 1, **{"from": PROVIDER, "to": CONTRACTS["Staking"], "value": 2000 * E18}),
        make_log("Staking", "OfferPublished", 3, 0, provider=PROVIDER, pricePerGiB=2 * E18, metadataCid="bafkreiex"),
        make_log("Staking", "StakeLocked", 4, 0, provider=PROVIDER, amount=50 * E18, locked=50 * E18),
        make_log(
            "BandwidthMarket", "OrderOpened", 4, 1, orderId=OID, client=CLIENT, provider=PROVIDER, nonce=1,
            deposit=100 * E18, pricePerGiB=2 * E18, expiry=2_000_000_000, lockedStake=50 * E18,
        ),
        make_log("BandwidthMarket", "Redeemed", 5, 0, orderId=OID, provider=PROVIDER, cumulativeBytes=3 << 30,
                 cumulativeAmount=6 * E18, payout=6 * E18),
        make_log("BandwidthMarket", "OrderClosed", 6, 0, orderId=OID, client=CLIENT, provider=PROVIDER,
                 payout=9 * E18, refund=85 * E18, totalPaid=15 * E18, cooperative=True),
        make_log("Staking", "StakeUnlocked", 6, 1, provider=PROVIDER, amount=50 * E18, locked=0),
    ]  # fmt: skip


class DictState:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict] = {}

    def get(self, table: str, key: str) -> dict | None:
        return self.rows.get((table, key))


def test_reducers_are_pure_and_double_entry() -> None:
    state = DictState()
    journal = []
    for log in story():
        event = decode(log, CONTRACT_OF)
        assert event is not None
        before = dict(state.rows)
        changes = reduce(state, event, CONTRACT_OF)
        assert state.rows == before  # a reducer never mutates its input
        for change in changes:
            if isinstance(change, Put):
                state.rows[(change.table, change.key)] = change.row
            else:
                assert isinstance(change, Append)
                if change.table == "journal":
                    journal.append(change.row)
    order = state.get("orders", OID)
    assert order is not None
    assert (order["paid"], order["refunded"], order["status"], order["cooperative"]) == (
        amt(15 * E18),
        amt(85 * E18),
        "closed",
        1,
    )
    staker = state.get("stakers", PROVIDER)
    assert staker is not None and staker["price"] == amt(2 * E18) and staker["locked"] == amt(0)
    kinds = [(e["kind"], e["debit"], e["credit"], int(e["amount"]) // E18) for e in journal]
    assert kinds == [
        ("transfer", "external", f"wallet:{PROVIDER}", 5000),
        ("transfer", f"wallet:{PROVIDER}", f"wallet:{CLIENT}", 1000),
        ("stake", f"wallet:{PROVIDER}", f"stake:active:{PROVIDER}", 2000),
        ("escrow", f"wallet:{CLIENT}", f"escrow:{OID}", 100),
        ("payment", f"escrow:{OID}", f"wallet:{PROVIDER}", 6),
        ("payment", f"escrow:{OID}", f"wallet:{PROVIDER}", 9),
        ("refund", f"escrow:{OID}", f"wallet:{CLIENT}", 85),
    ]


def _ledger(tmp_path: Path, name: str = "l.db") -> Ledger:
    return Ledger(tmp_path / name, CONTRACTS, CHAIN_ID, window=64)


def _apply_blocks(ledger: Ledger, logs: list, upto: int, finalized: int) -> None:
    for number in range(1, upto + 1):
        block_logs = [log for log in logs if log.block_number == number]
        block = Block(number, f"0x{number:064x}", f"0x{number - 1:064x}")
        ledger.apply([block], block_logs, finalized=finalized, cursor=block)


def _balances(ledger: Ledger) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in ledger.conn.execute("SELECT account, balance FROM balances")}


def test_ledger_balances_and_rebuild(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _apply_blocks(ledger, story(), 6, finalized=0)
    balances = _balances(ledger)
    assert balances[f"wallet:{PROVIDER}"] == (5000 - 1000 - 2000 + 15) * E18
    assert balances[f"wallet:{CLIENT}"] == (1000 - 15) * E18
    assert balances[f"stake:active:{PROVIDER}"] == 2000 * E18
    assert balances[f"escrow:{OID}"] == 0
    assert sum(balances.values()) == 0
    before = ledger.state_hash()
    assert ledger.rebuild() == len(story())
    assert ledger.state_hash() == before
    assert ledger.cursor() == Block(6, f"0x{6:064x}", f"0x{5:064x}")


@pytest.mark.parametrize("fork", [5, 3, 0])
def test_rollback_restores_exact_state(tmp_path: Path, fork: int) -> None:
    logs = story()
    reference = _ledger(tmp_path, "ref.db")
    _apply_blocks(reference, [log for log in logs if log.block_number <= fork], fork, finalized=0) if fork else None
    ledger = _ledger(tmp_path)
    _apply_blocks(ledger, logs, 6, finalized=0)
    if fork == 0:
        with pytest.raises(IndexerError, match="no stored hash for fork block 0"):
            ledger.rollback_to(0)
        return
    ledger.rollback_to(fork)
    assert ledger.state_hash() == reference.state_hash()


def test_reorg_deeper_than_window_is_refused(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _apply_blocks(ledger, story(), 6, finalized=4)
    before = ledger.state_hash()
    with pytest.raises(IndexerError, match="deeper than the unfinalized window"):
        ledger.rollback_to(3)
    assert ledger.state_hash() == before
    ledger.rollback_to(4)
    assert ledger.cursor() is not None and ledger.cursor().number == 4  # type: ignore[union-attr]


def test_failed_batch_changes_nothing(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    logs = story()
    _apply_blocks(ledger, logs, 2, finalized=0)
    before = ledger.state_hash()
    duplicate = logs[2]  # already stored: the primary key (block, log index) refuses it
    block = Block(3, f"0x{3:064x}", f"0x{2:064x}")
    with pytest.raises(sqlite3.IntegrityError):
        ledger.apply([block], [logs[4], duplicate], finalized=0, cursor=block)
    assert ledger.state_hash() == before


def test_database_of_another_deployment_is_refused(tmp_path: Path) -> None:
    _ledger(tmp_path).close()
    other = {**CONTRACTS, "Staking": "0x00000000000000000000000000000000000000F9"}
    with pytest.raises(IndexerError, match="indexes another deployment"):
        Ledger(tmp_path / "l.db", other, CHAIN_ID)


def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "m.db")
    applied = db.migrate(conn)
    assert applied == [v for v, _, _ in db.migration_files()]
    assert db.migrate(conn) == []
    rows = conn.execute("SELECT version, name FROM migrations ORDER BY version").fetchall()
    assert tuple(rows[0]) == (1, "core")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_migrations_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x INTEGER);")
    (tmp_path / "0003_c.sql").write_text("CREATE TABLE c (x INTEGER);")
    with pytest.raises(Exception, match="without gaps"):
        db.migration_files(tmp_path)
    (tmp_path / "0003_c.sql").unlink()
    (tmp_path / "0002_b.sql").write_text("CREATE TABLE b (x INTEGER); CREATE TABLE a (x INTEGER);")
    conn = db.connect(tmp_path / "m.db")
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        db.migrate(conn, tmp_path)
    # 0001 landed, 0002 rolled back whole: table b does not exist and 0002 is not recorded.
    assert [r[0] for r in conn.execute("SELECT version FROM migrations")] == [1]
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'b'").fetchone() is None


def test_fast_decoder_matches_eth_abi() -> None:
    from indexer.events import decode_slow

    logs = story()
    for log in logs:
        assert decode(log, CONTRACT_OF) == decode_slow(log, CONTRACT_OF), log
    assert decode(logs[4], CONTRACT_OF).args["metadataCid"] == "bafkreiex"  # type: ignore[union-attr]
    foreign = logs[0]._replace(address="0x00000000000000000000000000000000000000E9")
    assert decode(foreign, CONTRACT_OF) is None


def test_certificates_register_and_revoke_for_good(tmp_path: Path) -> None:
    cert = "0x" + "c1" * 32
    logs = [
        make_log("CertificateRegistry", "CertificateRegistered", 1, 0, certHash=cert, owner=PROVIDER,
                 keyHash="0x" + "4b" * 32, pemCid="bafkreipem", notAfter=2_000_000_000),
        make_log("CertificateRegistry", "CertificateRevoked", 2, 0, certHash=cert, owner=PROVIDER, reason=1,
                 revokedAt=1_700_000_100, compromisedAt=1_700_000_000),
    ]  # fmt: skip
    ledger = _ledger(tmp_path)
    _apply_blocks(ledger, logs, 1, finalized=0)
    row = dict(ledger.conn.execute("SELECT * FROM certificates").fetchone())
    assert (row["owner"], row["revoked"], row["pem_cid"], row["not_after"]) == (
        PROVIDER,
        0,
        "bafkreipem",
        2_000_000_000,
    )
    block = Block(2, f"0x{2:064x}", f"0x{1:064x}")
    ledger.apply([block], [logs[1]], finalized=0, cursor=block)
    row = dict(ledger.conn.execute("SELECT * FROM certificates").fetchone())
    assert (row["revoked"], row["reason"], row["revoked_at"], row["compromised_at"]) == (
        1,
        1,
        1_700_000_100,
        1_700_000_000,
    )
    ledger.rollback_to(1)
    assert ledger.conn.execute("SELECT revoked FROM certificates").fetchone()[0] == 0
    before = ledger.state_hash()
    ledger.rebuild()
    assert ledger.state_hash() == before


def _cert_logs() -> list:
    """Two wallets register the same hash (blocks 1, 2); the first revokes its record (block 3)."""
    cert = "0x" + "c1" * 32
    return [
        make_log("CertificateRegistry", "CertificateRegistered", 1, 0, certHash=cert, owner=PROVIDER,
                 keyHash="0x" + "4b" * 32, pemCid="bafkreipem", notAfter=2_000_000_000),
        make_log("CertificateRegistry", "CertificateRegistered", 2, 0, certHash=cert, owner=CLIENT,
                 keyHash="0x" + "4c" * 32, pemCid="bafkreicopy", notAfter=2_000_000_001),
        make_log("CertificateRegistry", "CertificateRevoked", 3, 0, certHash=cert, owner=PROVIDER, reason=1,
                 revokedAt=1_700_000_100, compromisedAt=0),
    ]  # fmt: skip


def _cert_rows(ledger: Ledger) -> dict[str, tuple[str, str, int, str]]:
    rows = ledger.conn.execute("SELECT cert_key, owner, cert_hash, revoked, pem_cid FROM certificates").fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def test_certificates_kept_per_owner(tmp_path: Path) -> None:
    """Issue 11, finding 4: one row per (owner, certHash), as CertificateRegistry keeps them; revoking one
    wallet's record leaves another wallet's record of the same hash alone, through rollbacks and rebuilds."""
    cert = "0x" + "c1" * 32
    ledger = _ledger(tmp_path)
    _apply_blocks(ledger, _cert_logs(), 3, finalized=0)
    assert _cert_rows(ledger) == {
        f"{PROVIDER}:{cert}": (PROVIDER, cert, 1, "bafkreipem"),
        f"{CLIENT}:{cert}": (CLIENT, cert, 0, "bafkreicopy"),
    }
    before = ledger.state_hash()
    ledger.rebuild()
    assert ledger.state_hash() == before
    ledger.rollback_to(2)
    assert [r[2] for r in _cert_rows(ledger).values()] == [0, 0]
    ledger.rollback_to(1)
    assert list(_cert_rows(ledger)) == [f"{PROVIDER}:{cert}"]


def test_migration_rekeys_certificates_and_their_undo_records(tmp_path: Path) -> None:
    """Migration 0007 turns a ledger of the one-record-per-hash registry (certificates keyed by cert_hash,
    undo records naming that key) into the per-owner shape: same rows, and a rollback across the migration
    still restores exactly what the blocks changed."""
    cert = "0x" + "c1" * 32
    # One owner per hash, as before; registered in block 2 (block 1 is empty, to roll back to), revoked in 4.
    logs = [log._replace(block_number=log.block_number + 1) for log in _cert_logs() if log.block_number != 2]
    want = _ledger(tmp_path, "want.db")
    _apply_blocks(want, logs, 4, finalized=0)
    ledger = _ledger(tmp_path)
    _apply_blocks(ledger, logs, 4, finalized=0)
    expected = ledger.state_hash()
    ledger.close()

    # Back to the shape migration 0006 left: certificates keyed by cert_hash, undo records keyed alike.
    conn = db.connect(tmp_path / "l.db")
    version = next(v for v, name, _ in db.migration_files() if name == "certificates_by_owner")
    conn.executescript(
        """
        CREATE TABLE old AS SELECT cert_hash, owner, key_hash, pem_cid, not_after, registered_block, revoked,
            revoked_at, compromised_at, reason, revoked_block FROM certificates;
        DROP TABLE certificates;
        CREATE TABLE certificates (cert_hash TEXT PRIMARY KEY, owner TEXT NOT NULL, key_hash TEXT NOT NULL,
            pem_cid TEXT NOT NULL, not_after INTEGER NOT NULL, registered_block INTEGER NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0, revoked_at INTEGER, compromised_at INTEGER, reason INTEGER,
            revoked_block INTEGER) WITHOUT ROWID;
        INSERT INTO certificates SELECT * FROM old;
        DROP TABLE old;
        CREATE INDEX certificates_owner ON certificates (owner);
        UPDATE undo SET key = substr(key, 44), old = json_remove(old, '$.cert_key') WHERE tbl = 'certificates';
        """
    )
    conn.execute("DELETE FROM migrations WHERE version = ?", (version,))
    undo = conn.execute("SELECT key, old FROM undo WHERE tbl = 'certificates' ORDER BY seq").fetchall()
    assert [r[0] for r in undo] == [cert, cert] and undo[0][1] is None and "cert_key" not in undo[1][1]

    assert db.migrate(conn) == [version]
    undo = conn.execute("SELECT key, old FROM undo WHERE tbl = 'certificates' ORDER BY seq").fetchall()
    assert [r[0] for r in undo] == [f"{PROVIDER}:{cert}"] * 2
    conn.close()
    ledger = _ledger(tmp_path)
    assert ledger.state_hash() == expected
    ledger.rollback_to(3)
    want.rollback_to(3)
    assert _cert_rows(ledger) == _cert_rows(want) == {f"{PROVIDER}:{cert}": (PROVIDER, cert, 0, "bafkreipem")}
    assert ledger.state_hash() == want.state_hash()
    ledger.rollback_to(1)
    assert _cert_rows(ledger) == {}
