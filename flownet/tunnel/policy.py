"""No open relay: which destinations a provider's tunnel may connect to.

Only globally routable addresses are allowed by default. Private, loopback, link-local, shared
(100.64/10), multicast, reserved and unspecified addresses are refused — including when they hide
inside an IPv4-mapped or 6to4/Teredo IPv6 address — unless the operator allows a network explicitly
(tests allow 127.0.0.1/32 for a local web server). The tunnel resolves a name once, checks every
address it got, and connects only to a checked address, so DNS rebinding cannot slip past the check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flownet.errors import ConfigError, TunnelError

__all__ = ["DestinationPolicy", "DestinationRefused"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class DestinationRefused(TunnelError):
    """The destination is not a public address and the operator did not allow it."""


def _embedded(address: IPAddress) -> list[IPAddress]:
    """`address` and any IPv4 address carried inside it (mapped, 6to4, Teredo)."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        for inner in (address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None):
            if inner is not None:
                found.append(inner)
    return found


@dataclass(frozen=True)
class DestinationPolicy:
    """Public addresses, plus the networks in `allowed`."""

    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, networks: Iterable[str]) -> DestinationPolicy:
        """A policy from operator input such as ``127.0.0.1/32`` or ``10.1.0.0/16``."""
        parsed = []
        for text in networks:
            try:
                parsed.append(ipaddress.ip_network(text.strip(), strict=True))
            except ValueError as exc:
                raise ConfigError(f"invalid allowed destination network {text!r}: {exc}") from None
        return cls(tuple(parsed))

    def check(self, address: str | IPAddress) -> IPAddress:
        """The address, if the tunnel may connect to it; DestinationRefused naming it otherwise."""
        try:
            ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        except ValueError:
            raise DestinationRefused(f"destination {address!r} is not an IP address") from None
        if any(ip in network for network in self.allowed if network.version == ip.version):
            return ip
        for candidate in _embedded(ip):
            if not candidate.is_global or candidate.is_multicast:
                raise DestinationRefused(
                    f"destination {ip} is not a public address ({_kind(candidate)}); refused — an operator can allow "
                    "it explicitly"
                )
        return ip

    def pick(self, addresses: Sequence[str]) -> IPAddress:
        """The first resolved address of a name, after checking every one (a mixed answer is refused)."""
        if not addresses:
            raise DestinationRefused("the destination name resolved to no address")
        checked = [self.check(a) for a in addresses]
        return checked[0]


def _kind(ip: IPAddress) -> str:
    for label in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{label}"):
            return label.replace("_", "-")
    return "not globally routable"
