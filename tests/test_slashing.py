"""SlashingManager and TrustRegistry bindings on eth-tester and anvil: digests, equivocation, disputes, trust."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import PRICE, new_account
from eth_account import Account
from ledger_helpers import index_once
from web3 import Web3

from flownet.chain.deploy import TOKEN_UNIT, DeployConfig, Deployment, deploy
from flownet.chain.market import FlowNet, Role
from flownet.chain.slashing import KINDS, NEUTRAL_SCORE, Slashing, Trust, parse_kind
from flownet.chain.tx import Sender
from flownet.core.heartbeat import Heartbeat, HeartbeatDomain, sign_heartbeat
from flownet.errors import ConfigError, TransactionFailed
from indexer.reconcile import reconcile
from indexer.store import Ledger

PROVIDER_STAKE = 10_000 * TOKEN_UNIT
VERIFIER_STAKE = 1_000 * TOKEN_UNIT
DAY = 24 * 3600


def advance(w3: Web3, seconds: int) -> None:
    """Move the chain's clock forward by `seconds` and mine a block, on either backend."""
    tester = getattr(w3.provider, "ethereum_tester", None)
    if tester is not None:
        tester.time_travel(w3.eth.get_block("latest")["timestamp"] + seconds)
        tester.mine_blocks()
        return
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@dataclass
class Setup:
    w3: Web3
    deployment: Deployment
    owner: FlowNet
    provider: FlowNet
    client: FlowNet
    verifiers: list[FlowNet]
    reporter: FlowNet

    def slashing(self, who: FlowNet | None = None) -> Slashing:
        return Slashing(self.w3, self.deployment, (who or self.reporter).account)

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def stake_of(self, who: FlowNet) -> int:
        info = self.owner.staking.functions.stakeOf(who.address).call()
        return int(info[0]) + int(info[3])  # active + thawing


@pytest.fixture
def setup(w3: Web3) -> Setup:
    deployer = new_account(w3)
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig.devnet())
    owner = FlowNet(w3, deployment, deployer)
    people = [FlowNet(w3, deployment, new_account(w3)) for _ in range(6)]
    for person in people:
        owner.transfer(person.address, 20_000 * TOKEN_UNIT)
        person.approve(person.market.address)
        person.approve(person.staking.address)
    provider, client, v1, v2, v3, reporter = people
    provider.stake(Role.PROVIDER, PROVIDER_STAKE)
    provider.set_offer(PRICE, "bafkreitestprovidermetadata")
    for v in (v1, v2, v3):
        v.stake(Role.VERIFIER, VERIFIER_STAKE)
    return Setup(w3, deployment, owner, provider, client, [v1, v2, v3], reporter)


def test_digests_match_contract(setup: Setup) -> None:
    s = setup.slashing()
    provider = setup.provider.address
    ours = s.attestation_digest(provider, 7, KINDS["latency"], "bafkreievidence")
    theirs = s.contract.functions.attestationDigest(provider, 7, 1, "bafkreievidence").call()
    assert ours == bytes(theirs) and len(ours) == 32
    order_id = bytes(range(32))
    ours = s.service_proof_digest(order_id, 9, 12345)
    assert ours == bytes(s.contract.functions.serviceProofDigest(order_id, 9, 12345).call())
    signature = s.sign_attestation(setup.verifiers[0].account, provider, 7, 1, "bafkreievidence")
    assert len(signature) == 65 and signature[64] in (27, 28)
    assert Account._recover_hash(s.attestation_digest(provider, 7, 1, "bafkreievidence"), signature=signature) == (
        setup.verifiers[0].address
    )
    assert s.epoch_seconds() == 30
    assert s.current_epoch() == setup.now() // 30


def test_parse_kind() -> None:
    assert parse_kind("Throughput") == 2 and parse_kind(3) == 3 and parse_kind("0") == 0
    with pytest.raises(ConfigError, match="'lag'"):
        parse_kind("lag")
    with pytest.raises(ConfigError, match="4"):
        parse_kind(4)


def test_equivocation_slash_pays_reporter_burns_rest_and_halves_score(setup: Setup) -> None:
    s = setup.slashing()
    provider = setup.provider
    domain = HeartbeatDomain(setup.deployment.chain_id, setup.deployment.addresses["Staking"])
    now = setup.now()
    a = sign_heartbeat(provider.account, domain, Heartbeat.create(provider.address, "tls://a:443", 10, now))
    b = sign_heartbeat(provider.account, domain, Heartbeat.create(provider.address, "tls://b:443", 10, now))
    supply = int(setup.owner.token.functions.totalSupply().call())
    reporter_before, stake_before = setup.reporter.balance(), setup.stake_of(provider)
    sent = s.slash_equivocation(a, b, "bafkreiequivocation")
    args = s.events(sent, "EquivocationSlashed")[0]
    slashed = stake_before // 10  # slash_bps 1000
    assert (args["slashed"], args["reward"], args["burned"]) == (slashed, slashed // 2, slashed - slashed // 2)
    assert setup.reporter.balance() - reporter_before == slashed // 2
    assert setup.stake_of(provider) == stake_before - slashed
    assert supply - int(setup.owner.token.functions.totalSupply().call()) == slashed - slashed // 2
    assert s.is_epoch_slashed(provider.address, a.heartbeat.epoch)
    trust = Trust(setup.w3, setup.deployment)
    assert trust.score_of(provider.address) == NEUTRAL_SCORE // 2
    with pytest.raises(TransactionFailed, match="SlashingEpochAlreadySlashed"):
        s.slash_equivocation(a, b, "bafkreiequivocation2")
    with pytest.raises(TransactionFailed, match="SlashingNotEquivocation"):
        s.slash_equivocation(a, a, "bafkreiequivocation3")


def test_equivocation_of_an_unstaked_key_is_refused_and_consumes_nothing(setup: Setup) -> None:
    """Attack 2: conflicting heartbeats of a key with nothing at stake used to "slash" zero and burn the
    evidence CID everywhere; now they are refused, and the same CID still serves a real dispute."""
    s = setup.slashing()
    domain = HeartbeatDomain(setup.deployment.chain_id, setup.deployment.addresses["Staking"])
    nobody = Account.create()
    now = setup.now()
    a = sign_heartbeat(nobody, domain, Heartbeat.create(nobody.address, "tls://a:443", 1, now))
    b = sign_heartbeat(nobody, domain, Heartbeat.create(nobody.address, "tls://b:443", 1, now))
    cid = "bafkreiverifiersevidence"
    with pytest.raises(TransactionFailed, match=f"nothing can be taken from {nobody.address}.*SlashingNothingToSlash"):
        s.slash_equivocation(a, b, cid)
    verifier = setup.verifiers[2]  # staked, but as a verifier: not a provider's heartbeat
    a = sign_heartbeat(verifier.account, domain, Heartbeat.create(verifier.address, "tls://a:443", 1, now))
    b = sign_heartbeat(verifier.account, domain, Heartbeat.create(verifier.address, "tls://b:443", 1, now))
    with pytest.raises(TransactionFailed, match="SlashingNothingToSlash"):
        s.slash_equivocation(a, b, cid)
    assert not s.is_epoch_slashed(nobody.address, a.heartbeat.epoch)
    epoch = s.current_epoch()
    dispute_id, _ = s.open_dispute(setup.provider.address, epoch, 0, cid, _attest(setup, s, epoch, 0, cid))
    assert s.dispute(dispute_id).status == "open" and s.dispute(dispute_id).evidence_cid == cid


def _attest(setup: Setup, s: Slashing, epoch: int, kind: int, cid: str, n: int = 2, first: int = 0) -> list[bytes]:
    accusers = setup.verifiers[first : first + n]
    return [s.sign_attestation(v.account, setup.provider.address, epoch, kind, cid) for v in accusers]


def test_dispute_opened_then_executed_after_window(setup: Setup) -> None:
    s = setup.slashing()
    epoch = s.current_epoch()
    cid = "bafkreidisputeevidence"
    with pytest.raises(TransactionFailed, match="SlashingTooFewAttestations"):
        s.open_dispute(setup.provider.address, epoch, 0, cid, _attest(setup, s, epoch, 0, cid, n=1))
    dispute_id, _ = s.open_dispute(setup.provider.address, epoch, 0, cid, _attest(setup, s, epoch, 0, cid))
    assert dispute_id == 1
    view = s.dispute(dispute_id)
    assert view.status == "open" and view.kind == 0 and view.epoch == epoch and view.evidence_cid == cid
    assert view.verifiers == (setup.verifiers[0].address, setup.verifiers[1].address)
    assert view.provider == setup.provider.address and view.challenge_ends > setup.now()
    with pytest.raises(TransactionFailed, match="SlashingChallengeWindowOpen"):
        s.execute(dispute_id)
    due = PROVIDER_STAKE // 10  # slash_bps 1000, below each verifier's free stake
    assert view.due == due and view.remaining == 2 and view.struck == ()
    held = [int(setup.owner.staking.functions.heldOf(a).call()) for a in (setup.provider.address, *view.verifiers)]
    assert held == [due, due, due]
    advance(setup.w3, 61)
    stake_before = setup.stake_of(setup.provider)
    balances = [v.balance() for v in setup.verifiers[:2]]
    sent = s.execute(dispute_id)
    args = s.events(sent, "DisputeExecuted")[0]
    assert stake_before // 10 == due
    # a quorum dispute pays no reward: all of the slash is burned, the accusers gain nothing
    assert (args["slashed"], args["reward"], args["rewardEach"], args["burned"]) == (due, 0, 0, due)
    assert [v.balance() for v in setup.verifiers[:2]] == balances
    assert setup.stake_of(setup.provider) == stake_before - due
    held = [int(setup.owner.staking.functions.heldOf(a).call()) for a in (setup.provider.address, *view.verifiers)]
    assert held == [0, 0, 0]
    assert s.dispute(dispute_id).status == "executed"
    assert Trust(setup.w3, setup.deployment).score_of(setup.provider.address) == 250


def test_only_an_accusers_own_proof_strikes_it(setup: Setup) -> None:
    """Attack 1: a proof signed by any client of the provider (here an order of a client the provider could
    control) no longer rebuts; an accuser's own proof for the epoch strikes that accuser and burns its bond,
    and the dispute is rebutted once fewer than the quorum remain."""
    s = setup.slashing()
    v1, v2 = setup.verifiers[:2]
    sybil_order, _ = setup.client.open_order(setup.provider.address, 100 * TOKEN_UNIT, DAY, PRICE)
    probe_order, _ = v1.open_order(setup.provider.address, 100 * TOKEN_UNIT, DAY, PRICE)
    epoch = s.current_epoch()
    cid = "bafkreirebutted"
    dispute_id, _ = s.open_dispute(setup.provider.address, epoch, 3, cid, _attest(setup, s, epoch, 3, cid))
    due = s.dispute(dispute_id).due
    provider = Slashing(setup.w3, setup.deployment, setup.provider.account)
    sybil = s.sign_service_proof(setup.client.account, sybil_order.order_id, epoch, 5_000_000)
    with pytest.raises(
        TransactionFailed, match=f"{setup.client.address} is not an accuser.*SlashingProofNotFromAccuser"
    ):
        provider.rebut(dispute_id, sybil_order, 5_000_000, sybil)
    forged = s.sign_service_proof(setup.reporter.account, probe_order.order_id, epoch, 5_000_000)
    with pytest.raises(TransactionFailed, match="SlashingWrongSigner"):
        provider.rebut(dispute_id, probe_order, 5_000_000, forged)
    stakes = [setup.stake_of(v) for v in (v1, v2)]
    provider_stake = setup.stake_of(setup.provider)
    supply = int(setup.owner.token.functions.totalSupply().call())
    own = s.sign_service_proof(v1.account, probe_order.order_id, epoch, 5_000_000)
    sent = provider.rebut(dispute_id, probe_order, 5_000_000, own)
    struck = s.events(sent, "AccuserStruck")[0]
    assert (struck["verifier"], struck["penalty"], struck["remaining"]) == (v1.address, due, 1)
    assert s.events(sent, "DisputeRebutted")[0]["remaining"] == 1
    assert [setup.stake_of(v) for v in (v1, v2)] == [stakes[0] - due, stakes[1]]  # only the liar pays
    assert supply - int(setup.owner.token.functions.totalSupply().call()) == due  # its bond is burned
    assert setup.stake_of(setup.provider) == provider_stake
    view = s.dispute(dispute_id)
    assert (view.status, view.struck, view.remaining) == ("rebutted", (v1.address,), 1)
    held = [
        int(setup.owner.staking.functions.heldOf(a).call()) for a in (setup.provider.address, v1.address, v2.address)
    ]
    assert held == [0, 0, 0]
    advance(setup.w3, 61)
    with pytest.raises(TransactionFailed, match="SlashingDisputeNotOpen"):
        s.execute(dispute_id)


def test_trust_scores_and_scorers(setup: Setup) -> None:
    authority = Trust(setup.w3, setup.deployment, setup.owner.account)
    scorer = setup.reporter
    subject = setup.provider.address
    assert authority.score_of(subject) == NEUTRAL_SCORE
    with pytest.raises(TransactionFailed, match="TrustNotScorer"):
        Trust(setup.w3, setup.deployment, scorer.account).set_score(subject, 0, 900, "bafkreireason")
    authority.set_scorer(0, scorer.address, True)
    assert authority.is_scorer(0, scorer.address)
    Trust(setup.w3, setup.deployment, scorer.account).set_score(subject, 0, 900, "bafkreireason")
    assert authority.score_of(subject) == 900 and authority.score_of(subject, 1) == NEUTRAL_SCORE
    with pytest.raises(ConfigError, match="only read"):
        Trust(setup.w3, setup.deployment).set_score(subject, 0, 1, "bafkreireason")


@pytest.mark.parametrize("w3", ["anvil"], indirect=True)
def test_indexed_slashes_journal_and_reconcile(setup: Setup, tmp_path: Path) -> None:
    """Index a rebuttal, an executed dispute and an equivocation slash from a real chain: the journal moves
    stake -> manager -> reporter and -> burned, and the ledger reconciles with the chain's views."""
    s = setup.slashing()
    v1 = setup.verifiers[0]
    order, _ = v1.open_order(setup.provider.address, 100 * TOKEN_UNIT, DAY, PRICE)
    epoch = s.current_epoch()
    rebutted, _ = s.open_dispute(setup.provider.address, epoch, 1, "bafkreia", _attest(setup, s, epoch, 1, "bafkreia"))
    s.rebut(rebutted, order, 1, s.sign_service_proof(v1.account, order.order_id, epoch, 1))
    # v1 lost its whole stake to its bond; v2 and v3 accuse next
    b_sigs = _attest(setup, s, epoch, 0, "bafkreib", first=1)
    executed, _ = s.open_dispute(setup.provider.address, epoch, 0, "bafkreib", b_sigs)
    advance(setup.w3, 61)
    s.execute(executed)
    domain = HeartbeatDomain(setup.deployment.chain_id, setup.deployment.addresses["Staking"])
    now = setup.now()
    a, b = (
        sign_heartbeat(setup.provider.account, domain, Heartbeat.create(setup.provider.address, e, 1, now))
        for e in ("tls://a:1", "tls://b:1")
    )
    sent = s.slash_equivocation(a, b, "bafkreic")
    ledger = Ledger(tmp_path / "fullnode.db", setup.deployment.addresses, setup.deployment.chain_id)
    index_once(setup.w3, setup.deployment, ledger)
    assert reconcile(ledger, setup.w3, setup.deployment) == []
    statuses = [tuple(r) for r in ledger.conn.execute("SELECT id, status FROM disputes ORDER BY id")]
    assert statuses == [(rebutted, "rebutted"), (executed, "executed")]
    strikes = ledger.conn.execute("SELECT struck, remaining, due FROM disputes WHERE id = ?", (rebutted,)).fetchone()
    assert [x["verifier"] for x in json.loads(strikes[0])] == [v1.address] and strikes[1] == 1
    assert json.loads(strikes[0])[0]["penalty"] == str(int(strikes[2]))
    held = ledger.conn.execute("SELECT held FROM stakers WHERE address = ?", (setup.provider.address,)).fetchone()
    assert int(held[0]) == 0
    manager, reporter = s.address, setup.reporter.address
    entries = [
        (r["kind"], r["debit"], r["credit"], int(r["amount"]))
        for r in ledger.conn.execute(
            "SELECT * FROM journal WHERE block_number = ? ORDER BY log_index, seq", (sent.block_number,)
        )
    ]
    slashed = s.events(sent, "EquivocationSlashed")[0]
    assert entries == [
        ("slash", f"stake:active:{setup.provider.address}", f"wallet:{manager}", slashed["slashed"]),
        ("transfer", f"wallet:{manager}", f"wallet:{reporter}", slashed["reward"]),
        ("burn", f"wallet:{manager}", "burned", slashed["burned"]),
    ]
    routes = [r[0] for r in ledger.conn.execute("SELECT route FROM slashes ORDER BY block_number")]
    assert routes == ["dispute", "equivocation"]
    score = ledger.conn.execute("SELECT score FROM scores WHERE subject = ?", (setup.provider.address,)).fetchone()
    assert score[0] == 125 == Trust(setup.w3, setup.deployment).score_of(setup.provider.address)
    # Tampering shows up as named differences.
    ledger.conn.execute("UPDATE scores SET score = 999")
    ledger.conn.execute("UPDATE disputes SET status = 'open' WHERE id = ?", (executed,))
    ledger.conn.execute("UPDATE balances SET balance = '0' WHERE account = 'burned'")
    diffs = reconcile(ledger, setup.w3, setup.deployment)
    assert f"trust score of {setup.provider.address} in domain 0: ledger 999 != chain 125" in diffs
    assert f"dispute {executed}: status ledger open != chain code 3" in diffs
    assert any(d.startswith("token supply (minted - burned)") for d in diffs)


@pytest.mark.parametrize("w3", ["anvil"], indirect=True)  # index_once needs a real eth_getLogs
def test_provider_rebuts_with_a_proof_from_the_tunnel(setup: Setup, tmp_path: Path) -> None:
    """Traffic through the in-process tunnel leaves a client-signed ServiceProof in the provider's book;
    the provider's Defender finds the open dispute about that epoch in its index and rebuts it with it."""
    import asyncio

    from tunnel_helpers import EchoServer, Tunnel, make_node, run, socks_connect

    from flownet.tunnel.defence import Defender

    s = setup.slashing()
    chain_id = setup.deployment.chain_id
    prober = setup.verifiers[0]  # verifiers probe as paying clients
    order, _ = prober.open_order(setup.provider.address, 100 * TOKEN_UNIT, DAY, PRICE)
    chain_now = setup.now()
    t = Tunnel(
        tmp_path,
        slashing_manager=s.address,
        epoch_seconds=s.epoch_seconds(),
        client_clock=lambda: chain_now,  # the client's epochs follow the chain's clock
        chain_id=chain_id,
        provider=make_node(chain_id=chain_id, account=setup.provider.account),
        client=make_node(chain_id=chain_id, account=prober.account),
    )
    t.order = order
    t.standard()

    async def main() -> None:
        server = await t.start_provider()
        client = await t.start_client()
        async with EchoServer() as echo:
            status, reader, writer = await socks_connect(client.config.listen_port, "127.0.0.1", echo.port)
            assert status == 0
            writer.write(b"p" * 30_000)
            assert await asyncio.wait_for(reader.readexactly(30_000), 10) == b"p" * 30_000
            writer.close()
            await client.stop()
        await server.stop()

    run(main(), 60)
    epoch = s.current_epoch()
    assert epoch == chain_now // s.epoch_seconds()
    proof = t.book.proof(setup.provider.address, epoch)
    assert proof is not None and proof.order == order and proof.bytes_served >= 60_000
    cid = "bafkreiunfairdispute"
    dispute_id, _ = s.open_dispute(setup.provider.address, epoch, 0, cid, _attest(setup, s, epoch, 0, cid))
    ledger = Ledger(tmp_path / "provider-index.db", setup.deployment.addresses, chain_id)
    index_once(setup.w3, setup.deployment, ledger)
    defender = Defender(
        t.book,
        Slashing(setup.w3, setup.deployment, setup.provider.account),
        setup.provider.address,
        index_path=ledger.path,
        clock=lambda: float(setup.now()),
    )
    assert defender.open_disputes() == [(dispute_id, epoch, s.dispute(dispute_id).challenge_ends)]
    stakes = [setup.stake_of(v) for v in setup.verifiers[:2]]
    due = s.dispute(dispute_id).due
    assert defender.check_once() == [dispute_id]
    assert s.dispute(dispute_id).status == "rebutted"
    assert [setup.stake_of(v) for v in setup.verifiers[:2]] == [stakes[0] - due, stakes[1]]
    assert defender.check_once() == []  # done, even before the index learns of it
    # a dispute by accusers whose proofs the book does not hold cannot be rebutted (only the prober's is there)
    cid2 = "bafkreinoproof"
    keys = setup.verifiers[1:3]
    sigs = [s.sign_attestation(v.account, setup.provider.address, epoch, 1, cid2) for v in keys]
    other, _ = s.open_dispute(setup.provider.address, epoch, 1, cid2, sigs)
    with pytest.raises(
        ConfigError, match=f"no service proof for epoch {epoch} signed by an accuser of dispute {other}"
    ):
        defender.rebut(other)
    ledger.close()
    fresh = Ledger(tmp_path / "provider-index-2.db", setup.deployment.addresses, chain_id)
    index_once(setup.w3, setup.deployment, fresh)  # the index now has the first as rebutted, the second open
    defender.index_path = fresh.path
    assert [d[0] for d in defender.open_disputes()] == [other]
    assert defender.check_once() == []
    assert s.dispute(other).status == "open"
    fresh.close()
