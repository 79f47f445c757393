"""Typed bindings for SlashingManager and TrustRegistry: attest, dispute, rebut, execute, score.

Digests are computed in Python (flownet.core.eip712) and equal the contract's own `attestationDigest`
and `serviceProofDigest`, so verifiers and clients sign offline. Views return frozen dataclasses
built by field name (flownet.chain.views). Writes go through `Sender` and return
its `Sent` record; reverts arrive as `TransactionFailed` with the contract's custom error decoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from flownet.chain.deploy import Deployment
from flownet.chain.tx import Sender, Sent
from flownet.chain.views import Dispute, SlashingConfig, call_struct
from flownet.core import eip712
from flownet.core.eip712 import KINDS, parse_kind
from flownet.core.heartbeat import SignedHeartbeat
from flownet.core.receipts import Order
from flownet.errors import ChainError, ConfigError

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "KINDS",
    "NEUTRAL_SCORE",
    "STATUSES",
    "DisputeView",
    "Slashing",
    "Trust",
    "attestation_typed_data",
    "parse_kind",
    "service_proof_typed_data",
]

DOMAIN_NAME = eip712.SLASHING_NAME
DOMAIN_VERSION = eip712.VERSION
#: ISlashingManager.DisputeStatus, by value.
STATUSES = ("none", "open", "rebutted", "executed", "superseded")
#: TrustRegistry's score of a subject nobody has scored yet (scoreOf answers it).
NEUTRAL_SCORE = 500
UINT64_MAX = 2**64 - 1


def _attestation(provider: str, epoch: int, kind: int | str, evidence_cid: str) -> dict[str, Any]:
    if not 0 <= epoch <= UINT64_MAX:
        raise ConfigError(f"epoch {epoch} is outside uint64")
    return {
        "provider": Web3.to_checksum_address(provider),
        "epoch": epoch,
        "kind": parse_kind(kind),
        "evidenceCid": evidence_cid,
    }


def _service_proof(order_id: bytes, epoch: int, bytes_served: int) -> dict[str, Any]:
    if len(order_id) != 32:
        raise ConfigError(f"order id must be 32 bytes (got {len(order_id)}: 0x{order_id.hex()})")
    if not 0 <= epoch <= UINT64_MAX:
        raise ConfigError(f"epoch {epoch} is outside uint64")
    if bytes_served < 0:
        raise ConfigError(f"bytes served must not be negative (not {bytes_served})")
    return {"orderId": bytes(order_id), "epoch": epoch, "bytesServed": bytes_served}


def attestation_typed_data(
    chain_id: int, manager: str, provider: str, epoch: int, kind: int, evidence_cid: str
) -> dict[str, Any]:
    """The EIP-712 Attestation a verifier signs (eth-account's ``full_message`` form)."""
    domain = eip712.slashing_domain(chain_id, manager)
    return eip712.typed_data(domain, "Attestation", _attestation(provider, epoch, kind, evidence_cid))


def service_proof_typed_data(
    chain_id: int, manager: str, order_id: bytes, epoch: int, bytes_served: int
) -> dict[str, Any]:
    """The EIP-712 ServiceProof a client signs to rebut a dispute against its provider."""
    domain = eip712.slashing_domain(chain_id, manager)
    return eip712.typed_data(domain, "ServiceProof", _service_proof(order_id, epoch, bytes_served))


@dataclass(frozen=True)
class DisputeView:
    """ISlashingManager.Dispute as `disputeOf` returns it; status is one of STATUSES."""

    provider: str
    epoch: int
    challenge_ends: int
    kind: int
    status: str
    remaining: int  # accusers not struck
    struck: tuple[str, ...]  # accusers struck by their own service proofs
    due: int  # the provider's stake held, and each accuser's bond
    verifiers: tuple[str, ...]
    evidence_cid: str

    @classmethod
    def of(cls, d: Dispute) -> DisputeView:
        """The view of a raw `Dispute`: its status by name, its struck accusers by address."""
        return cls(
            d.provider,
            d.epoch,
            d.challenge_ends,
            d.kind,
            STATUSES[d.status],
            d.remaining,
            tuple(v for i, v in enumerate(d.verifiers) if d.struck >> i & 1),
            d.due,
            d.verifiers,
            d.evidence_cid,
        )

    @property
    def accusers(self) -> tuple[str, ...]:
        """The accusers not struck (yet): those whose own service proof can still strike them."""
        return tuple(v for v in self.verifiers if v not in self.struck)


class _Bound:
    """Shared plumbing: a contract of the deployment and an optional signing account."""

    contract_name = ""

    def __init__(self, w3: Web3, deployment: Deployment, account: LocalAccount | None = None) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self.sender = Sender(w3, account) if account is not None else None
        self.contract = deployment.contract(w3, self.contract_name)

    @property
    def address(self) -> str:
        return str(self.contract.address)

    def _sender(self) -> Sender:
        if self.sender is None:
            raise ConfigError(f"these {self.contract_name} bindings have no wallet: they can only read")
        return self.sender

    def events(self, sent: Sent, name: str) -> list[Any]:
        """The args of every `name` event this contract emitted in `sent` (other logs are skipped)."""
        return [e["args"] for e in getattr(self.contract.events, name)().process_receipt(sent.receipt, errors=DISCARD)]

    def _one_event(self, sent: Sent, name: str) -> Any:
        events = self.events(sent, name)
        if len(events) != 1:
            raise ChainError(f"{sent.action}: expected one {name} event in {sent.tx_hash}, got {len(events)}")
        return events[0]


class Slashing(_Bound):
    """Bindings to the deployment's SlashingManager (`account` None: views and signing only)."""

    contract_name = "SlashingManager"

    # ------------------------------------------------------------------ EIP-712

    @property
    def domain(self) -> eip712.Domain:
        return eip712.slashing_domain(self.deployment.chain_id, self.address)

    def attestation_digest(self, provider: str, epoch: int, kind: int, evidence_cid: str) -> bytes:
        return eip712.digest(self.domain, "Attestation", _attestation(provider, epoch, kind, evidence_cid))

    def sign_attestation(self, account: LocalAccount, provider: str, epoch: int, kind: int, evidence_cid: str) -> bytes:
        """`account`'s 65-byte r||s||v (v 27/28, low s) signature of the Attestation."""
        return eip712.sign(bytes(account.key), self.attestation_digest(provider, epoch, kind, evidence_cid))

    def service_proof_digest(self, order_id: bytes, epoch: int, bytes_served: int) -> bytes:
        return eip712.digest(self.domain, "ServiceProof", _service_proof(order_id, epoch, bytes_served))

    def sign_service_proof(self, account: LocalAccount, order_id: bytes, epoch: int, bytes_served: int) -> bytes:
        """The client's 65-byte signature proving `bytes_served` for `order_id` in `epoch`."""
        return eip712.sign(bytes(account.key), self.service_proof_digest(order_id, epoch, bytes_served))

    # ------------------------------------------------------------------ views

    def current_epoch(self) -> int:
        return int(self.contract.functions.currentEpoch().call())

    def epoch_seconds(self) -> int:
        return self.settings().epoch_seconds

    def settings(self) -> SlashingConfig:
        """ISlashingManager.Config."""
        return call_struct(SlashingConfig, self.contract, "config")

    def config(self) -> dict[str, int]:
        """ISlashingManager.Config by field name."""
        return self.settings().as_dict()

    def raw_dispute(self, dispute_id: int) -> Dispute:
        """ISlashingManager.Dispute as `disputeOf` returns it (status and struck as numbers)."""
        return call_struct(Dispute, self.contract, "disputeOf", dispute_id)

    def dispute(self, dispute_id: int) -> DisputeView:
        return DisputeView.of(self.raw_dispute(dispute_id))

    def is_epoch_slashed(self, provider: str, epoch: int) -> bool:
        return bool(self.contract.functions.isEpochSlashed(Web3.to_checksum_address(provider), epoch).call())

    # ------------------------------------------------------------------ writes

    def open_dispute(
        self, provider: str, epoch: int, kind: int, evidence_cid: str, signatures: Sequence[bytes]
    ) -> tuple[int, Sent]:
        """Open a dispute with the verifiers' signatures; returns its id (from DisputeOpened)."""
        fn = self.contract.functions.openDispute(
            Web3.to_checksum_address(provider), epoch, parse_kind(kind), evidence_cid, [bytes(s) for s in signatures]
        )
        sent = self._sender().transact(fn, "openDispute")
        return int(self._one_event(sent, "DisputeOpened")["disputeId"]), sent

    def rebut(self, dispute_id: int, order: Order, bytes_served: int, client_signature: bytes) -> Sent:
        """Strike the accuser that is `order`'s client with its own service proof (AccuserStruck); the
        dispute is rebutted once fewer than the quorum of accusers remain."""
        fn = self.contract.functions.rebut(dispute_id, order.as_tuple(), bytes_served, bytes(client_signature))
        return self._sender().transact(fn, "rebut")

    def execute(self, dispute_id: int) -> Sent:
        return self._sender().transact(self.contract.functions.executeDispute(dispute_id), "executeDispute")

    def slash_equivocation(self, a: SignedHeartbeat, b: SignedHeartbeat, evidence_cid: str) -> Sent:
        fn = self.contract.functions.slashEquivocation(
            _heartbeat_tuple(a), bytes(a.signature), _heartbeat_tuple(b), bytes(b.signature), evidence_cid
        )
        return self._sender().transact(fn, "slashEquivocation")


def _heartbeat_tuple(signed: SignedHeartbeat) -> tuple[str, int, bytes, int, int]:
    hb = signed.heartbeat
    return (Web3.to_checksum_address(hb.provider), hb.epoch, bytes(hb.endpoint_hash), hb.load, hb.timestamp)


class Trust(_Bound):
    """Bindings to the deployment's TrustRegistry (`account` None: views only)."""

    contract_name = "TrustRegistry"

    def score_of(self, subject: str, domain: int = 0) -> int:
        """The subject's score in `domain` (0 Network); NEUTRAL_SCORE if never scored."""
        return int(self.contract.functions.scoreOf(Web3.to_checksum_address(subject), domain).call())

    def is_scorer(self, domain: int, scorer: str) -> bool:
        return bool(self.contract.functions.isScorer(domain, Web3.to_checksum_address(scorer)).call())

    def set_score(self, subject: str, domain: int, score: int, reason_cid: str) -> Sent:
        fn = self.contract.functions.setScore(Web3.to_checksum_address(subject), domain, score, reason_cid)
        return self._sender().transact(fn, "setScore")

    def set_scorer(self, domain: int, scorer: str, allowed: bool) -> Sent:
        fn = self.contract.functions.setScorer(domain, Web3.to_checksum_address(scorer), allowed)
        return self._sender().transact(fn, "setScorer")
