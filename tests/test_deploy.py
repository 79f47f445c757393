"""Deployment to both backends, the manifest, and configuration errors."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from conftest import new_account
from web3 import Web3

from flownet.chain.artifacts import load_artifact
from flownet.chain.deploy import DeployConfig, Deployment, create_address, deploy
from flownet.chain.tx import Sender
from flownet.errors import ConfigError, DeploymentError


def test_deploy_writes_a_verifiable_manifest(w3: Web3, tmp_path: Path) -> None:
    deployer = new_account(w3)
    steps = []
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig(lock_bps=2_500), on_step=steps.append)
    assert [s.action for s in steps] == [
        "deploy FlowToken",
        "deploy Staking",
        "deploy BandwidthMarket",
        "deploy CertificateRegistry",
    ]
    assert deployment.chain_id == w3.eth.chain_id
    assert deployment.deployment_block == steps[0].block_number
    assert deployment.artifact_hashes == {n: load_artifact(n).file_hash for n in deployment.addresses}
    market = deployment.contract(w3, "BandwidthMarket")
    staking = deployment.contract(w3, "Staking")
    token = deployment.contract(w3, "FlowToken")
    assert staking.functions.market().call() == market.address
    assert market.functions.staking().call() == staking.address
    assert market.functions.lockBps().call() == 2_500
    assert staking.functions.slasher().call() == deployer.address
    registry = deployment.contract(w3, "CertificateRegistry")
    assert registry.functions.staking().call() == staking.address
    assert staking.functions.certificateRegistry().call() == registry.address
    # Staking was deployed at nonce n; it names the addresses of nonces n + 1 and n + 2.
    staking_nonce = w3.eth.get_transaction(deployment.transactions["Staking"])["nonce"]
    assert market.address == create_address(deployer.address, staking_nonce + 1)
    assert registry.address == create_address(deployer.address, staking_nonce + 2)
    assert token.functions.balanceOf(deployer.address).call() == DeployConfig().supply

    path = tmp_path / "deployment.json"
    deployment.save(path)
    loaded = Deployment.load(path)
    assert loaded == deployment
    assert json.loads(path.read_text())["chain_id"] == w3.eth.chain_id
    loaded.verify(w3)

    with pytest.raises(DeploymentError, match="is for chain"):
        dataclasses.replace(loaded, chain_id=loaded.chain_id + 1).verify(w3)
    swapped = {**loaded.addresses, "Staking": loaded.addresses["FlowToken"]}
    with pytest.raises(DeploymentError, match="Staking: code at"):
        dataclasses.replace(loaded, addresses=swapped).verify(w3)
    with pytest.raises(DeploymentError, match="local artifact"):
        dataclasses.replace(loaded, artifact_hashes={**loaded.artifact_hashes, "FlowToken": "sha256:00"}).verify(w3)


def test_verify_checks_the_cross_references(w3: Web3) -> None:
    """Contracts of two deployments have identical code; only the references tell them apart."""
    first = deploy(w3, Sender(w3, new_account(w3)))
    second = deploy(w3, Sender(w3, new_account(w3)))
    first.verify(w3)
    second.verify(w3)
    for name, view, referrer in [
        ("CertificateRegistry", "certificateRegistry", "Staking"),
        ("BandwidthMarket", "market", "Staking"),
        ("FlowToken", "token", "Staking"),
    ]:
        mixed = dataclasses.replace(first, addresses={**first.addresses, name: second.addresses[name]})
        named, listed = first.addresses[name], second.addresses[name]
        message = f"{referrer}.{view}() is {named}, not the manifest's {name} at {listed}"
        with pytest.raises(DeploymentError, match=re.escape(message)):
            mixed.verify(w3)
    # A manifest whose Staking is the other deployment's: its token is the first reference checked.
    mixed = dataclasses.replace(first, addresses={**first.addresses, "Staking": second.addresses["Staking"]})
    with pytest.raises(DeploymentError, match=re.escape("Staking.token() is ")):
        mixed.verify(w3)


def test_create_address_matches_chain(w3: Web3) -> None:
    deployer = new_account(w3)
    predicted = create_address(deployer.address, 0)
    address, _ = Sender(w3, deployer).deploy(
        w3.eth.contract(abi=load_artifact("FlowToken").abi, bytecode=load_artifact("FlowToken").bytecode),
        deployer.address,
        10**18,
        action="deploy FlowToken",
    )
    assert address == predicted


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("supply", 0, "supply must be in 1..79228162514264337593543950335 (not 0)"),
        ("supply", 2**96, "supply must be in"),
        ("thaw_period", 0, "thaw_period must be positive seconds (not 0)"),
        ("grace_period", -5, "grace_period must be positive seconds (not -5)"),
        ("max_duration", 0, "max_duration must be positive"),
        ("lock_bps", 10_001, "lock_bps must be in 1..10000 (not 10001)"),
        ("provider_min_stake", 0, "provider_min_stake must be in"),
        ("verifier_min_stake", 2**96, "verifier_min_stake must be in"),
        ("slasher", "0xnotanaddress", "slasher must be an address (not '0xnotanaddress')"),
    ],
)
def test_bad_config_names_the_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        dataclasses.replace(DeployConfig(), **{field: value}).validate()


def test_manifest_load_errors(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="no deployment manifest at"):
        Deployment.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DeploymentError, match="is not valid JSON"):
        Deployment.load(bad)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"version": 99}))
    with pytest.raises(DeploymentError, match="has version 99, expected 1"):
        Deployment.load(old)
