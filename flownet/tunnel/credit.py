"""How many bytes a provider carries on credit: the unpaid allowance of an order, and of a wallet.

A provider is paid only for bytes a signed receipt covers, so every byte it carries beyond the
latest receipt is credit. Two kinds of bytes count against it:

- **unpaid** bytes: carried (in either direction) and not covered by the accepted receipt;
- **granted** bytes: upload window the provider has granted on the order's streams and the client has
  not used yet. The client may send them without asking, so they are credit already: this is what
  keeps a thousand streams opened at once from each pushing a window unpaid.

For every order, ``unpaid + granted`` never exceeds the credit window, and for every client wallet the
same sum over all its orders never exceeds the wallet's window. Grants take at most half of either
window, so bytes towards the client can always flow once the client pays. The provider sends
towards the client only what `room` allows and grants upload window only within `upload_room`; a
stream that finds no room waits in `starved` until a receipt (or a stream ending) frees some.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flownet.core.pricing import GIB
from flownet.core.receipts import Order, Receipt

if TYPE_CHECKING:
    from flownet.tunnel.server import ProviderStream

__all__ = ["OrderAccount", "WalletAccount"]


class WalletAccount:
    """The credit of one client wallet, summed over its orders' accounts."""

    __slots__ = ("accounts", "granted", "unpaid", "wallet", "window")

    def __init__(self, wallet: str, window: int) -> None:
        self.wallet = wallet
        self.window = window
        self.unpaid = 0
        self.granted = 0
        self.accounts: set[OrderAccount] = set()

    @property
    def room(self) -> int:
        return self.window - self.unpaid - self.granted

    @property
    def upload_room(self) -> int:
        return min(self.window // 2 - self.granted, self.room)


class OrderAccount:
    """Metering, payment and credit of one order, shared by every session and stream using it."""

    def __init__(self, order: Order, accepted: Receipt | None, window: int = 0, wallet: WalletAccount | None = None):
        self.order = order
        self.accepted_amount = accepted.cumulative_amount if accepted else 0
        self.accepted_bytes = accepted.cumulative_bytes if accepted else 0
        self.metered = self.accepted_bytes  # bytes carried (both directions); a restart resumes from the receipt
        self.window = window
        self.wallet = wallet if wallet is not None else WalletAccount(order.client, 2 * window)
        self.wallet.accounts.add(self)
        self.covered = self._covered()
        self.unpaid = 0
        self._set_unpaid()
        self.granted = 0
        self.streams: set[ProviderStream] = set()
        self.starved: set[ProviderStream] = set()  # streams waiting for room
        self.opening = 0  # OPENs admitted on this order and still connecting
        self.held_since: float | None = None
        self.open = True
        self.checked_at = float("-inf")  # when `open` was last read from the index
        price, deposit = order.price_per_gib, order.deposit
        # the fewest bytes whose cost reaches the deposit (cost_of rounds up)
        self.exhaust_at = -1 if price == 0 else 0 if deposit <= 0 else (deposit - 1) * GIB // price + 1

    def _covered(self) -> int:
        price = self.order.price_per_gib
        return -1 if price == 0 else self.accepted_amount * GIB // price

    @property
    def covered_bytes(self) -> int:
        """Bytes the accepted amount pays for at the order's price."""
        return self.metered if self.covered < 0 else self.covered

    def _set_unpaid(self) -> None:
        unpaid = 0 if self.covered < 0 else max(0, self.metered - self.covered)
        self.wallet.unpaid += unpaid - self.unpaid
        self.unpaid = unpaid

    @property
    def exhausted(self) -> bool:
        """Nothing more can be paid: the accepted amount is the deposit, or the traffic already costs it."""
        return self.accepted_amount >= self.order.deposit or 0 <= self.exhaust_at <= self.metered

    @property
    def room(self) -> int:
        """Bytes that may be carried now without going past the order's or the wallet's credit."""
        return min(self.window - self.unpaid - self.granted, self.wallet.room)

    @property
    def upload_room(self) -> int:
        """Upload window that may be granted now (at most half of either window is ever granted)."""
        return min(self.window // 2 - self.granted, self.window - self.unpaid - self.granted, self.wallet.upload_room)

    def carry(self, size: int) -> None:
        """`size` more bytes carried."""
        self.metered += size
        self._set_unpaid()

    def grant(self, size: int) -> None:
        self.granted += size
        self.wallet.granted += size

    def release(self, size: int) -> None:
        """`size` bytes of granted window the client can no longer use."""
        self.granted -= size
        self.wallet.granted -= size

    def pay(self, receipt: Receipt) -> None:
        """Take `receipt` (already verified) as the order's latest."""
        self.accepted_amount = receipt.cumulative_amount
        self.accepted_bytes = receipt.cumulative_bytes
        self.covered = self._covered()
        self._set_unpaid()

    @property
    def idle(self) -> bool:
        """Nothing in flight and nothing owed: the account can be dropped (and reloaded when next used)."""
        return (
            not self.streams and not self.opening and self.held_since is None and self.unpaid == 0 and self.granted == 0
        )

    def forget(self) -> None:
        """Leave the wallet's sums (an idle account that is dropped)."""
        self.wallet.accounts.discard(self)
