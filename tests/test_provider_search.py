"""`provider_search` stays equal to what stakers, provider_meta and liveness say, whatever writes them:
the indexer's batches, reorg rollbacks and rebuilds, metadata and heartbeat writes, and migration 0002
applied to a database that already holds providers; and its trust column (migration 0004) equals the
network score, 500 when unscored."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

from chaindata import CHAIN_ID, CONTRACTS, Events, block_hash
from eth_account import Account
from eth_utils import to_checksum_address
from eth_utils.crypto import keccak

from flownet.core.heartbeat import Heartbeat, HeartbeatDomain, sign_heartbeat
from indexer import db
from indexer.api import create_app
from indexer.apistore import ApiStore
from indexer.asgiclient import InProcessClient
from indexer.events import RawLog
from indexer.projections import amt
from indexer.store import Block, Ledger

EXPECTED = (
    "SELECT s.address, s.price, s.active, m.region, COALESCE(l.timestamp, 0), COALESCE(t.score, 500) FROM stakers s "
    "LEFT JOIN provider_meta m ON m.address = s.address LEFT JOIN liveness l ON l.provider = s.address "
    "LEFT JOIN scores t ON t.subject = s.address AND t.domain = 0 "
    "WHERE s.role = 'provider' ORDER BY s.address"
)


def who(n: int) -> str:
    return str(to_checksum_address(keccak(text=f"search {n}")[-20:]))


def check(conn: Any) -> list[tuple[Any, ...]]:
    expected = [tuple(r) for r in conn.execute(EXPECTED)]
    actual = [tuple(r) for r in conn.execute("SELECT * FROM provider_search ORDER BY address")]
    assert actual == expected
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return actual


def test_search_table_follows_the_indexer(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    ledger = Ledger(path, CONTRACTS, CHAIN_ID)
    store = ApiStore(path)
    ev = Events()
    for i in range(6):
        ev.add(1, "Staking", "Staked", account=who(i), role=1 if i < 5 else 2, amount=10**21, active=10**21)
    for i in range(3):
        ev.add(2, "Staking", "OfferPublished", provider=who(i), pricePerGiB=(i + 1) * 10**17, metadataCid=f"cid{i}")
    ev.add(
        3,
        "Staking",
        "UnstakeRequested",
        account=who(0),
        amount=4 * 10**20,
        active=6 * 10**20,
        thawing=4 * 10**20,
        thawEnd=99,
    )
    ev.add(
        4,
        "Staking",
        "Slashed",
        account=who(1),
        slasher=who(9),
        fromActive=10**20,
        fromThawing=0,
        active=9 * 10**20,
        thawing=0,
    )
    blocks = [Block(n, block_hash(n), block_hash(n - 1)) for n in range(5)]  # 0: before FlowNet

    def logs_of(numbers: range) -> list[RawLog]:
        return [log for log in ev.logs if log.block_number in numbers]

    ledger.apply(blocks[:3], logs_of(range(1, 3)), finalized=0, cursor=blocks[2])
    rows = check(ledger.conn)
    assert len(rows) == 5 and {r[0] for r in rows} == {who(i) for i in range(5)}  # not the verifier
    store.put_provider_meta([{"address": who(0), "cid": "cid0", "region": "eu-west", "fetched": 1.0}])
    store.conn.execute(
        "INSERT INTO liveness VALUES (?, 1, '0x', 0, 1700000000, 1700000000.5)", (who(1),)
    )  # as record_heartbeat does
    check(ledger.conn)
    ledger.apply(blocks[3:], logs_of(range(3, 5)), finalized=0, cursor=blocks[4])
    after = {r[0]: r for r in check(ledger.conn)}
    assert after[who(0)][2] == amt(6 * 10**20) and after[who(0)][3] == "eu-west"
    assert after[who(1)][2] == amt(9 * 10**20) and after[who(1)][4] == 1700000000

    ledger.rollback_to(2)  # a reorg undoes blocks 3 and 4
    rolled = {r[0]: r for r in check(ledger.conn)}
    assert rolled[who(0)][2] == amt(10**21) and rolled[who(1)][2] == amt(10**21)
    ledger.rollback_to(0)  # and everything: no provider left
    assert check(ledger.conn) == []

    ledger.apply(blocks[1:], ev.logs, finalized=0, cursor=blocks[4])
    before = check(ledger.conn)
    assert ledger.rebuild() == len(ev.logs)  # deletes and replays every projection
    assert check(ledger.conn) == before

    store.conn.execute("DELETE FROM provider_meta")
    store.conn.execute("DELETE FROM liveness")
    assert {r[3] for r in check(ledger.conn)} == {None} and {r[4] for r in check(ledger.conn)} == {0}
    store.close()
    ledger.close()


def test_migration_fills_the_search_table_of_an_existing_database(tmp_path: Path) -> None:
    only_first = tmp_path / "migrations"
    only_first.mkdir()
    shutil.copy(db.MIGRATIONS_DIR / "0001_core.sql", only_first)
    conn = db.connect(tmp_path / "old.db")
    assert db.migrate(conn, only_first) == [1]
    for i in range(4):
        role = "provider" if i < 3 else "verifier"
        row = (who(i), role, amt(10**21 + i), amt(0), amt(0), 0, amt(i * 10**17), None, amt(0), 1)
        conn.execute(
            "INSERT INTO stakers (address, role, active, locked, thawing, thaw_end, price, metadata_cid, slashed,"
            " updated_block) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
    assert db.migrate(conn) == [v for v, _, _ in db.migration_files()][1:]
    assert [r[0] for r in check(conn)] == sorted(who(i) for i in range(3))
    conn.close()


def test_api_reads_and_heartbeats_while_the_indexer_writes(tmp_path: Path) -> None:
    """The indexer (one writer) applies batches while the API answers searches and stores heartbeats
    through its own writer: no 'database is locked', no 5xx, and the search table stays consistent."""
    path = tmp_path / "node.db"
    ledger = Ledger(path, CONTRACTS, CHAIN_ID)
    keys = [Account.from_key(keccak(text=f"concurrent {i}")) for i in range(4)]
    first = Events()
    for k in keys:
        first.add(1, "Staking", "Staked", account=k.address, role=1, amount=10**21, active=10**21)
    ledger.apply([Block(1, block_hash(1), block_hash(0))], first.logs, finalized=0, cursor=Block(1, block_hash(1), ""))
    now = int(time.time())
    app = create_app(path, CHAIN_ID, CONTRACTS["Staking"], clock=lambda: now, max_skew=300)
    domain = HeartbeatDomain(CHAIN_ID, CONTRACTS["Staking"])
    errors: list[BaseException] = []

    def index() -> None:
        try:
            for n in range(2, 152):
                ev = Events()
                for j in range(3):
                    ev.add(n, "Staking", "Staked", account=who(n * 10 + j), role=1, amount=10**21, active=10**21)
                block = Block(n, block_hash(n), block_hash(n - 1))
                ledger.apply([block], ev.logs, finalized=max(n - 64, 0), cursor=block)
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=index)
    statuses: list[int] = []
    with InProcessClient(app) as client:
        writer.start()
        for i in range(120):
            k = keys[i % 4]
            hb = Heartbeat.create(k.address, "h.example.net:1", i, now - i)  # at most 8 per epoch
            statuses.append(client.post("/heartbeats", json=sign_heartbeat(k, domain, hb).to_json()).status_code)
            statuses.append(client.get("/providers?sort=stake&order=desc&limit=20").status_code)
        writer.join(60)
        final = client.get("/providers?live=true").json()
    assert not writer.is_alive() and errors == []
    assert statuses == [201, 200] * 120
    assert final["total"] == 4  # the heartbeats of the last 90 s make the 4 staked providers live
    assert check(ledger.conn)[0] and len(check(ledger.conn)) == 4 + 150 * 3
    app.state.reader.close()
    app.state.store.close()
    ledger.close()
