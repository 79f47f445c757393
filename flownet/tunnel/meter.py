"""Pure metering and credit logic for one order's tunnel traffic.

An `OrderMeter` is an immutable snapshot: counting bytes or accepting a receipt returns a new one.
Receipt signatures are verified with the EIP-712 code (flownet.core.eip712, whose shape checks
`is_low_s` and `has_valid_v` on a 65-byte ``r || s || v`` signature are re-exported here), not here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from flownet.core.eip712 import SECP256K1_N, has_valid_v, is_low_s
from flownet.core.pricing import cost_of
from flownet.core.receipts import Order, Receipt
from flownet.errors import ReceiptError

__all__ = ["SECP256K1_N", "OrderMeter", "has_valid_v", "is_low_s"]


@dataclass(frozen=True)
class OrderMeter:
    """Bytes carried for one order, and the latest receipt accepted for them."""

    order_id: bytes
    bytes_up: int = 0
    bytes_down: int = 0
    accepted: Receipt | None = None

    def __post_init__(self) -> None:
        if len(self.order_id) != 32:
            raise ValueError(f"order id must be 32 bytes (got {len(self.order_id)})")
        if self.bytes_up < 0 or self.bytes_down < 0:
            raise ValueError(f"byte counts must be non-negative (up={self.bytes_up}, down={self.bytes_down})")

    @classmethod
    def for_order(cls, order: Order) -> OrderMeter:
        return cls(order.order_id)

    @property
    def total_bytes(self) -> int:
        return self.bytes_up + self.bytes_down

    @property
    def paid_bytes(self) -> int:
        return self.accepted.cumulative_bytes if self.accepted else 0

    @property
    def paid_amount(self) -> int:
        return self.accepted.cumulative_amount if self.accepted else 0

    @property
    def unpaid_bytes(self) -> int:
        """Bytes carried beyond those the latest accepted receipt covers (never negative)."""
        return max(0, self.total_bytes - self.paid_bytes)

    def add_up(self, count: int) -> OrderMeter:
        """A meter with `count` more bytes sent from client to destination."""
        if count < 0:
            raise ValueError(f"byte count must be non-negative (not {count})")
        return replace(self, bytes_up=self.bytes_up + count)

    def add_down(self, count: int) -> OrderMeter:
        """A meter with `count` more bytes sent from destination to client."""
        if count < 0:
            raise ValueError(f"byte count must be non-negative (not {count})")
        return replace(self, bytes_down=self.bytes_down + count)

    def owed_amount(self, price_per_gib: int) -> int:
        """What the traffic so far costs beyond the amount already accepted (never negative)."""
        return max(0, cost_of(self.total_bytes, price_per_gib) - self.paid_amount)

    def should_pause(self, credit_window_bytes: int) -> bool:
        """True once the unpaid bytes have used up the credit window: stop relaying until a receipt arrives."""
        if credit_window_bytes < 0:
            raise ValueError(f"credit window must be non-negative (not {credit_window_bytes})")
        return self.unpaid_bytes >= credit_window_bytes

    def accept_receipt(self, receipt: Receipt, order: Order) -> OrderMeter:
        """A meter whose latest receipt is `receipt`, or ReceiptError if the market would not honour it.

        The rules are the contract's: same order, a cumulative amount larger than the one accepted
        before (and bytes not going backwards), at most the deposit and at most
        ``ceil(bytes * price / 2**30)``. The signature is checked elsewhere.
        """
        if order.order_id != self.order_id:
            raise ReceiptError(f"order 0x{order.order_id.hex()} is not this meter's order 0x{self.order_id.hex()}")
        receipt.check_against(order)
        if self.accepted is not None:
            if receipt.cumulative_amount <= self.accepted.cumulative_amount:
                raise ReceiptError(
                    f"receipt amount {receipt.cumulative_amount} is not more than the "
                    f"{self.accepted.cumulative_amount} already accepted"
                )
            if receipt.cumulative_bytes < self.accepted.cumulative_bytes:
                raise ReceiptError(
                    f"receipt covers {receipt.cumulative_bytes} bytes, fewer than the "
                    f"{self.accepted.cumulative_bytes} already acknowledged"
                )
        elif receipt.cumulative_amount == 0:
            raise ReceiptError("receipt amount 0 is not more than the 0 already paid")
        return replace(self, accepted=receipt)
