"""Deliberate provider misbehaviour, FOR TESTING AND THE DEMO ONLY: never active unless asked for.

A verifier must catch a faulty provider; these faults make one on demand
(`flownet provider serve --fault drop-streams --fault over-meter`, or `ProviderConfig.faults`):

- ``drop-streams[:every=N,after=BYTES]``: every Nth stream the provider opens (default every 2nd)
  is reset when the destination's data would take it past BYTES bytes carried (default 0: at the
  first byte from the destination); the provider relays only up to BYTES, as a flaky or overloaded
  provider would. A client sees its download cut short.
- ``over-meter[:factor=F]``: the provider counts F times the bytes it really carries (default 1.5):
  it reports the inflated count in its METER frames and holds the order's streams when the
  inflated unpaid balance reaches its credit window, as a provider overcharging would.

`Faults.parse` reads the specs; a `Faults()` with nothing set changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flownet.errors import ConfigError

__all__ = ["FAULT_NAMES", "Faults"]

FAULT_NAMES = ("drop-streams", "over-meter")


def _options(name: str, text: str, allowed: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in allowed or not value:
            raise ConfigError(
                f"invalid option {part!r} for fault {name!r}: expected {', '.join(k + '=VALUE' for k in allowed)}"
            )
        options[key] = value
    return options


@dataclass
class Faults:
    """Which faults a provider injects. Mutable only in its stream counter."""

    drop_every: int = 0  # 0: never drop; N: drop every Nth stream
    drop_after: int = 0  # bytes a doomed stream carries before it is reset
    over_meter: float = 1.0  # factor applied to metered bytes; 1.0: honest
    _streams: int = 0

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Faults:
        """Faults from ``--fault`` values such as ``drop-streams``, ``drop-streams:every=3,after=4096``,
        ``over-meter`` or ``over-meter:factor=2``."""
        faults = cls()
        for spec in specs:
            name, _, rest = spec.strip().partition(":")
            if name == "drop-streams":
                options = _options(name, rest, ("every", "after"))
                try:
                    faults.drop_every = int(options.get("every", "2"))
                    faults.drop_after = int(options.get("after", "0"))
                except ValueError:
                    raise ConfigError(f"invalid fault {spec!r}: every and after must be integers") from None
                if faults.drop_every < 1 or faults.drop_after < 0:
                    raise ConfigError(f"invalid fault {spec!r}: every must be >= 1 and after >= 0")
            elif name == "over-meter":
                options = _options(name, rest, ("factor",))
                try:
                    faults.over_meter = float(options.get("factor", "1.5"))
                except ValueError:
                    raise ConfigError(f"invalid fault {spec!r}: factor must be a number, e.g. 1.5") from None
                if not 1.0 < faults.over_meter <= 100.0:
                    raise ConfigError(f"invalid fault {spec!r}: factor must be above 1 and at most 100")
            else:
                raise ConfigError(f"unknown fault {name!r} (choose from {', '.join(FAULT_NAMES)})")
        return faults

    @property
    def active(self) -> bool:
        return self.drop_every > 0 or self.over_meter != 1.0

    def describe(self) -> str:
        parts = []
        if self.drop_every:
            parts.append(f"drop every {self.drop_every}. stream after {self.drop_after} bytes")
        if self.over_meter != 1.0:
            parts.append(f"over-meter x{self.over_meter:g}")
        return ", ".join(parts) or "none"

    def doom_next_stream(self) -> bool:
        """Count a newly opened stream; True if it is one to drop."""
        if not self.drop_every:
            return False
        self._streams += 1
        return self._streams % self.drop_every == 0

    def metered(self, size: int) -> int:
        """The byte count the provider books for `size` bytes really carried."""
        if self.over_meter == 1.0:
            return size
        return int(size * self.over_meter)
