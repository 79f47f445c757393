"""`flownet wallet`: keystore v3 files, password handling, errors, and interoperability with Foundry's cast.

Most tests lower the scrypt cost with FLOWNET_SCRYPT_N=1024; one round trip keeps geth's n=2^18.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import new_account
from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

import flownet.cli.wallet as wallet_cli
from flownet.chain.connect import http_web3
from flownet.chain.deploy import TOKEN_UNIT, DeployConfig, deploy
from flownet.chain.market import FlowNet
from flownet.chain.tx import Sender
from flownet.cli import cli
from flownet.devnet import Anvil, free_port, fund

ROOT = Path(__file__).resolve().parents[1]
CAST = ROOT / "node_modules" / ".bin" / "cast"
PASSWORD = "correct horse battery staple"
MESSAGE = "Grüße from FlowNet ✓"
SIGNATURE_RE = re.compile(r"^0x[0-9a-f]{130}$")
ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting leaks in from the environment; scrypt is cheap unless a test says otherwise."""
    for key in list(os.environ):
        if key.startswith(("FLOWNET_", "ETH_", "CAST_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FLOWNET_SCRYPT_N", "1024")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    path = tmp_path / "password.txt"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
def offline() -> str:
    """An RPC URL where nothing listens (a port that was just free)."""
    return f"http://127.0.0.1:{free_port()}"


def flownet(home: Path, *args: str, password_file: Path | None = None, stdin: str | None = None) -> Result:
    options = ["--home", str(home)]
    if password_file is not None:
        options += ["--password-file", str(password_file)]
    return CliRunner().invoke(cli, [*options, *args], input=stdin)


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    assert result.stderr == ""
    return result.stdout


def fails(result: Result, code: int, message: str) -> str:
    """Assert a one-line error with `code` containing `message`; returns the error line."""
    assert result.exit_code == code, f"exit {result.exit_code} (expected {code}): {result.output}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def new_wallet(home: Path, name: str, pwfile: Path | None) -> str:
    out = ok(flownet(home, "wallet", "new", name, password_file=pwfile))
    match = ADDRESS_RE.search(out)
    assert match, out
    return match.group(0)


def cast(*args: str) -> str:
    """Run Foundry's cast from node_modules; its stdout, stripped."""
    if not CAST.is_file():
        pytest.fail(f"Foundry's cast is missing at {CAST}: run `npm ci` (CI installs it from package-lock.json)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETH_", "CAST_", "FOUNDRY_"))}
    proc = subprocess.run([str(CAST), *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, f"cast {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
    return proc.stdout.strip()


def keystore(home: Path, name: str) -> Path:
    return home / "keystores" / f"{name}.json"


def recover(message: str, signature: str) -> str:
    return str(Account.recover_message(encode_defunct(text=message), signature=signature))


# ---------------------------------------------------------------------------------------------- happy paths


def test_new_list_show_address_sign(home: Path, pwfile: Path, offline: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outputs = []

    result = flownet(home, "wallet", "new", "alice", password_file=pwfile)
    outputs.append(ok(result))
    address = ADDRESS_RE.search(result.stdout).group(0)  # type: ignore[union-attr]
    assert result.stdout.startswith(f"created wallet alice: {address}\n")
    assert Web3.is_checksum_address(address)

    path = keystore(home, "alice")
    assert str(path) in result.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["version"] == 3
    assert data["crypto"]["kdf"] == "scrypt"
    assert data["crypto"]["kdfparams"]["n"] == 1024
    assert data["crypto"]["cipher"] == "aes-128-ctr"
    assert Web3.to_checksum_address(data["address"]) == address
    key = Account.decrypt(data, PASSWORD)
    assert Account.from_key(key).address == address
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind

    bob = new_wallet(home, "bob", pwfile)
    outputs.append(listing := ok(flownet(home, "wallet", "list")))
    assert re.search(rf"alice\s.*{address}", listing)
    assert re.search(rf"bob\s.*{bob}", listing)
    assert listing.index("alice") < listing.index("bob")

    outputs.append(shown := ok(flownet(home, "--rpc-url", offline, "wallet", "show", "alice")))
    assert shown.splitlines() == [
        "name:     alice",
        f"address:  {address}",
        f"keystore: {path}",
        f"chain:    not reachable at {offline} (no balances)",
    ]

    outputs.append(printed := ok(flownet(home, "wallet", "address", "alice")))
    assert printed == address + "\n"

    outputs.append(signature := ok(flownet(home, "wallet", "sign", "alice", MESSAGE, password_file=pwfile)).strip())
    assert SIGNATURE_RE.match(signature), signature
    assert len(bytes.fromhex(signature[2:])) == 65
    assert recover(MESSAGE, signature) == address
    assert signature == "0x" + bytes(Account.from_key(key).sign_message(encode_defunct(text=MESSAGE)).signature).hex()
    again = ok(flownet(home, "wallet", "sign", "alice", MESSAGE, password_file=pwfile)).strip()
    assert again == signature  # RFC 6979: deterministic

    # Neither the password nor the key is ever shown or logged.
    logged = [record.getMessage() for record in caplog.records]
    assert any("created wallet 'alice'" in line for line in logged), logged  # logging did capture the CLI
    for secret in (PASSWORD, key.hex(), "0x" + key.hex()):
        assert all(secret not in out for out in outputs)
        assert all(secret not in line for line in logged)
        assert all(secret not in str(record.args) for record in caplog.records)


def test_default_wallet_applies_where_name_is_optional(
    home: Path, pwfile: Path, offline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = new_wallet(home, "alice", pwfile)
    new_wallet(home, "bob", pwfile)
    fails(flownet(home, "wallet", "address"), 2, "no wallet chosen: give NAME or set FLOWNET_WALLET")
    fails(flownet(home, "wallet", "sign", "hi", password_file=pwfile), 2, "no wallet chosen")

    monkeypatch.setenv("FLOWNET_WALLET", "alice")
    assert ok(flownet(home, "wallet", "address")) == alice + "\n"
    assert f"address:  {alice}" in ok(flownet(home, "--rpc-url", offline, "wallet", "show"))
    signature = ok(flownet(home, "wallet", "sign", "hi", password_file=pwfile)).strip()
    assert recover("hi", signature) == alice
    assert "alice (default)" in ok(flownet(home, "wallet", "list"))
    # An explicit NAME wins over the default.
    assert ok(flownet(home, "wallet", "address", "bob")) != alice + "\n"

    (home / "config.toml").write_text('wallet = "bob"\n')
    monkeypatch.delenv("FLOWNET_WALLET")
    bob_signature = ok(flownet(home, "wallet", "sign", "hi", password_file=pwfile)).strip()
    assert recover("hi", bob_signature) == ok(flownet(home, "wallet", "address", "bob")).strip()

    # A message with spaces is one argument; three arguments are a usage error.
    result = flownet(home, "wallet", "sign", "alice", "two", "words", password_file=pwfile)
    assert result.exit_code == 2 and "expected [NAME] MESSAGE" in result.output


def test_password_from_environment_and_hidden_prompt(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWNET_PASSWORD", "from-the-environment")
    env_address = new_wallet(home, "env", None)
    assert Account.decrypt(json.loads(keystore(home, "env").read_text()), "from-the-environment")
    monkeypatch.delenv("FLOWNET_PASSWORD")

    file = tmp_path / "env-file"
    file.write_text("from-a-file\r\n")
    monkeypatch.setenv("FLOWNET_PASSWORD_FILE", str(file))
    new_wallet(home, "envfile", None)
    assert Account.decrypt(json.loads(keystore(home, "envfile").read_text()), "from-a-file")
    monkeypatch.delenv("FLOWNET_PASSWORD_FILE")

    # At a terminal: a hidden prompt, asked twice for a new wallet; mismatches are asked again.
    monkeypatch.setattr(wallet_cli, "_interactive", lambda: True)
    result = flownet(home, "wallet", "new", "typed", stdin="typed-secret\nother\ntyped-secret\ntyped-secret\n")
    assert result.exit_code == 0, result.output
    assert "Password for new wallet 'typed'" in result.output
    assert "do not match" in result.output
    assert "typed-secret" not in result.output
    assert Account.decrypt(json.loads(keystore(home, "typed").read_text()), "typed-secret")

    # An empty password is refused for a new wallet.
    empty = tmp_path / "empty"
    empty.write_text("\n")
    fails(flownet(home, "wallet", "new", "blank", password_file=empty), 2, "refusing an empty password")
    assert not keystore(home, "blank").exists()
    assert env_address != ok(flownet(home, "wallet", "address", "typed")).strip()


def test_import_private_key_from_file_and_prompt(
    home: Path, pwfile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = Account.create()
    key_hex = bytes(account.key).hex()
    key_file = tmp_path / "key.hex"
    key_file.write_text(f"  0x{key_hex}\n")
    result = flownet(home, "wallet", "import", "carol", "--private-key-file", str(key_file), password_file=pwfile)
    assert ok(result) == f"imported wallet carol: {account.address}\n"
    data = json.loads(keystore(home, "carol").read_text())
    assert data["version"] == 3 and data["crypto"]["kdf"] == "scrypt"
    assert stat.S_IMODE(keystore(home, "carol").stat().st_mode) == 0o600
    assert bytes(Account.decrypt(data, PASSWORD)) == bytes(account.key)
    signature = ok(flownet(home, "wallet", "sign", "carol", MESSAGE, password_file=pwfile)).strip()
    assert signature == "0x" + bytes(account.sign_message(encode_defunct(text=MESSAGE)).signature).hex()

    key_file.write_text(key_hex.upper())  # no 0x, upper case
    result = flownet(home, "wallet", "import", "carol2", "--private-key-file", str(key_file), password_file=pwfile)
    assert ok(result) == f"imported wallet carol2: {account.address}\n"

    # No option, at a terminal: the key at a hidden prompt, then the new password twice.
    monkeypatch.setattr(wallet_cli, "_interactive", lambda: True)
    other = Account.create()
    typed = f"{bytes(other.key).hex()}\nkey-pw\nkey-pw\n"
    result = flownet(home, "wallet", "import", "dave", stdin=typed)
    assert result.exit_code == 0, result.output
    assert f"imported wallet dave: {other.address}" in result.output
    assert "Private key (hex)" in result.output
    assert bytes(other.key).hex() not in result.output and "key-pw" not in result.output
    assert bytes(Account.decrypt(json.loads(keystore(home, "dave").read_text()), "key-pw")) == bytes(other.key)
    assert key_hex not in ok(flownet(home, "wallet", "list"))


def test_show_balances_when_the_chain_answers(home: Path, pwfile: Path, tmp_path: Path, anvil: Anvil) -> None:
    address = new_wallet(home, "alice", pwfile)
    w3 = http_web3(anvil.url)
    fund(w3, address, 3 * 10**18 // 2)
    manifest = tmp_path / "deployment.json"
    args = ("--rpc-url", anvil.url, "--manifest", str(manifest), "wallet", "show", "alice")

    shown = ok(flownet(home, *args)).splitlines()
    assert shown[3] == f"chain:    {anvil.url} (chain id {anvil.chain_id})"
    assert shown[4] == "ETH:      1.5 ETH"
    assert shown[5] == f"FLOW:     unknown (no deployment manifest at {manifest})"

    deployer = new_account(w3)
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig())
    deployment.save(manifest)
    FlowNet(w3, deployment, deployer).transfer(address, 1234 * TOKEN_UNIT + TOKEN_UNIT // 4)
    shown = ok(flownet(home, *args)).splitlines()
    assert shown[4] == "ETH:      1.5 ETH"
    assert shown[5] == "FLOW:     1,234.25 FLOW"

    # A manifest for another chain is reported, not fatal.
    data = json.loads(manifest.read_text())
    data["chain_id"] = 999
    manifest.write_text(json.dumps(data))
    shown = ok(flownet(home, *args)).splitlines()
    assert shown[5] == f"FLOW:     unknown (manifest {manifest} is for chain 999)"


# ---------------------------------------------------------------------------------------------- cast interop


def test_cast_keystore_imports_and_signs_the_same(home: Path, tmp_path: Path) -> None:
    """Round trip A: `cast wallet new` -> `flownet wallet import --keystore` -> same address and signature."""
    password = "pässword with spaces ⚡"
    cast_dir = tmp_path / "cast-keystores"
    cast_dir.mkdir()
    created = cast("wallet", "new", str(cast_dir), "castacct", "--unsafe-password", password)
    cast_file = cast_dir / "castacct"
    assert cast_file.is_file(), created
    cast_address = ADDRESS_RE.search(created).group(0)  # type: ignore[union-attr]
    assert cast("wallet", "address", "--keystore", str(cast_file), "--password", password) == cast_address
    original = cast_file.read_bytes()

    pw = tmp_path / "cast-password"
    pw.write_text(password)
    result = flownet(home, "wallet", "import", "fromcast", "--keystore", str(cast_file), password_file=pw)
    assert ok(result) == f"imported wallet fromcast: {cast_address}\n"
    assert cast_file.read_bytes() == original  # the source is only read
    imported = json.loads(keystore(home, "fromcast").read_text())
    assert imported["version"] == 3 and imported["crypto"]["kdf"] == "scrypt"
    assert Web3.to_checksum_address(imported["address"]) == cast_address
    assert ok(flownet(home, "wallet", "address", "fromcast")) == cast_address + "\n"

    ours = ok(flownet(home, "wallet", "sign", "fromcast", MESSAGE, password_file=pw)).strip()
    theirs = cast("wallet", "sign", "--keystore", str(cast_file), "--password", password, MESSAGE)
    assert SIGNATURE_RE.match(ours) and ours == theirs
    assert recover(MESSAGE, ours) == cast_address
    # cast still opens the imported copy (FlowNet only added the address field).
    copy = keystore(home, "fromcast")
    assert cast("wallet", "address", "--keystore", str(copy), "--password", password) == cast_address


def test_flownet_keystore_opens_in_cast_with_real_scrypt_cost(
    home: Path, pwfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round trip B, with the default n=2^18: `flownet wallet new` -> cast gives the same address and signature."""
    monkeypatch.delenv("FLOWNET_SCRYPT_N")
    address = new_wallet(home, "real", pwfile)
    path = keystore(home, "real")
    params = json.loads(path.read_text())["crypto"]["kdfparams"]
    assert (params["n"], params["r"], params["p"], params["dklen"]) == (2**18, 8, 1, 32)

    assert cast("wallet", "address", "--keystore", str(path), "--password", PASSWORD) == address
    ours = ok(flownet(home, "wallet", "sign", "real", MESSAGE, password_file=pwfile)).strip()
    theirs = cast("wallet", "sign", "--keystore", str(path), "--password", PASSWORD, MESSAGE)
    assert SIGNATURE_RE.match(ours) and ours == theirs
    assert recover(MESSAGE, theirs) == address


# ---------------------------------------------------------------------------------------------- errors


@pytest.fixture
def alice(home: Path, pwfile: Path) -> Iterator[Path]:
    new_wallet(home, "alice", pwfile)
    yield keystore(home, "alice")


def test_wrong_password_leaves_the_file_untouched(home: Path, alice: Path, tmp_path: Path) -> None:
    before, mtime = alice.read_bytes(), alice.stat().st_mtime_ns
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password")
    line = fails(flownet(home, "wallet", "sign", "alice", "hi", password_file=wrong), 7, "wrong password for wallet")
    assert line == "error: wrong password for wallet 'alice'"
    assert alice.read_bytes() == before and alice.stat().st_mtime_ns == mtime

    # Importing a keystore checks its password before copying anything.
    fails(
        flownet(home, "wallet", "import", "copy", "--keystore", str(alice), password_file=wrong),
        7,
        f"wrong password for keystore {str(alice)!r}",
    )
    assert not keystore(home, "copy").exists()


def test_missing_wallet_lists_the_known_ones(home: Path, alice: Path, pwfile: Path) -> None:
    new_wallet(home, "carol", pwfile)
    expected = f"no wallet named 'bob' in {home / 'keystores'} (wallets: alice, carol)"
    fails(flownet(home, "wallet", "show", "bob"), 7, expected)
    fails(flownet(home, "wallet", "address", "bob"), 7, expected)
    # Checked before any password is needed (none is available here).
    fails(flownet(home, "wallet", "sign", "bob", "hi"), 7, expected)
    fails(flownet(home / "empty", "wallet", "show", "bob"), 7, "(wallets: none yet)")
    assert "no wallets in" in ok(flownet(home / "empty", "wallet", "list"))


def test_duplicate_name_is_refused(home: Path, alice: Path, pwfile: Path, tmp_path: Path) -> None:
    before = alice.read_bytes()
    message = f"wallet 'alice' already exists at {alice}; choose another name"
    fails(flownet(home, "wallet", "new", "alice", password_file=pwfile), 7, message)
    key_file = tmp_path / "key"
    key_file.write_text(bytes(Account.create().key).hex())
    fails(flownet(home, "wallet", "import", "alice", "--private-key-file", str(key_file)), 7, message)
    fails(flownet(home, "wallet", "import", "alice", "--keystore", str(alice), password_file=pwfile), 7, message)
    assert alice.read_bytes() == before


@pytest.mark.parametrize("name", ["../evil", "a b", "-dash", ".hidden", "x" * 65, "näme"])
def test_invalid_name_is_refused(home: Path, pwfile: Path, tmp_path: Path, name: str) -> None:
    # "--" so that "-dash" is an argument, as a user would have to write it too.
    fails(flownet(home, "wallet", "new", "--", name, password_file=pwfile), 2, f"invalid wallet name {name!r}")
    fails(flownet(home, "wallet", "show", "--", name), 2, "invalid wallet name")
    assert not (home / "keystores").exists() and not (tmp_path / "evil.json").exists()


def test_unreadable_password_file(home: Path, alice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.txt"
    fails(flownet(home, "wallet", "sign", "alice", "hi", password_file=missing), 2, "cannot read password file")
    message = f"cannot read password file {str(missing)!r}: No such file or directory"
    fails(flownet(home, "wallet", "new", "bob", password_file=missing), 2, message)
    monkeypatch.setenv("FLOWNET_PASSWORD_FILE", str(tmp_path))  # a directory
    fails(flownet(home, "wallet", "sign", "alice", "hi"), 2, "Is a directory")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    monkeypatch.setenv("FLOWNET_PASSWORD_FILE", str(binary))
    fails(flownet(home, "wallet", "sign", "alice", "hi"), 2, "is not UTF-8 text")
    assert not keystore(home, "bob").exists()


def test_no_password_available_non_interactively(home: Path, alice: Path, tmp_path: Path) -> None:
    hint = "set FLOWNET_PASSWORD or FLOWNET_PASSWORD_FILE, or pass --password-file"
    fails(flownet(home, "wallet", "new", "bob"), 2, f"a password is needed for new wallet 'bob': {hint}")
    fails(flownet(home, "wallet", "sign", "alice", "hi"), 2, f"a password is needed for wallet 'alice': {hint}")
    key_file = tmp_path / "key"
    key_file.write_text(bytes(Account.create().key).hex())
    fails(flownet(home, "wallet", "import", "bob", "--private-key-file", str(key_file)), 2, "a password is needed")
    fails(flownet(home, "wallet", "import", "bob", "--keystore", str(alice)), 2, "a password is needed")
    assert not keystore(home, "bob").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("0x1234", "expected 64 hex digits"),
        ("zz" * 32, "expected 64 hex digits"),
        ("0x" + "ab" * 32 + " trailing", "expected 64 hex digits"),
        ("", "expected 64 hex digits"),
        ("00" * 32, "not in the secp256k1 range"),
        ("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", "not in the secp256k1 range"),
    ],
)
def test_invalid_private_key_in_the_key_file(
    home: Path, pwfile: Path, tmp_path: Path, content: str, reason: str
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(content)
    result = flownet(home, "wallet", "import", "bad", "--private-key-file", str(key_file), password_file=pwfile)
    line = fails(result, 2, f"invalid private key for {str(key_file)!r}: {reason}")
    if content:
        assert content.strip() not in line  # the key material is never echoed
    assert not keystore(home, "bad").exists()


def test_import_needs_exactly_one_source(home: Path, pwfile: Path, tmp_path: Path) -> None:
    fails(flownet(home, "wallet", "import", "x", password_file=pwfile), 2, "nothing to import")
    missing = tmp_path / "missing-key"
    fails(
        flownet(home, "wallet", "import", "x", "--private-key-file", str(missing), password_file=pwfile),
        2,
        "cannot read private key file",
    )
    result = flownet(home, "wallet", "import", "x", "--keystore", "a", "--private-key-file", "b")
    assert result.exit_code == 2 and "not both" in result.output
    fails(
        flownet(home, "wallet", "import", "x", "--keystore", str(missing), password_file=pwfile),
        7,
        f"no keystore file at {missing}",
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"hello": "world"}', "is not a version 3 keystore"),
        ('{"version": 3, "id": "x"}', "is not a version 3 keystore"),
        ('{"version": 3, "crypto": {"kdf": "scrypt"}}', "is not a version 3 keystore"),
        ("[1, 2, 3]", "is not a version 3 keystore"),
        ("not json at all", "is not a JSON keystore"),
    ],
)
def test_import_rejects_a_file_that_is_not_a_keystore(
    home: Path, pwfile: Path, tmp_path: Path, content: str, reason: str
) -> None:
    source = tmp_path / "source.json"
    source.write_text(content)
    result = flownet(home, "wallet", "import", "x", "--keystore", str(source), password_file=pwfile)
    fails(result, 7, f"{source} {reason}")
    assert not keystore(home, "x").exists()


def test_a_tampered_keystore_is_detected(home: Path, alice: Path, pwfile: Path) -> None:
    data = json.loads(alice.read_text())
    data["address"] = "00" * 20
    alice.write_text(json.dumps(data))
    fails(flownet(home, "wallet", "sign", "alice", "hi", password_file=pwfile), 7, "the file was altered")
    data["crypto"]["kdf"] = "argon2"
    data.pop("address")
    alice.write_text(json.dumps(data))
    fails(flownet(home, "wallet", "sign", "alice", "hi", password_file=pwfile), 7, "cannot decrypt wallet 'alice'")


def test_list_survives_a_corrupt_file(home: Path, alice: Path) -> None:
    """A corrupt file is skipped with a one-line warning naming it; the other wallets list as before."""
    address = ok(flownet(home, "wallet", "address", "alice")).strip()
    broken = alice.parent / "broken.json"
    broken.write_text("{")
    result = flownet(home, "wallet", "list")
    assert result.exit_code == 0, result.output
    assert address in result.stdout
    assert "broken" not in result.stdout
    [warning] = result.stderr.splitlines()
    assert warning.startswith(f"warning: {broken} is not a JSON keystore") and "skipped" in warning
    fails(flownet(home, "wallet", "show", "broken"), 7, "is not a JSON keystore")


def test_a_keystore_without_address_field_is_unlocked_for_its_address(home: Path, alice: Path, pwfile: Path) -> None:
    """Keystores copied in by hand (cast omits `address`) list as unknown; `wallet address` unlocks them."""
    address = ok(flownet(home, "wallet", "address", "alice")).strip()
    data = json.loads(alice.read_text())
    del data["address"]
    plain = alice.parent / "plain.json"
    plain.write_text(json.dumps(data))
    unknown = r"plain\s.*address unknown until unlocked \(keystore has no address field\)"
    assert re.search(unknown, ok(flownet(home, "wallet", "list")))
    fails(flownet(home, "wallet", "address", "plain"), 2, "a password is needed for wallet 'plain'")
    assert ok(flownet(home, "wallet", "address", "plain", password_file=pwfile)) == address + "\n"
    assert re.search(rf"plain\s.*{address}", ok(flownet(home, "wallet", "list")))  # learned on unlock
