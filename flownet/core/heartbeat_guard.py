"""The one-endpoint-per-epoch rule a heartbeat sender keeps, as pure data and rules (no I/O).

Two heartbeats of one provider and epoch that name different endpoints are slashable equivocation
(``SlashingManager.slashEquivocation``), whoever signed them and why. An honest provider therefore
commits to one endpoint per (deployment, provider, epoch) before it signs anything for that epoch:

- the first heartbeat signed for an epoch fixes the epoch's endpoint (an `EpochEndpoint`);
- every later heartbeat for that epoch must name the same endpoint (`check_endpoint`); another one
  is refused with `EndpointAlreadySigned` and can be used from the next epoch on;
- a record keeps the last `RETAIN_EPOCHS` epochs; an epoch below its `floor` (only a clock that went
  back that far asks for one) can no longer be checked and is refused with `EpochTooOld`.

The same endpoint with another timestamp or load is not equivocation; several heartbeats per epoch
are normal. flownet.heartbeats keeps the record in SQLite and signs through it.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from flownet.core.heartbeat import endpoint_hash
from flownet.errors import FlowNetError

__all__ = [
    "RETAIN_EPOCHS",
    "EndpointAlreadySigned",
    "EpochEndpoint",
    "EpochTooOld",
    "HeartbeatRefused",
    "check_endpoint",
    "floor_after",
]

# A week of 30 s epochs: how far back a record still answers for an epoch's endpoint.
RETAIN_EPOCHS = 20_160


class HeartbeatRefused(FlowNetError):
    """The sender will not sign this heartbeat: it could be evidence of equivocation."""

    exit_code = 13


class EndpointAlreadySigned(HeartbeatRefused):
    """The epoch already has heartbeats signed for another endpoint; this one waits for the next epoch."""

    def __init__(self, provider: str, epoch: int, signed: str, refused: str) -> None:
        self.provider = provider
        self.epoch = epoch
        self.signed_endpoint = signed
        self.refused_endpoint = refused
        super().__init__(
            f"refusing to sign a heartbeat of {provider} for endpoint {refused!r} in epoch {epoch}: that epoch "
            f"already has heartbeats signed for {signed!r}, and two endpoints in one epoch are slashable "
            f"equivocation; {refused!r} can be used from epoch {epoch + 1}"
        )


class EpochTooOld(HeartbeatRefused):
    """The epoch is older than the record remembers (the clock went back): its endpoint is unknown."""

    def __init__(self, provider: str, epoch: int, floor: int) -> None:
        self.provider = provider
        self.epoch = epoch
        self.floor = floor
        super().__init__(
            f"refusing to sign a heartbeat of {provider} for epoch {epoch}: the heartbeat record only remembers "
            f"epochs from {floor} on, so it cannot tell which endpoint was signed then (is the clock right?)"
        )


@dataclass(frozen=True)
class EpochEndpoint:
    """The endpoint a provider signed heartbeats for in one epoch."""

    provider: str
    epoch: int
    endpoint: str

    @property
    def endpoint_hash(self) -> bytes:
        return endpoint_hash(self.endpoint)


def check_endpoint(recorded: EpochEndpoint | None, provider: str, epoch: int, endpoint: str, floor: int) -> None:
    """Raise HeartbeatRefused unless `provider` may sign a heartbeat for `endpoint` in `epoch`.

    `recorded` is what the record holds for (provider, epoch), None if nothing; `floor` the oldest epoch
    it still remembers. Endpoints compare by their hash, exactly as the slashing contract compares them.
    """
    if epoch < floor:
        raise EpochTooOld(to_checksum_address(provider), epoch, floor)
    if recorded is not None and recorded.endpoint_hash != endpoint_hash(endpoint):
        raise EndpointAlreadySigned(to_checksum_address(provider), epoch, recorded.endpoint, endpoint)


def floor_after(floor: int, epoch: int) -> int:
    """The record's new floor once `epoch` is recorded: it keeps the last RETAIN_EPOCHS epochs, never fewer."""
    return max(floor, epoch - RETAIN_EPOCHS + 1)
