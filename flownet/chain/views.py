"""Typed results of the contracts' struct-returning views: frozen dataclasses built by field name.

web3 answers a struct as a bare tuple, so indexing the answer of ``stakeOf(x)`` by position silently
means something else the day a field is added. `call_struct(cls, contract, function, *args)` instead
reads the struct's field names from the ABI (``pricePerGiB`` -> ``price_per_gib``), checks they are
exactly the dataclass's fields (a `ChainError` naming both otherwise) and builds the dataclass from
them: addresses checksummed, integers as int, fixed bytes as bytes, arrays as tuples. A test keeps
every dataclass here equal to its ABI struct.

| view | dataclass |
| --- | --- |
| ``Staking.stakeOf(address)`` | `Stake` (`stake_of`) |
| ``BandwidthMarket.orderState(bytes32)`` | `OrderState` (`order_state`) |
| ``SlashingManager.config()`` | `SlashingConfig` |
| ``SlashingManager.disputeOf(uint256)`` | `Dispute` |
| ``CertificateRegistry.status(bytes32, address)`` | flownet.chain.registry.CertificateStatus |
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeVar

from eth_utils.address import to_checksum_address

from flownet.errors import ChainError

__all__ = [
    "Dispute",
    "OrderState",
    "OrderStatus",
    "Role",
    "SlashingConfig",
    "Stake",
    "call_struct",
    "order_state",
    "stake_of",
    "struct_fields",
]

T = TypeVar("T")


class Role(IntEnum):
    """IStaking.Role."""

    NONE = 0
    PROVIDER = 1
    VERIFIER = 2


class OrderStatus(IntEnum):
    """IBandwidthMarket.OrderStatus."""

    NONE = 0
    OPEN = 1
    CLOSED = 2


@dataclass(frozen=True)
class Stake:
    """IStaking.StakeInfo of one address."""

    active: int
    locked: int
    thaw_end: int
    thawing: int
    price_per_gib: int
    role: int

    @property
    def is_verifier(self) -> bool:
        return self.role == Role.VERIFIER

    @property
    def is_provider(self) -> bool:
        return self.role == Role.PROVIDER


@dataclass(frozen=True)
class OrderState:
    """The mutable part of an order: what was paid so far, and its status (0 none, 1 open, 2 closed)."""

    paid: int
    status: int

    def as_tuple(self) -> tuple[int, int]:
        return self.paid, self.status


@dataclass(frozen=True)
class SlashingConfig:
    """ISlashingManager.Config."""

    challenge_window: int
    epoch_seconds: int
    statute_epochs: int
    period: int
    cap_per_period: int
    slash_bps: int
    reward_bps: int
    quorum: int

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Dispute:
    """ISlashingManager.Dispute as `disputeOf` answers it: `status` a DisputeStatus number, `struck` a
    bitmask over `verifiers` (flownet.chain.slashing.DisputeView names both)."""

    provider: str
    epoch: int
    challenge_ends: int
    kind: int
    status: int
    remaining: int
    struck: int
    due: int
    verifiers: tuple[str, ...]
    evidence_cid: str


def _snake(name: str) -> str:
    """``thawEnd`` -> ``thaw_end``, ``pricePerGiB`` -> ``price_per_gib`` (GiB is one word)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name.replace("GiB", "Gib")).lower()


def _value(kind: str, raw: Any) -> Any:
    if kind.endswith("[]"):
        return tuple(_value(kind[:-2], item) for item in raw)
    if kind == "address":
        return str(to_checksum_address(raw))
    if kind.startswith(("uint", "int")):
        return int(raw)
    if kind == "bool":
        return bool(raw)
    if kind.startswith("bytes"):
        return bytes(raw)
    if kind == "string":
        return str(raw)
    raise ChainError(f"no typed view for ABI type {kind}")


def struct_fields(abi: list[dict[str, Any]], function: str) -> tuple[tuple[str, str], ...]:
    """(snake_case name, ABI type) of each field of the one struct `function` returns."""
    for entry in abi:
        if entry.get("type") == "function" and entry.get("name") == function:
            outputs = entry["outputs"]
            if len(outputs) == 1 and outputs[0]["type"] == "tuple":
                return tuple((_snake(c["name"]), c["type"]) for c in outputs[0]["components"])
            return tuple((_snake(o["name"]), o["type"]) for o in outputs)
    raise ChainError(f"the ABI has no function {function!r}")


def build(cls: type[T], fields: tuple[tuple[str, str], ...], values: Any, what: str) -> T:
    """`cls` from one call result whose fields are `fields` (a struct tuple, or a multi-value answer)."""
    if len(fields) > 1 and len(values) == 1 and isinstance(values[0], (list, tuple)):
        values = values[0]
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    if names != [name for name, _ in fields]:
        raise ChainError(f"{what} answers fields {[n for n, _ in fields]}, but {cls.__name__} has {names}")
    if len(values) != len(fields):
        raise ChainError(f"{what} answered {len(values)} values for its {len(fields)} fields")
    return cls(**{name: _value(kind, raw) for (name, kind), raw in zip(fields, values, strict=True)})


def call_struct(cls: type[T], contract: Any, function: str, *args: Any, block: int | str | None = None) -> T:
    """Call the view `function` of `contract` (a web3 contract) and build `cls` from its struct by field name."""
    fields = struct_fields(contract.abi, function)
    call = getattr(contract.functions, function)(*args)
    values = call.call() if block is None else call.call(block_identifier=block)
    return build(cls, fields, values if isinstance(values, (list, tuple)) else (values,), function)


def stake_of(staking: Any, who: str, block: int | str | None = None) -> Stake:
    """Staking's record of `who` (all zero if it never staked)."""
    return call_struct(Stake, staking, "stakeOf", to_checksum_address(who), block=block)


def order_state(market: Any, order_id: bytes, block: int | str | None = None) -> OrderState:
    """The market's (paid, status) of the order `order_id`."""
    return call_struct(OrderState, market, "orderState", bytes(order_id), block=block)
