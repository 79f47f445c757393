"""Which of its orders a provider cancels, and for how long it then refuses the client.

Pure functions over frozen dataclasses; the provider's keeper (flownet/tunnel/keeper.py) does the I/O.

Opening an order locks part of the provider's stake without asking the provider. The provider
*accepts* an order by redeeming its first receipt (only it may); until then it may cancel the order:
the client gets its whole deposit back and the lock is released (IBandwidthMarket.cancel). A client
that opens an order and never uses it would otherwise hold that stake until expiry plus grace.

`IdlePolicy.decide` cancels an order that carried nothing for ``idle_after`` seconds after the
provider first saw it open:

- nothing was paid for it on chain (so the market still allows the cancel),
- the provider's payment book holds no receipt of it (a receipt is money the cancel would forfeit),
- the tunnel has no stream on it and no unpaid bytes (it is not being served right now).

With ``refuse_for`` the same transaction refuses the client for that long, so it cannot lock the
stake again at once: to keep a provider's stake locked it then needs a fresh funded address for every
order, and each such order is cancelled after ``idle_after``. An honest client that bought early and
never connected gets its whole deposit back and can buy again once the refusal ends (or elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass

from flownet.errors import ConfigError

__all__ = ["FOREVER", "Cancellation", "IdlePolicy", "OrderActivity", "refusal_end"]

#: The largest refusal end the market stores (uint64): a refusal that never ends.
FOREVER = 2**64 - 1


@dataclass(frozen=True)
class OrderActivity:
    """What a provider knows about one of its open orders.

    ``paid`` is what the market paid for it (the index); ``first_seen`` when the provider first saw
    it open (its clock); ``has_receipt`` whether its payment book holds a receipt of it; ``in_use``
    whether its tunnel has streams or unpaid bytes on it.
    """

    order_id: bytes
    client: str
    paid: int
    first_seen: float
    has_receipt: bool
    in_use: bool


@dataclass(frozen=True)
class Cancellation:
    """Cancel `order_id`; refuse its client for `refuse_for` seconds from then (0: no refusal)."""

    order_id: bytes
    refuse_for: int


def refusal_end(chain_now: int, refuse_for: int) -> int:
    """The market's `refuseUntil` for a refusal of `refuse_for` seconds from chain time `chain_now`
    (0: none). The market compares it with block timestamps, so it is counted from chain time, not
    from the provider's clock."""
    return min(chain_now + refuse_for, FOREVER) if refuse_for > 0 else 0


@dataclass(frozen=True)
class IdlePolicy:
    """Cancel an unaccepted order idle for ``idle_after`` seconds (0: never); refuse its client for
    ``refuse_for`` seconds (0: not at all)."""

    idle_after: float
    refuse_for: int = 0

    def __post_init__(self) -> None:
        if self.idle_after < 0:
            raise ConfigError(f"idle time before a cancel must be 0 (off) or positive (not {self.idle_after})")
        if not 0 <= self.refuse_for < FOREVER:
            raise ConfigError(f"refusal length must be 0 (off) or positive seconds (not {self.refuse_for})")

    @property
    def active(self) -> bool:
        return self.idle_after > 0

    def decide(self, activity: OrderActivity, now: float) -> Cancellation | None:
        """The cancellation of `activity`'s order at `now`, or None to keep it."""
        if not self.active or activity.paid or activity.has_receipt or activity.in_use:
            return None
        if now - activity.first_seen < self.idle_after:
            return None
        return Cancellation(activity.order_id, self.refuse_for)
