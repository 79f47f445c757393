"""Orders and cumulative payment receipts, as pure data (no I/O).

An order's id is ``keccak256(abi.encode(Order))``, the same hash the BandwidthMarket computes, so the
id proves the terms. A client pays by signing EIP-712 ``Receipt(orderId, cumulativeBytes,
cumulativeAmount)`` messages over the market's domain (name "FlowNet BandwidthMarket", version "1",
chain id, market address); a provider agrees to a close by signing ``CloseOrder(orderId, finalAmount)``.
The structs, domains and hashing live in flownet.core.eip712.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from flownet.core import eip712
from flownet.core.eip712 import DOMAIN_FIELDS as EIP712_DOMAIN_FIELDS
from flownet.core.pricing import cost_of
from flownet.errors import ReceiptError

__all__ = ["EIP712_DOMAIN_FIELDS", "CloseAgreement", "MarketDomain", "Order", "Receipt"]

DOMAIN_NAME = eip712.MARKET_NAME
DOMAIN_VERSION = eip712.VERSION
ORDER_ABI_TYPES = ["(uint64,address,address,uint96,uint96,uint64)"]


@dataclass(frozen=True)
class MarketDomain:
    """The EIP-712 domain of one BandwidthMarket deployment."""

    chain_id: int
    market: str

    @property
    def eip712_domain(self) -> eip712.Domain:
        return eip712.market_domain(self.chain_id, self.market)

    def as_dict(self) -> dict[str, Any]:
        return self.eip712_domain.as_dict()


@dataclass(frozen=True)
class Order:
    """The immutable terms of an order (see IBandwidthMarket.Order)."""

    nonce: int
    client: str
    provider: str
    deposit: int
    price_per_gib: int
    expiry: int

    @property
    def order_id(self) -> bytes:
        """keccak256(abi.encode(order)): the id the market gives this order."""
        return keccak(abi_encode(ORDER_ABI_TYPES, [self.as_tuple()]))

    def as_tuple(self) -> tuple[int, str, str, int, int, int]:
        return (
            self.nonce,
            to_checksum_address(self.client),
            to_checksum_address(self.provider),
            self.deposit,
            self.price_per_gib,
            self.expiry,
        )

    def max_amount(self, cumulative_bytes: int) -> int:
        """The most a receipt for `cumulative_bytes` may claim: their cost, capped by the deposit."""
        return min(cost_of(cumulative_bytes, self.price_per_gib), self.deposit)

    def receipt_for(self, cumulative_bytes: int) -> Receipt:
        """The receipt a client signs after `cumulative_bytes` have flowed: their cost, capped by the deposit."""
        return Receipt(self.order_id, cumulative_bytes, self.max_amount(cumulative_bytes))


@dataclass(frozen=True)
class Receipt:
    """A client's acknowledgement that `cumulative_amount` is owed for `cumulative_bytes` of an order."""

    order_id: bytes
    cumulative_bytes: int
    cumulative_amount: int

    def __post_init__(self) -> None:
        if len(self.order_id) != 32:
            raise ReceiptError(f"order id must be 32 bytes (got {len(self.order_id)}: 0x{self.order_id.hex()})")
        if self.cumulative_bytes < 0 or self.cumulative_amount < 0:
            raise ReceiptError(
                f"receipt values must be non-negative (bytes={self.cumulative_bytes}, amount={self.cumulative_amount})"
            )

    def check_against(self, order: Order) -> None:
        """Raise ReceiptError if the market would reject this receipt for `order` on its terms alone."""
        if self.order_id != order.order_id:
            raise ReceiptError(f"receipt is for order 0x{self.order_id.hex()}, not 0x{order.order_id.hex()}")
        if self.cumulative_amount > order.deposit:
            raise ReceiptError(f"amount {self.cumulative_amount} exceeds the deposit {order.deposit}")
        limit = cost_of(self.cumulative_bytes, order.price_per_gib)
        if self.cumulative_amount > limit:
            raise ReceiptError(
                f"amount {self.cumulative_amount} is more than {self.cumulative_bytes} bytes cost ({limit})"
            )

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``Receipt`` struct's values."""
        return {
            "orderId": self.order_id,
            "cumulativeBytes": self.cumulative_bytes,
            "cumulativeAmount": self.cumulative_amount,
        }

    def typed_data(self, domain: MarketDomain) -> dict[str, Any]:
        """The EIP-712 message to sign (eth-account's ``encode_typed_data(full_message=...)`` form)."""
        return eip712.typed_data(domain.eip712_domain, "Receipt", self.message())


@dataclass(frozen=True)
class CloseAgreement:
    """A provider's agreement that an order ends with `final_amount` paid in total."""

    order_id: bytes
    final_amount: int

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``CloseOrder`` struct's values."""
        return {"orderId": self.order_id, "finalAmount": self.final_amount}

    def typed_data(self, domain: MarketDomain) -> dict[str, Any]:
        return eip712.typed_data(domain.eip712_domain, "CloseOrder", self.message())
