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
        "deploy SlashingManager",
        "deploy TrustRegistry",
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
    slashing = deployment.contract(w3, "SlashingManager")
    trust = deployment.contract(w3, "TrustRegistry")
    assert staking.functions.slasher().call() == slashing.address
    assert slashing.functions.staking().call() == staking.address
    assert slashing.functions.market().call() == market.address
    assert slashing.functions.token().call() == token.address
    assert slashing.functions.trustRegistry().call() == trust.address
    assert trust.functions.slashingManager().call() == slashing.address
    assert tuple(slashing.functions.config().call()) == DeployConfig().slashing_config()
    assert [trust.functions.authority(d).call() for d in range(4)] == [deployer.address] * 4
    assert trust.functions.minInterval().call() == DeployConfig().trust_min_interval
    assert deployment.config["trust_authorities"] == [deployer.address] * 4
    registry = deployment.contract(w3, "CertificateRegistry")
    assert registry.functions.staking().call() == staking.address
    assert staking.functions.certificateRegistry().call() == registry.address
    # Staking was deployed at nonce n; it names the addresses of nonces n + 1, n + 2 and n + 3, and
    # the slashing manager names the trust registry at n + 4.
    staking_nonce = w3.eth.get_transaction(deployment.transactions["Staking"])["nonce"]
    assert market.address == create_address(deployer.address, staking_nonce + 1)
    assert registry.address == create_address(deployer.address, staking_nonce + 2)
    assert slashing.address == create_address(deployer.address, staking_nonce + 3)
    assert trust.address == create_address(deployer.address, staking_nonce + 4)
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
        ("SlashingManager", "slasher", "Staking"),
        ("TrustRegistry", "trustRegistry", "SlashingManager"),
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
        ("challenge_window", 0, "challenge_window must be in 1..thaw_period (604800) seconds (not 0)"),
        ("challenge_window", 604_801, "challenge_window must be in 1..thaw_period (604800) seconds (not 604801)"),
        ("epoch_seconds", 0, "epoch_seconds must be positive (not 0)"),
        ("statute_epochs", -1, "statute_epochs must be positive (not -1)"),
        ("slash_period", 0, "slash_period must be positive (not 0)"),
        ("trust_min_interval", 0, "trust_min_interval must be positive (not 0)"),
        ("trust_min_interval", 31 * 86_400, "trust_min_interval must be at most 30 days (not 2678400 s)"),
        ("cap_per_period", 0, "cap_per_period must be in 1..79228162514264337593543950335 (not 0)"),
        ("slash_bps", 0, "slash_bps must be in 1..10000 (not 0)"),
        ("reward_bps", 5_001, "reward_bps must be in 0..5000 (not 5001)"),
        ("quorum", 0, "quorum must be in 1..16 (not 0)"),
        ("quorum", 17, "quorum must be in 1..16 (not 17)"),
        ("trust_authorities", ("0x" + "11" * 20,) * 3, "trust_authorities must name 4 addresses (not 3)"),
        ("trust_authorities", ("0x" + "00" * 20,) * 4, "trust authority must be a non-zero address"),
    ],
)
def test_bad_config_names_the_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        dataclasses.replace(DeployConfig(), **{field: value}).validate()


def test_devnet_config_has_short_windows(w3: Web3) -> None:
    config = DeployConfig.devnet(quorum=3)
    config.validate()
    assert (config.challenge_window, config.thaw_period, config.quorum) == (60, 120, 3)
    authorities = tuple(new_account(w3).address for _ in range(4))
    deployment = deploy(w3, Sender(w3, new_account(w3)), dataclasses.replace(config, trust_authorities=authorities))
    slashing = deployment.contract(w3, "SlashingManager")
    trust = deployment.contract(w3, "TrustRegistry")
    assert slashing.functions.config().call()[0] == 60
    assert slashing.functions.config().call()[7] == 3  # quorum, the last field
    assert [trust.functions.authority(d).call() for d in range(4)] == list(authorities)
    deployment.verify(w3)


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
