"""`flownet cert register / revoke / status` on a real anvil devnet, with a real indexer run in between.

The journey: cert new -> register -> index -> status valid -> revoke -> (stale index still says valid)
-> index -> status revoked with its reason; plus every refusal that must happen before a transaction;
a front-runner's copy of a register call that cannot squat the certificate (issue 11, finding 4); and a
fully unbonded provider whose new certificate does not count (finding 5).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from indexer_helpers import close_all, make_indexer

from flownet.chain.connect import http_web3
from flownet.chain.deploy import Deployment
from flownet.chain.registry import Registry, RevocationReason
from flownet.cli import cli
from flownet.cli.cert import NOT_VALID_EXIT
from flownet.devnet import DevnetState, read_state
from flownet.pki import inspect

ENV = {"FLOWNET_SCRYPT_N": "1024", "FLOWNET_PASSWORD": "cert-cli-test-password"}


class Shell:
    """Runs `flownet` commands in one FLOWNET_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(cli, ["--home", str(self.home), *args], env=ENV, catch_exceptions=False)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 0, f"flownet {' '.join(args)} exited {result.exit_code}:\n{result.output}"
        return result.output

    def fails(self, code: int, message: str, *args: str) -> str:
        """Run a command that must exit with `code` and one `error:` line containing `message`."""
        result = self(*args)
        assert result.exit_code == code, f"expected exit {code}, got {result.exit_code}:\n{result.output}"
        assert "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, result.output
        assert message in errors[0], errors[0]
        return result.output


@pytest.fixture(scope="module")
def sh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    shell = Shell(tmp_path_factory.mktemp("flownet-home"))
    for name in ("alice", "bob", "carol"):
        shell.ok("wallet", "new", name)
    shell.ok("devnet", "start")
    try:
        yield shell
    finally:
        close_all()
        shell.ok("devnet", "stop")


def _state(sh: Shell) -> DevnetState:
    state = read_state(sh.home / "devnet")
    assert state is not None
    return state


def _index(sh: Shell, db: Path) -> int:
    """Run the indexer over the devnet up to its head into `db`; returns the cursor block."""
    state = _state(sh)
    indexer = make_indexer(state.rpc_url, Deployment.load(Path(state.manifest)), db)
    result = indexer.step()
    assert result.cursor == result.head, result
    indexer.ledger.close()
    indexer.rpc.close()
    assert result.cursor is not None
    return result.cursor


def _field(output: str, name: str) -> str:
    match = re.search(rf"^{name} +(.+)$", output, re.MULTILINE)
    assert match, f"no {name!r} line in:\n{output}"
    return match.group(1).strip()


def _chain_marks(sh: Shell, address: str) -> tuple[int, int]:
    w3 = http_web3(_state(sh).rpc_url)
    return w3.eth.block_number, w3.eth.get_transaction_count(address)


def test_register_index_status_revoke_round_trip(sh: Shell, tmp_path: Path) -> None:
    alice = sh.ok("wallet", "address", "alice").strip()
    db = tmp_path / "index.sqlite"
    sh.fails(2, "flownet provider serve", "cert", "status", "--db", str(db), "0x" + "00" * 32)

    sh.ok("cert", "new", "--wallet", "alice", "--days", "30")
    crt = sh.home / "certs" / "alice.crt.pem"
    info = inspect(x509.load_pem_x509_certificate(crt.read_bytes()))
    cert_hash = "0x" + info.cert_hash.hex()

    out = sh.ok("cert", "register", "--wallet", "alice")  # PATH defaults to the wallet's certificate
    assert _field(out, "certificate") == f"{cert_hash} registered by {alice}"
    assert _field(out, "key hash") == "0x" + info.key_hash.hex()
    cid = _field(out, "pem cid")
    assert re.match(r"^0x[0-9a-f]{64} \(block \d+, gas [\d,]+\)$", _field(out, "tx"))
    # The PEM is in the blob store under its CID, byte for byte.
    assert sh.ok("blob", "get", cid).encode() == crt.read_bytes()
    # And the chain agrees.
    state = _state(sh)
    registry = Registry(http_web3(state.rpc_url), Deployment.load(Path(state.manifest)))
    on_chain = registry.status(info.cert_hash, alice)
    assert (on_chain.owner, on_chain.key_hash, on_chain.not_after, on_chain.revoked) == (
        alice,
        info.key_hash,
        info.not_after,
        False,
    )

    cursor = _index(sh, db)
    for cert in (cert_hash, str(crt)):
        status = sh.ok("cert", "status", "--db", str(db), cert)
        assert _field(status, "status") == "valid"
        assert _field(status, "owner") == alice
        assert _field(status, "pem cid") == cid
        assert _field(status, "not after").endswith(f"({info.not_after})")
        assert _field(status, "index") == f"{db} at block {cursor} (the head when it last synced)"
        assert "revoked" not in status

    sh.fails(4, "is already registered by", "cert", "register", "--wallet", "alice", str(crt))

    compromised = int(time.time()) - 3600
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(compromised))
    out = sh.ok("cert", "revoke", "--wallet", "alice", "--reason", "key-compromise", "--compromised-at", iso, cert_hash)
    assert _field(out, "certificate") == f"{cert_hash} revoked (key-compromise)"
    assert _field(out, "compromised").endswith(f"({compromised})")
    assert registry.status(info.cert_hash, alice).reason == RevocationReason.KEY_COMPROMISE

    # No RPC: until the index catches up, status still reports what the index holds.
    assert _field(sh.ok("cert", "status", "--db", str(db), cert_hash), "status") == "valid"

    _index(sh, db)
    for cert in (cert_hash, str(crt)):
        out = sh.fails(NOT_VALID_EXIT, "revoked", "cert", "status", "--db", str(db), cert)
        assert _field(out, "status") == "revoked"
        assert _field(out, "owner") == alice
        assert re.search(r"^revoked +.+ in block \d+, reason key-compromise$", out, re.MULTILINE), out
        assert _field(out, "compromised").endswith(f"({compromised})")

    sh.fails(4, "was already revoked at", "cert", "revoke", "--wallet", "alice", str(crt))

    unknown = "0x" + "ab" * 32
    out = sh.fails(NOT_VALID_EXIT, "is unregistered", "cert", "status", "--db", str(db), unknown)
    assert _field(out, "status") == "unregistered"
    assert "owner" not in out


def test_register_refuses_another_wallets_certificate_before_any_transaction(sh: Shell) -> None:
    alice = sh.ok("wallet", "address", "alice").strip()
    bob = sh.ok("wallet", "address", "bob").strip()
    sh.ok("cert", "new", "--wallet", "bob")
    bob_crt = sh.home / "certs" / "bob.crt.pem"
    before = _chain_marks(sh, alice)
    out = sh.fails(2, f"names wallet {bob}, but wallet 'alice' is {alice}", "cert", "register", "--wallet", "alice",
                   str(bob_crt))  # fmt: skip
    assert "tx " not in out
    assert _chain_marks(sh, alice) == before


def test_register_refuses_a_certificate_for_another_chain(sh: Shell) -> None:
    carol = sh.ok("wallet", "address", "carol").strip()
    sh.fails(2, "has no certificate at", "cert", "register", "--wallet", "carol")
    sh.ok("cert", "new", "--wallet", "carol", "--chain-id", "5")
    before = _chain_marks(sh, carol)
    sh.fails(2, "names chain 5, but the manifest", "cert", "register", "--wallet", "carol")
    assert _chain_marks(sh, carol) == before


def test_bad_input_is_named(sh: Shell, tmp_path: Path) -> None:
    hash_ = "0x" + "cd" * 32
    sh.fails(2, "'slashed' is not one an owner may give", "cert", "revoke", "--wallet", "alice", "--reason",
             "slashed", hash_)  # fmt: skip
    sh.fails(2, "--compromised-at 'yesterday'", "cert", "revoke", "--wallet", "alice", "--compromised-at",
             "yesterday", hash_)  # fmt: skip
    sh.fails(2, "'0x1234' is neither a certificate hash", "cert", "status", "0x1234")
    sh.fails(2, "no certificate file 'missing.pem'", "cert", "status", "missing.pem")
    not_pem = tmp_path / "junk.pem"
    not_pem.write_text("hello")
    sh.fails(2, "is not a PEM certificate", "cert", "register", "--wallet", "alice", str(not_pem))
    sh.fails(2, "no local index at", "cert", "status", hash_)  # default --db: $FLOWNET_HOME/index.sqlite
    not_db = tmp_path / "not.sqlite"
    not_db.write_text("not a database")
    sh.fails(2, "is not a FlowNet index", "cert", "status", "--db", str(not_db), hash_)
    # Revoking what was never registered reaches the contract, whose refusal is a sentence.
    sh.fails(
        4,
        f"certificate {hash_[:18]}… is not registered [CertificateNotRegistered]",
        "cert",
        "revoke",
        "--wallet",
        "alice",
        hash_,
    )


def test_provider_rebut_refuses_what_it_cannot_defend(sh: Shell) -> None:
    """`flownet provider rebut` (its happy path: tests/test_slashing.py) names why it cannot rebut."""
    from flownet.tunnel.book import PaymentBook

    carol = sh.ok("wallet", "address", "carol").strip()
    sh.fails(2, "no payment book", "provider", "rebut", "1", "--wallet", "carol")
    PaymentBook(sh.home / "provider" / f"{carol}.payments.sqlite").close()
    sh.fails(2, "dispute 1 is none, not open", "provider", "rebut", "1", "--wallet", "carol")


def test_front_runner_copy_cannot_squat_the_certificate(sh: Shell, tmp_path: Path) -> None:
    """Issue 11, finding 4: erin's register call is copied by frank (same hash, key hash, CID and not-after),
    mined first, and revoked by frank. erin's own registration still succeeds and is what every check reads;
    on the old registry it reverted (already registered) and the certificate could never become valid."""
    sh.ok("wallet", "new", "erin")
    sh.ok("wallet", "new", "frank")
    sh.ok("devnet", "fund", "erin", "frank")
    erin = sh.ok("wallet", "address", "erin").strip()
    frank = sh.ok("wallet", "address", "frank").strip()
    sh.ok("cert", "new", "--wallet", "erin", "--days", "30")
    crt = sh.home / "certs" / "erin.crt.pem"
    info = inspect(x509.load_pem_x509_certificate(crt.read_bytes()))
    cert_hash = "0x" + info.cert_hash.hex()

    state = _state(sh)
    w3, deployment = http_web3(state.rpc_url), Deployment.load(Path(state.manifest))
    from flownet.wallet import Keystores

    squatter = Registry(w3, deployment, Keystores(sh.home / "keystores").unlock("frank", ENV["FLOWNET_PASSWORD"]))
    squatter.register(info.cert_hash, info.key_hash, "bafkreicopiedcid", info.not_after)
    squatter.revoke(info.cert_hash, RevocationReason.KEY_COMPROMISE)

    out = sh.ok("cert", "register", "--wallet", "erin")
    assert _field(out, "certificate") == f"{cert_hash} registered by {erin}"
    registry = Registry(w3, deployment)
    assert registry.is_valid(info.cert_hash, erin)
    assert not registry.status(info.cert_hash, erin).revoked
    assert registry.status(info.cert_hash, frank).revoked

    db = tmp_path / "index.sqlite"
    _index(sh, db)
    status = sh.ok("cert", "status", "--db", str(db), str(crt))  # the PEM names erin: erin's record
    assert _field(status, "status") == "valid" and _field(status, "owner") == erin
    assert _field(sh.ok("cert", "status", "--db", str(db), "--owner", erin, cert_hash), "status") == "valid"
    out = sh.fails(NOT_VALID_EXIT, "revoked", "cert", "status", "--db", str(db), "--owner", frank, cert_hash)
    assert _field(out, "owner") == frank
    # A bare hash registered by two wallets is ambiguous: only the one the certificate names counts.
    sh.fails(2, "was registered by 2 wallets", "cert", "status", "--db", str(db), cert_hash)
    sh.fails(2, f"names {erin}, not --owner {frank}", "cert", "status", "--db", str(db), "--owner", frank, str(crt))


def test_unbonded_providers_new_certificate_does_not_count(sh: Shell, tmp_path: Path) -> None:
    """Issue 11, finding 5: dave stakes as a provider, unstakes everything and withdraws it; a certificate it
    registers afterwards (the registry lets it) is not valid on chain nor in `cert status` (unstaked)."""
    from decimal import Decimal

    sh.ok("wallet", "new", "dave")
    sh.ok("devnet", "fund", "dave")
    dave = sh.ok("wallet", "address", "dave").strip()
    sh.ok("provider", "register", "--wallet", "dave", "--price", "2", "--endpoint", "127.0.0.1:7999")
    state = _state(sh)
    w3, deployment = http_web3(state.rpc_url), Deployment.load(Path(state.manifest))
    staking = deployment.contract(w3, "Staking")
    active = staking.functions.stakeOf(dave).call()[0]
    sh.ok("provider", "unstake", "--wallet", "dave", str(Decimal(active) / 10**18))
    thaw = staking.functions.thawPeriod().call()
    w3.provider.make_request("evm_increaseTime", [thaw + 1])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    sh.ok("provider", "withdraw", "--wallet", "dave")
    assert staking.functions.stakeOf(dave).call()[0] == 0

    sh.ok("cert", "new", "--wallet", "dave", "--days", "30")
    crt = sh.home / "certs" / "dave.crt.pem"
    info = inspect(x509.load_pem_x509_certificate(crt.read_bytes()))
    sh.ok("cert", "register", "--wallet", "dave")
    registry = Registry(w3, deployment)
    assert not registry.is_valid(info.cert_hash, dave) and not registry.stake_counts(dave)
    assert not registry.status(info.cert_hash, dave).revoked  # registered, not revoked: it just does not count

    db = tmp_path / "index.sqlite"
    _index(sh, db)
    for cert in ("0x" + info.cert_hash.hex(), str(crt)):
        out = sh.fails(NOT_VALID_EXIT, "no stake bonded", "cert", "status", "--db", str(db), cert)
        assert _field(out, "status") == "unstaked" and _field(out, "owner") == dave
