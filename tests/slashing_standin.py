"""A stand-in for `flownet.chain.slashing.Slashing` (issue 6 bindings, written on another branch) with
just the calls `flownet.agents.verifier_io.SlashingChain` makes, sent straight to the real contract.
Tests install it as the module `flownet.chain.slashing` with `install_stand_in(monkeypatch)`.
"""

from __future__ import annotations

import sys
import types

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from flownet.chain.deploy import Deployment
from flownet.chain.tx import Sender, Sent
from flownet.core.heartbeat import Heartbeat, SignedHeartbeat


class StandIn:
    """Just enough of flownet.chain.slashing.Slashing for SlashingChain, on the real contract."""

    def __init__(self, w3: Web3, deployment: Deployment, account: LocalAccount | None = None) -> None:
        self.contract = deployment.contract(w3, "SlashingManager")
        self.sender = Sender(w3, account) if account is not None else None

    def attestation_digest(self, provider: str, epoch: int, kind: int, cid: str) -> bytes:
        return bytes(self.contract.functions.attestationDigest(provider, epoch, kind, cid).call())

    def sign_attestation(self, account: LocalAccount, provider: str, epoch: int, kind: int, cid: str) -> bytes:
        return bytes(account.unsafe_sign_hash(self.attestation_digest(provider, epoch, kind, cid)).signature)

    def current_epoch(self) -> int:
        return int(self.contract.functions.currentEpoch().call())

    def open_dispute(self, provider: str, epoch: int, kind: int, cid: str, signatures: list[bytes]) -> tuple[int, Sent]:
        dispute_id = int(self.contract.functions.nextDisputeId().call())
        assert self.sender is not None
        sent = self.sender.transact(self.contract.functions.openDispute(provider, epoch, kind, cid, signatures))
        return dispute_id, sent

    def execute(self, dispute_id: int) -> Sent:
        assert self.sender is not None
        return self.sender.transact(self.contract.functions.executeDispute(dispute_id))

    def slash_equivocation(self, a: SignedHeartbeat, b: SignedHeartbeat, cid: str) -> Sent:
        def tup(h: Heartbeat) -> tuple[str, int, bytes, int, int]:
            return (h.provider, h.epoch, h.endpoint_hash, h.load, h.timestamp)

        assert self.sender is not None
        fn = self.contract.functions.slashEquivocation(
            tup(a.heartbeat), a.signature, tup(b.heartbeat), b.signature, cid
        )
        return self.sender.transact(fn)


def install_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("flownet.chain.slashing")
    module.Slashing = StandIn  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "flownet.chain.slashing", module)
