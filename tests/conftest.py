"""Shared fixtures: chains (in-process eth-tester and a real anvil on loopback), funded keys, deployments.

Private keys are generated per test run; test ether comes from the node's unlocked dev account.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import settings
from web3 import Web3

from flownet.chain.connect import http_web3, in_process_web3
from flownet.chain.deploy import TOKEN_UNIT, DeployConfig, Deployment, deploy
from flownet.chain.market import FlowNet, Role
from flownet.chain.tx import Sender
from flownet.devnet import Anvil, fund

PRICE = 2 * TOKEN_UNIT

# In CI the property tests are derandomized: the same examples every run, so a submission never fails
# on a seed nobody can reproduce; locally they explore new examples each run.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One anvil for the session on a free 127.0.0.1 port, stopped by PID at the end."""
    node = Anvil().start()
    try:
        yield node
    finally:
        node.stop()
        assert node.process is None


@pytest.fixture(params=["eth-tester", "anvil"])
def w3(request: pytest.FixtureRequest) -> Web3:
    """Each chain-level test runs on both backends."""
    if request.param == "eth-tester":
        return in_process_web3()
    node: Anvil = request.getfixturevalue("anvil")
    return http_web3(node.url)


def new_account(w3: Web3) -> LocalAccount:
    account: LocalAccount = Account.create(os.urandom(32))
    fund(w3, account.address, 10**19)
    return account


@dataclass
class Market:
    """A deployed set with a funded provider (staked, offering PRICE), client and stranger."""

    w3: Web3
    deployment: Deployment
    owner: FlowNet
    provider: FlowNet
    client: FlowNet
    stranger: FlowNet

    def actor(self) -> FlowNet:
        """One more funded account with 1000 FLOW and approvals in place."""
        actor = FlowNet(self.w3, self.deployment, new_account(self.w3))
        self.owner.transfer(actor.address, 1_000 * TOKEN_UNIT)
        actor.approve(actor.market.address)
        actor.approve(actor.staking.address)
        return actor


@pytest.fixture
def market(w3: Web3) -> Market:
    deployer = new_account(w3)
    deployment = deploy(w3, Sender(w3, deployer), DeployConfig())
    owner = FlowNet(w3, deployment, deployer)
    people = [FlowNet(w3, deployment, new_account(w3)) for _ in range(3)]
    for person in people:
        owner.transfer(person.address, 20_000 * TOKEN_UNIT)
        person.approve(person.market.address)
        person.approve(person.staking.address)
    provider, client, stranger = people
    provider.stake(Role.PROVIDER, 10_000 * TOKEN_UNIT)
    provider.set_offer(PRICE, "bafkreitestprovidermetadata")
    return Market(w3, deployment, owner, provider, client, stranger)
