"""The provider's limits against abuse, and the two tools that enforce rates: token buckets and log limiters.

Everything a client can make the provider spend is bounded here: bytes on credit (per order and per
wallet), connections that have not finished their handshake (per address and overall), sessions (per
wallet and overall), name lookups (per session, per wallet, overall), signature checks of receipts and
service proofs (per session and overall), pending payment-book writes, and log lines. The defaults
suit one provider process on a small machine; `ProviderConfig.limits` replaces them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["LogLimiter", "PendingHandshakes", "TokenBucket", "TunnelLimits"]


@dataclass(frozen=True)
class TunnelLimits:
    """What one provider grants its clients at most (see the module docstring)."""

    #: Unpaid bytes (carried, or granted as upload window) across all the orders of one client wallet;
    #: None: twice the credit window.
    wallet_credit_window: int | None = None
    #: Accepted connections still in their TLS handshake, per remote address and overall; a new one
    #: beyond either cap closes the oldest pending one (an idle socket gives way to a live client).
    pending_handshakes_per_address: int = 32
    pending_handshakes: int = 256
    #: Sessions overall (a new one beyond is refused) and per client wallet (the oldest gives way), and
    #: how fast a wallet may open new ones (a second and burst; beyond, they are refused).
    sessions: int = 512
    sessions_per_wallet: int = 8
    new_sessions_per_second: float = 5.0
    new_session_burst: int = 10
    #: Frames other than DATA (OPEN, RECEIPT, SERVICE_PROOF, WINDOW, CLOSE) a session may send a second,
    #: and burst; beyond, the provider stops reading from it until it is back within the rate.
    control_frames_per_second: float = 2000.0
    control_frame_burst: int = 4096
    #: OPENs for orders a session cannot use (unknown, another provider's, another client's) a second,
    #: and burst; beyond, the session is closed as a protocol violation.
    foreign_opens_per_second: float = 8.0
    foreign_open_burst: int = 64
    #: Streams (each a socket) overall and per wallet over all its sessions (each session also has
    #: `ProviderConfig.max_streams`). With a low open-file limit the provider lowers the caps on
    #: handshakes, sessions and streams to fit it (`ProviderServer.start`).
    streams: int = 16384
    streams_per_wallet: int = 2048
    #: A wallet whose session broke the protocol has its new sessions refused for this long, doubled
    #: for each further violation (at most `violation_cooldown_max`).
    violation_cooldown: float = 10.0
    violation_cooldown_max: float = 300.0
    #: Name lookups in flight (the threads that run getaddrinfo) per session, per wallet and overall,
    #: and how long an OPEN waits for one.
    lookups_per_session: int = 4
    lookups_per_wallet: int = 8
    lookups: int = 32
    lookup_timeout: float = 5.0
    #: Signature checks (receipts and service proofs) per second and burst, per session and overall.
    #: Receipts are cumulative, so a session's pending receipts collapse into its newest per order.
    verifications_per_second: float = 100.0
    verification_burst: int = 50
    total_verifications_per_second: float = 2000.0
    total_verification_burst: int = 200
    #: Payment-book writes waiting for the writer thread; beyond it signature checks wait.
    book_backlog: int = 1024
    #: Service proofs kept waiting per session, and the oldest epoch accepted (seconds before now).
    pending_proofs_per_session: int = 64
    proof_max_age: float = 3600.0
    #: Log lines of one kind (refusals, rejected receipts, failed handshakes, ...) per second and burst;
    #: the rest are counted and reported in one line.
    log_lines_per_second: float = 1.0
    log_burst: int = 20

    def wallet_window(self, credit_window: int) -> int:
        return self.wallet_credit_window if self.wallet_credit_window is not None else 2 * credit_window


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up."""

    __slots__ = ("burst", "clock", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def ready(self) -> bool:
        self._refill()
        return self.tokens >= 1

    def spend(self, count: float) -> None:
        """Spend `count` tokens, going into debt if need be (`wait` then says how long it lasts)."""
        self._refill()
        self.tokens -= count

    def take(self) -> bool:
        """Spend a token if there is one."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait(self) -> float:
        """Seconds until a token is available."""
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class LogLimiter:
    """Log lines of one kind at a bounded rate; the lines it drops are counted and reported.

    The first line after a quiet spell says how many similar lines were suppressed before it, and
    `flush` (called periodically) reports a count that no later line has.
    """

    def __init__(self, logger: logging.Logger, kind: str, rate: float, burst: int) -> None:
        self.logger = logger
        self.kind = kind
        self.bucket = TokenBucket(rate, burst)
        self.suppressed = 0
        self.total_suppressed = 0

    def log(self, level: int, msg: str, *args: object) -> None:
        if not self.logger.isEnabledFor(level):
            return
        if not self.bucket.take():
            self.suppressed += 1
            self.total_suppressed += 1
            return
        if self.suppressed:
            msg += f" ({self.suppressed} similar {self.kind} line(s) suppressed before this one)"
            self.suppressed = 0
        self.logger.log(level, msg, *args)

    def info(self, msg: str, *args: object) -> None:
        self.log(logging.INFO, msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        self.log(logging.WARNING, msg, *args)

    def flush(self) -> None:
        if self.suppressed:
            self.logger.warning("%d %s line(s) suppressed (rate limit)", self.suppressed, self.kind)
            self.suppressed = 0


class PendingHandshakes:
    """Connections still in their handshake, per remote address and overall.

    Admitting one beyond either cap gives up the oldest pending one (of that address, or overall)
    rather than the newcomer: an honest client finishes its handshake in milliseconds, so only sockets
    that sit idle are ever given up, and idle sockets can never lock live clients out.
    """

    def __init__(self, per_address: int, total: int) -> None:
        self.per_address = per_address
        self.total = total
        self._all: dict[Hashable, str] = {}  # connection -> address, oldest first
        self._by_address: dict[str, dict[Hashable, None]] = {}
        self.given_up = 0

    def __len__(self) -> int:
        return len(self._all)

    def admit(self, conn: Hashable, address: str) -> list[Hashable]:
        """Count `conn` as pending; the connections to give up to make room (the caller closes them)."""
        out: list[Hashable] = []
        same = self._by_address.get(address)
        if same is not None and len(same) >= self.per_address:
            out.append(next(iter(same)))
            self.done(out[-1])
        if len(self._all) >= self.total:
            out.append(next(iter(self._all)))
            self.done(out[-1])
        self._all[conn] = address
        self._by_address.setdefault(address, {})[conn] = None
        self.given_up += len(out)
        return out

    def done(self, conn: Hashable) -> None:
        """`conn` finished its handshake, or closed."""
        address = self._all.pop(conn, None)
        if address is not None:
            same = self._by_address[address]
            del same[conn]
            if not same:
                del self._by_address[address]
