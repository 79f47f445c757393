"""FLOW amounts and addresses as people type and read them."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from eth_utils.address import is_address, is_checksum_address, to_checksum_address

from flownet.errors import ConfigError

__all__ = ["DECIMALS", "UNIT", "format_flow", "parse_address", "parse_flow"]

DECIMALS = 18
UNIT = 10**DECIMALS
_AMOUNT_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?:FLOW)?\s*$", re.IGNORECASE)


def parse_flow(text: str, what: str = "amount") -> int:
    """'2.5' or '2.5 FLOW' -> 2500000000000000000 token units; errors name the bad value.

    >>> parse_flow("1.5")
    1500000000000000000
    """
    match = _AMOUNT_RE.match(text)
    if not match:
        raise ConfigError(f"invalid {what} {text!r}: expected a number of FLOW such as 100 or 2.5")
    try:
        value = Decimal(match.group(1)) * UNIT
    except InvalidOperation:
        raise ConfigError(f"invalid {what} {text!r}: expected a number of FLOW such as 100 or 2.5") from None
    if value != value.to_integral_value():
        raise ConfigError(f"invalid {what} {text!r}: FLOW has at most {DECIMALS} decimals")
    return int(value)


def format_flow(units: int) -> str:
    """2500000000000000000 -> '2.5 FLOW'.

    >>> format_flow(15 * UNIT)
    '15 FLOW'
    """
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNIT)
    frac_text = str(frac).rjust(DECIMALS, "0").rstrip("0")
    return f"{sign}{whole:,}{'.' + frac_text if frac_text else ''} FLOW"


def parse_address(text: str, what: str = "address") -> str:
    """A checksummed address; a mixed-case address with a wrong checksum is refused (likely a typo)."""
    value = text.strip()
    if not is_address(value):
        raise ConfigError(f"invalid {what} {text!r}: expected 0x followed by 40 hex digits")
    if value != value.lower() and value[2:] != value[2:].upper() and not is_checksum_address(value):
        raise ConfigError(f"invalid {what} {text!r}: the mixed-case checksum is wrong (a typo?)")
    return str(to_checksum_address(value))
