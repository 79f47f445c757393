"""Keystores FlowNet did not write (issue 11, finding 7): Foundry's `cast wallet import` files and garbage.

A cast keystore has no ``address`` field and, in cast's own folder, no ``.json`` suffix. Its address
is known only once it is unlocked; until then it lists as unknown, is not funded by `devnet start`, and
never stops a command about another wallet. A file that is not a keystore is skipped with a warning
naming it. Keys are generated per test; the cast files are made by the real `cast wallet import`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from eth_account import Account
from eth_account.messages import encode_defunct

from flownet.chain.connect import http_web3
from flownet.chain.deploy import Deployment
from flownet.cli import cli
from flownet.devnet import read_state
from flownet.wallet import Keystores

ROOT = Path(__file__).resolve().parents[1]
FOUNDRY = ROOT / "tools" / "foundry"
PASSWORD = "cast and flownet share this one"
UNKNOWN = "address unknown until unlocked (keystore has no address field)"
ENV = {"FLOWNET_SCRYPT_N": "1024"}
OFFLINE = "--rpc-url=http://127.0.0.1:1"  # nothing listens: `wallet show` prints no balances


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("FLOWNET_", "ETH_", "CAST_")):
            monkeypatch.delenv(key)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    path = tmp_path / "password.txt"
    path.write_text(PASSWORD + "\n")
    return path


def flownet(home: Path, *args: str, password_file: Path | None = None) -> Result:
    options = ["--home", str(home)]
    if password_file is not None:
        options += ["--password-file", str(password_file)]
    return CliRunner().invoke(cli, [*options, *args], env=ENV)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    assert "Traceback" not in result.output
    return result


def warnings(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def cast_import(directory: Path, name: str) -> str:
    """`cast wallet import NAME -k DIRECTORY` with a fresh key; returns the address cast reports."""
    key = "0x" + os.urandom(32).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETH_", "CAST_", "FOUNDRY_"))}
    command = ["cast", "wallet", "import", name, "--keystore-dir", str(directory), "--private-key", key]
    proc = subprocess.run(
        [str(FOUNDRY), *command, "--unsafe-password", PASSWORD],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, f"cast wallet import failed ({proc.returncode}): {proc.stderr}"
    address = Account.from_key(key).address
    assert address.lower() in proc.stdout.lower(), proc.stdout
    data = json.loads((directory / name).read_text())
    assert "address" not in data and data["version"] == 3  # the shape this issue is about
    return str(address)


def cast_cli(*args: str) -> str:
    proc = subprocess.run([str(FOUNDRY), "cast", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"cast {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout.strip()


def new_wallet(home: Path, name: str, pwfile: Path) -> str:
    out = ok(flownet(home, "wallet", "new", name, password_file=pwfile)).stdout
    match = re.search(r"0x[0-9a-fA-F]{40}", out)
    assert match, out
    return match.group(0)


@pytest.fixture
def mixed(home: Path, pwfile: Path) -> dict[str, str]:
    """alice (flownet's own), carol (cast's file as cast names it) and dave (a cast file renamed to .json)."""
    alice = new_wallet(home, "alice", pwfile)
    folder = home / "keystores"
    carol = cast_import(folder, "carol")
    dave = cast_import(folder, "dave-src")
    (folder / "dave-src").rename(folder / "dave.json")
    return {"alice": alice, "carol": carol, "dave": dave}


GARBAGE = {
    "broken.json": ("{", "is not a JSON keystore"),
    "list.json": ("[1, 2, 3]", "is not a version 3 keystore"),
    "config.json": ('{"hello": "world"}', "is not a version 3 keystore"),
    "notes": ("remember the milk\n", "is not a JSON keystore"),
    "binary.json": (b"\xff\xfe\x00garbage", "is not a JSON keystore"),
}


def add_garbage(folder: Path) -> None:
    for name, (content, _) in GARBAGE.items():
        path = folder / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    (folder / "subdir.json").mkdir()
    (folder / "subdir.json" / "inner.json").write_text("{}")


# ---------------------------------------------------------------------------------------------- listing


def test_list_and_show_with_cast_keystores(home: Path, mixed: dict[str, str]) -> None:
    listing = ok(flownet(home, "wallet", "list"))
    out = listing.stdout
    assert re.search(rf"alice\s.*{mixed['alice']}", out), out
    for name in ("carol", "dave"):
        assert re.search(rf"{name}\s.*{re.escape(UNKNOWN)}", out), out
    assert "?" not in out and warnings(listing) == []

    for name in ("carol", "dave"):
        lines = ok(flownet(home, "wallet", "show", name)).stdout.splitlines()
        assert lines[1] == f"address:  {UNKNOWN}", lines
        assert "?" not in "\n".join(lines)
    lines = ok(flownet(home, OFFLINE, "wallet", "show", "alice")).stdout.splitlines()
    assert lines[1] == f"address:  {mixed['alice']}"


def test_keystores_api_reports_unknown_address_and_skipped_files(home: Path, mixed: dict[str, str]) -> None:
    add_garbage(home / "keystores")
    keystores = Keystores(home / "keystores", scrypt_n=1024)
    wallets, skipped = keystores.scan()
    assert [w.name for w in wallets] == ["alice", "carol", "dave"]
    assert {w.name: w.address for w in wallets} == {"alice": mixed["alice"], "carol": None, "dave": None}
    assert wallets[1].address_text == UNKNOWN
    assert sorted(s.path.name for s in skipped) == sorted([*GARBAGE, "subdir.json"])
    assert keystores.list() == wallets
    assert keystores.info("carol").address is None
    assert keystores.info("carol").path == home / "keystores" / "carol"


# ---------------------------------------------------------------------------------------------- unlocking


def test_a_cast_keystore_unlocks_by_name_and_its_address_is_learned(
    home: Path, mixed: dict[str, str], pwfile: Path
) -> None:
    carol_file = home / "keystores" / "carol"
    original = carol_file.read_bytes()
    # no password: the address cannot be known, and the error says how to give one
    result = flownet(home, "wallet", "address", "carol")
    assert result.exit_code == 2 and "a password is needed for wallet 'carol'" in result.stderr

    assert ok(flownet(home, "wallet", "address", "carol", password_file=pwfile)).stdout == mixed["carol"] + "\n"
    # learned without rewriting the user's file: cast still reads it byte for byte
    assert carol_file.read_bytes() == original
    assert cast_cli("wallet", "address", "--keystore", str(carol_file), "--password", PASSWORD) == mixed["carol"]
    out = ok(flownet(home, "wallet", "list")).stdout
    assert re.search(rf"carol\s.*{mixed['carol']}", out), out
    assert re.search(rf"dave\s.*{re.escape(UNKNOWN)}", out), out  # only the unlocked one is learned
    lines = ok(flownet(home, OFFLINE, "wallet", "show", "carol")).stdout.splitlines()
    assert lines[1] == f"address:  {mixed['carol']}" and lines[2] == f"keystore: {carol_file}"
    # cast's `wallet list` sees no extra entry in the folder
    assert "carol" in cast_cli("wallet", "list", "--dir", str(carol_file.parent))
    assert len(cast_cli("wallet", "list", "--dir", str(carol_file.parent)).splitlines()) == 3

    # signing by name gives cast's signature
    message = "signed by a cast keystore"
    ours = ok(flownet(home, "wallet", "sign", "dave", message, password_file=pwfile)).stdout.strip()
    dave_file = home / "keystores" / "dave.json"
    theirs = cast_cli("wallet", "sign", "--keystore", str(dave_file), "--password", PASSWORD, message)
    assert ours == theirs
    assert Account.recover_message(encode_defunct(text=message), signature=ours) == mixed["dave"]


def test_a_learned_address_is_forgotten_when_the_file_changes(home: Path, mixed: dict[str, str], pwfile: Path) -> None:
    ok(flownet(home, "wallet", "address", "carol", password_file=pwfile))
    folder = home / "keystores"
    other = cast_import(folder, "other")
    (folder / "other").replace(folder / "carol")  # same name, another key
    out = ok(flownet(home, "wallet", "list")).stdout
    assert mixed["carol"] not in out
    assert re.search(rf"carol\s.*{re.escape(UNKNOWN)}", out), out
    assert ok(flownet(home, "wallet", "address", "carol", password_file=pwfile)).stdout == other + "\n"


def test_a_new_wallet_cannot_take_a_cast_keystores_name(home: Path, mixed: dict[str, str], pwfile: Path) -> None:
    result = flownet(home, "wallet", "new", "carol", password_file=pwfile)
    assert result.exit_code == 7 and "wallet 'carol' already exists" in result.stderr
    assert not (home / "keystores" / "carol.json").exists()


# ---------------------------------------------------------------------------------------------- garbage


def test_files_that_are_not_keystores_are_skipped_with_a_warning(
    home: Path, mixed: dict[str, str], pwfile: Path
) -> None:
    folder = home / "keystores"
    add_garbage(folder)
    listing = ok(flownet(home, "wallet", "list"))
    assert re.search(rf"alice\s.*{mixed['alice']}", listing.stdout)
    for name in [*GARBAGE, "subdir.json"]:
        assert not re.search(rf"^\W*{re.escape(Path(name).stem)}\s", listing.stdout, re.M), listing.stdout
    lines = warnings(listing)
    assert len(lines) == len(GARBAGE) + 1, listing.stderr
    for name, (_, why) in GARBAGE.items():
        [line] = [line for line in lines if str(folder / name) in line]
        assert why in line and "skipped" in line, line
    [line] = [line for line in lines if str(folder / "subdir.json") in line]
    assert "directory" in line

    # commands about other wallets neither fail nor warn
    for args in ((OFFLINE, "wallet", "show", "alice"), ("wallet", "address", "alice")):
        result = ok(flownet(home, *args))
        assert result.stderr == "" and mixed["alice"] in result.stdout
    ok(flownet(home, "wallet", "sign", "carol", "hi", password_file=pwfile))
    # naming the bad file itself is a one-line error naming it
    result = flownet(home, "wallet", "show", "broken")
    assert result.exit_code == 7 and f"{folder / 'broken.json'} is not a JSON keystore" in result.stderr
    result = flownet(home, "wallet", "show", "subdir")
    assert result.exit_code == 7 and str(folder / "subdir.json") in result.stderr and "directory" in result.stderr


def test_a_keystore_with_a_malformed_address_field_lists_as_unknown(home: Path, mixed: dict[str, str]) -> None:
    path = home / "keystores" / "alice.json"
    data = json.loads(path.read_text())
    data["address"] = "not-an-address"
    path.write_text(json.dumps(data))
    out = ok(flownet(home, "wallet", "list")).stdout
    assert re.search(r"alice\s.*address unknown until unlocked \(keystore's address field 'not-an-address'", out), out


# ---------------------------------------------------------------------------------------------- devnet


@pytest.fixture
def devnet_home(home: Path, mixed: dict[str, str]) -> Iterator[Path]:
    add_garbage(home / "keystores")
    yield home
    flownet(home, "devnet", "stop")


def test_devnet_start_funds_the_known_wallets_and_warns_about_the_others(
    devnet_home: Path, mixed: dict[str, str], pwfile: Path
) -> None:
    home = devnet_home
    started = ok(flownet(home, "devnet", "start", "--flow", "1000", "--eth", "3"))
    assert f"funded alice ({mixed['alice']})" in started.stdout
    assert "devnet ready" in started.stdout
    lines = warnings(started)
    for name in ("carol", "dave"):
        [line] = [line for line in lines if f"not funding wallet {name!r}" in line]
        assert "keystore has no address field" in line and f"flownet wallet address {name}" in line
    assert sum("skipped" in line for line in lines) == len(GARBAGE) + 1

    state = read_state(home / "devnet")
    assert state is not None
    w3 = http_web3(state.rpc_url)
    token = Deployment.load(home / "devnet" / "deployment.json").contract(w3, "FlowToken")
    assert w3.eth.get_balance(mixed["alice"]) == 3 * 10**18
    assert token.functions.balanceOf(mixed["alice"]).call() == 1000 * 10**18
    assert w3.eth.get_balance(mixed["carol"]) == 0

    status = ok(flownet(home, "devnet", "status"))
    assert "running" in status.stdout and "carol" in status.stdout

    # once unlocked, the cast wallet is funded by name and can transact
    ok(flownet(home, "wallet", "address", "carol", password_file=pwfile))
    funded = ok(flownet(home, "devnet", "fund", "carol", "--flow", "7", "--eth", "1"))
    assert f"funded carol ({mixed['carol']})" in funded.stdout
    assert token.functions.balanceOf(mixed["carol"]).call() == 7 * 10**18
    shown = ok(flownet(home, "wallet", "show", "carol")).stdout
    assert "FLOW:     7 FLOW" in shown, shown
    # `devnet fund` of a wallet whose address is still unknown asks for its password rather than guessing
    result = flownet(home, "devnet", "fund", "dave")
    assert result.exit_code == 2 and "a password is needed for wallet 'dave'" in result.stderr
    funded = ok(flownet(home, "devnet", "fund", "dave", "--flow", "1", "--eth", "1", password_file=pwfile))
    assert f"funded dave ({mixed['dave']})" in funded.stdout
