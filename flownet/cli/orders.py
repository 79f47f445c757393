"""Order lookup and display shared by the provider and client commands."""

from __future__ import annotations

import datetime as dt
import re
import time

from rich.table import Table

from flownet.chain import logs
from flownet.chain.market import FlowNet
from flownet.core.receipts import Order
from flownet.core.units import format_flow
from flownet.errors import ConfigError

STATUS = {0: "unknown", 1: "open", 2: "closed"}
_NONCE_RE = re.compile(r"^#?([0-9]+)$")
_ID_RE = re.compile(r"^(0x)?([0-9a-fA-F]{8,64})$")


def find_order(net: FlowNet, reference: str, client: str | None = None, provider: str | None = None) -> Order:
    """The order `reference` names: its number (3 or #3) or its id (0x…, a unique prefix of 8+ hex digits)."""
    candidates = logs.orders(net.w3, net.deployment, client=client, provider=provider)
    nonce = _NONCE_RE.match(reference.strip())
    if nonce:
        matches = [o for o in candidates if o.nonce == int(nonce.group(1))]
    else:
        hexid = _ID_RE.match(reference.strip())
        if not hexid:
            raise ConfigError(f"invalid order {reference!r}: give its number (e.g. 3) or its id (0x followed by hex)")
        prefix = hexid.group(2).lower()
        matches = [o for o in candidates if o.order_id.hex().startswith(prefix)]
    whose = f" of {client or provider}" if (client or provider) else ""
    if not matches:
        raise ConfigError(f"no order {reference!r}{whose} on this deployment (see `flownet client orders`)")
    if len(matches) > 1:
        raise ConfigError(f"order id prefix {reference!r} is ambiguous: give more digits")
    return matches[0]


def when(timestamp: int) -> str:
    """'2026-11-22 21:40 UTC (in 1.0 d)' or '... (3 min ago)'."""
    delta = timestamp - int(time.time())
    stamp = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{stamp} (in {_span(delta)})" if delta >= 0 else f"{stamp} ({_span(-delta)} ago)"


def _span(seconds: int) -> str:
    if seconds >= 86_400:
        return f"{seconds / 86_400:.1f} d"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.1f} h"
    return f"{seconds // 60} min"


def order_table(net: FlowNet, orders: list[Order], counterpart: str, cancelled: set[bytes] | None = None) -> Table:
    """A table of `orders` with their on-chain state; `counterpart` is "provider" or "client"; orders in
    `cancelled` (ids) show as cancelled by their provider rather than closed."""
    table = Table("#", "order id", counterpart, "deposit", "price/GiB", "paid", "status", "expires")
    for column in table.columns:
        column.no_wrap = True
    for order in orders:
        paid, status = net.order_state(order)
        other = order.provider if counterpart == "provider" else order.client
        table.add_row(
            str(order.nonce),
            "0x" + order.order_id.hex()[:12] + "…",
            other,
            format_flow(order.deposit),
            format_flow(order.price_per_gib),
            format_flow(paid),
            "cancelled" if status == 2 and order.order_id in (cancelled or set()) else STATUS.get(status, str(status)),
            when(order.expiry),
        )
    return table
