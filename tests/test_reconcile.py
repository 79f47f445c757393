"""Reconciliation of the ledger with the chain through view calls, on anvil."""

from __future__ import annotations

from pathlib import Path

from ledger_helpers import index_once

from flownet import demo
from flownet.certstatus import lookup, verdict
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


def test_hook_revocations_are_indexed(anvil: Anvil, tmp_path: Path) -> None:
    """A slash and a full unbond revoke through Staking's hook: the registry emits one CertificateRevoked
    per certificate inside the Staking transaction, and the certificates table shows each with its reason."""
    from conftest import new_account

    from flownet.chain.deploy import TOKEN_UNIT, DeployConfig, deploy
    from flownet.chain.tx import Sender
    from flownet.core.heartbeat import Heartbeat, HeartbeatDomain, sign_heartbeat

    w3 = http_web3(anvil.url)
    deployer = new_account(w3)  # also the reporter of the equivocation
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig.devnet(thaw_period=60, challenge_window=60))
    token, staking, registry = (deployment.contract(w3, n) for n in ("FlowToken", "Staking", "CertificateRegistry"))
    owner = Sender(w3, deployer)
    expiry = w3.eth.get_block("latest")["timestamp"] + 86_400
    slashed_node, unbonding_node, partial_node = (new_account(w3) for _ in range(3))
    certs: dict[str, list[bytes]] = {}
    for n, account in enumerate((slashed_node, unbonding_node, partial_node)):
        node = Sender(w3, account)
        amount = 2_000 * TOKEN_UNIT
        owner.transact(token.functions.transfer(account.address, amount), "fund")
        node.transact(token.functions.approve(staking.address, amount), "approve")
        node.transact(staking.functions.stake(1, amount), "stake")
        certs[account.address] = [bytes([16 * n + i + 1]) * 32 for i in range(2)]
        for i, cert in enumerate(certs[account.address]):
            node.transact(registry.functions.register(cert, bytes([9]) * 32, f"bafkreipem{n}{i}", expiry), "register")

    # The slashed node equivocates: two heartbeats of one epoch naming different endpoints.
    now = w3.eth.get_block("latest")["timestamp"]
    domain = HeartbeatDomain(w3.eth.chain_id, staking.address)
    signed = [
        sign_heartbeat(slashed_node, domain, Heartbeat.create(slashed_node.address, endpoint, 100, now))
        for endpoint in ("203.0.113.7:8443", "198.51.100.9:8443")
    ]
    args = [
        x
        for s in signed
        for x in (
            (
                s.heartbeat.provider,
                s.heartbeat.epoch,
                s.heartbeat.endpoint_hash,
                s.heartbeat.load,
                s.heartbeat.timestamp,
            ),
            s.signature,
        )
    ]
    slashing = deployment.contract(w3, "SlashingManager")
    sent = owner.transact(slashing.functions.slashEquivocation(*args, "bafkreiequivocation"), "slashEquivocation")
    Sender(w3, unbonding_node).transact(staking.functions.requestUnstake(2_000 * TOKEN_UNIT), "requestUnstake")
    Sender(w3, partial_node).transact(staking.functions.requestUnstake(1_000 * TOKEN_UNIT), "requestUnstake")
    w3.provider.make_request("evm_increaseTime", [61])
    w3.provider.make_request("evm_mine", [])
    withdrawn = Sender(w3, unbonding_node).transact(staking.functions.withdraw(), "withdraw")
    Sender(w3, partial_node).transact(staking.functions.withdraw(), "withdraw")

    ledger = Ledger(tmp_path / "hook.db", deployment.addresses, deployment.chain_id)
    index_once(w3, deployment, ledger)
    rows = {
        r[0]: r[1:]
        for r in ledger.conn.execute("SELECT cert_hash, owner, revoked, reason, revoked_block FROM certificates")
    }
    assert len(rows) == 6

    def row(cert: bytes) -> tuple[str, int, int | None, int | None]:
        return tuple(rows["0x" + cert.hex()])  # type: ignore[return-value]

    for cert in certs[slashed_node.address]:
        assert row(cert) == (slashed_node.address, 1, 4, sent.block_number)  # Slashed
    for cert in certs[unbonding_node.address]:
        assert row(cert) == (unbonding_node.address, 1, 5, withdrawn.block_number)  # Unbonded
    for cert in certs[partial_node.address]:
        assert row(cert) == (partial_node.address, 0, None, None)
    assert reconcile(ledger, w3, deployment) == []

    # Issue 11, finding 5: the fully unbonded node registers a new certificate at once. The chain's
    # isValid and the ledger's verdict agree that it does not count (reconcile compares them), and the
    # slashed node, still bonded, may register a fresh one that does.
    late = bytes([0xEE]) * 32
    Sender(w3, unbonding_node).transact(
        registry.functions.register(late, bytes([9]) * 32, "bafkreipemlate", expiry), "register"
    )
    fresh = bytes([0xEF]) * 32
    Sender(w3, slashed_node).transact(
        registry.functions.register(fresh, bytes([9]) * 32, "bafkreipemfresh", expiry), "register"
    )
    ledger = Ledger(tmp_path / "hook-later.db", deployment.addresses, deployment.chain_id)
    index_once(w3, deployment, ledger)
    now = w3.eth.get_block("latest")["timestamp"]
    assert not registry.functions.isValid(late, unbonding_node.address).call()
    assert verdict(ledger.conn, lookup(ledger.conn, late, unbonding_node.address), now) == "unstaked"
    assert registry.functions.isValid(fresh, slashed_node.address).call()
    assert verdict(ledger.conn, lookup(ledger.conn, fresh, slashed_node.address), now) == "valid"
    assert reconcile(ledger, w3, deployment) == []
    # A ledger that forgot the unbond would call the late certificate valid: reconcile says so.
    ledger.conn.execute("UPDATE stakers SET thawing = ? WHERE address = ?", ("1".zfill(30), unbonding_node.address))
    expected = f"certificate 0x{late.hex()} of {unbonding_node.address}: ledger says valid != chain isValid False"
    assert expected in reconcile(ledger, w3, deployment)
