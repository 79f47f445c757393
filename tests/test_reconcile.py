"""Reconciliation of the ledger with the chain through view calls, on anvil."""

from __future__ import annotations

from pathlib import Path

from ledger_helpers import index_once

from flownet import demo
from flownet.chain.connect import http_web3
from flownet.devnet import Anvil
from indexer.reconcile import reconcile
from indexer.store import Ledger


def test_reconcile_agrees_and_reports_every_difference(anvil: Anvil, tmp_path: Path) -> None:
    w3 = http_web3(anvil.url)
    result = demo.market_round(w3, say=lambda _: None)
    deployment = result.deployment
    ledger = Ledger(tmp_path / "fullnode.db", deployment.addresses, deployment.chain_id)
    assert index_once(w3, deployment, ledger) > 10
    assert reconcile(ledger, w3, deployment) == []
    # At an earlier block, from the raw logs alone: right after the order opened.
    opened = next(s.block_number for s in result.steps if s.action == "openOrder")
    assert reconcile(ledger, w3, deployment, opened) == []

    order_id = ledger.conn.execute("SELECT order_id FROM orders").fetchone()[0]
    ledger.conn.execute("UPDATE orders SET paid = ? WHERE order_id = ?", ("0" * 29 + "1", order_id))
    wallet = ledger.conn.execute("SELECT account FROM balances WHERE account LIKE 'wallet:%' LIMIT 1").fetchone()[0]
    ledger.conn.execute("UPDATE balances SET balance = '7' WHERE account = ?", (wallet,))
    diffs = reconcile(ledger, w3, deployment)
    assert f"order {order_id}: paid: ledger 0.000000000000000001 FLOW != chain 15 FLOW" in diffs
    assert any(d.startswith(f"balance of {wallet[7:]}: ledger 0.000000000000000007 FLOW != chain") for d in diffs)
    assert any(d.startswith("journal does not balance") for d in diffs)
    assert any(d.startswith(f"balance of {wallet} is 7 but its journal sums to") for d in diffs)


def test_reconcile_empty_ledger(anvil: Anvil, tmp_path: Path) -> None:
    w3 = http_web3(anvil.url)
    result = demo.market_round(w3, say=lambda _: None)
    ledger = Ledger(tmp_path / "empty.db", result.deployment.addresses, result.deployment.chain_id)
    assert reconcile(ledger, w3, result.deployment) == ["the ledger is empty: nothing indexed yet"]


def test_reconcile_checks_certificates(anvil: Anvil, tmp_path: Path) -> None:
    from conftest import new_account

    from flownet.chain.tx import Sender

    w3 = http_web3(anvil.url)
    deployment = demo.market_round(w3, say=lambda _: None).deployment
    owner = new_account(w3)
    registry = deployment.contract(w3, "CertificateRegistry")
    sender = Sender(w3, owner)
    expiry = w3.eth.get_block("latest")["timestamp"] + 86_400
    for n in (1, 2):
        cert = bytes([n]) * 32
        sender.transact(registry.functions.register(cert, bytes([9]) * 32, f"bafkreipem{n}", expiry), "register")
    sender.transact(registry.functions.revoke(bytes([1]) * 32, 1, 0), "revoke")
    ledger = Ledger(tmp_path / "certs.db", deployment.addresses, deployment.chain_id)
    index_once(w3, deployment, ledger)
    rows = ledger.conn.execute("SELECT cert_hash, revoked FROM certificates ORDER BY cert_hash").fetchall()
    assert [(r[0][:4], r[1]) for r in rows] == [("0x01", 1), ("0x02", 0)]
    assert reconcile(ledger, w3, deployment) == []
    ledger.conn.execute("UPDATE certificates SET revoked = 0")
    diffs = reconcile(ledger, w3, deployment)
    assert len(diffs) == 1 and diffs[0].startswith("certificate 0x0101") and "revoked False" in diffs[0]
