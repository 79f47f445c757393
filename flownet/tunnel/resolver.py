"""Name lookups for the provider's OPENs, bounded so that no client can starve the others.

`getaddrinfo` blocks a thread until the DNS answers or gives up, which for a name whose servers never
answer takes many seconds, and a thread cannot be interrupted. The event loop's own resolver runs on a
small shared pool (libuv's 4 threads under uvloop, asyncio's default executor otherwise) and queues
every lookup behind the ones before it: a thousand OPENs to such names starve every other client's
lookups until long after the attacker left. `Resolver` runs lookups on its own threads and bounds how
many may be in flight per session, per wallet and overall. A lookup holds its places until its
thread returns (not merely until the OPEN that asked gave up), so the bounds hold even for lookups
that never answer, and an OPEN waits for a place at most `timeout` seconds in all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import socket
import threading
from collections.abc import Callable, Hashable

__all__ = ["LookupsRefused", "Resolver"]


class LookupsRefused(OSError):
    """The lookup could not even start in time: the caller's (or everybody's) lookups are all in flight."""


def _lookup(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)  # looked up at call time: tests swap it
    return [str(info[4][0]) for info in infos]


class _Pool:
    """Daemon threads running jobs: a thread stuck in getaddrinfo never holds up the process's exit."""

    def __init__(self, threads: int) -> None:
        self.size = threads
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[list[str]], Callable[[], list[str]]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], list[str]]) -> concurrent.futures.Future[list[str]]:
        future: concurrent.futures.Future[list[str]] = concurrent.futures.Future()
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"resolver-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        self._jobs.put((future, job))
        return future

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            future, job = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as exc:  # handed to the waiting OPEN
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


class _Slots:
    """A semaphore with a use count, dropped by its owner dict once unused."""

    __slots__ = ("semaphore", "users")

    def __init__(self, size: int) -> None:
        self.semaphore = asyncio.Semaphore(size)
        self.users = 0


class Resolver:
    """getaddrinfo on `threads` threads of its own, at most `per_session`/`per_wallet` in flight per key."""

    def __init__(self, threads: int, per_session: int, per_wallet: int, timeout: float) -> None:
        self.threads = threads
        self.per_session = per_session
        self.per_wallet = per_wallet
        self.timeout = timeout
        self._pool = _Pool(threads)
        self._all: asyncio.Semaphore | None = None
        self._keyed: dict[Hashable, _Slots] = {}
        self.in_flight = 0  # lookups running on a thread
        self.stats = {"lookups": 0, "timeouts": 0, "refused": 0}

    def _slots(self, key: Hashable, size: int) -> _Slots:
        slots = self._keyed.get(key)
        if slots is None:
            slots = self._keyed[key] = _Slots(size)
        slots.users += 1
        return slots

    def _unuse(self, key: Hashable, slots: _Slots) -> None:
        slots.users -= 1
        if slots.users == 0 and self._keyed.get(key) is slots:
            del self._keyed[key]

    async def resolve(self, session: Hashable, wallet: str, host: str, port: int) -> list[str]:
        """The addresses of `host`; OSError (LookupsRefused, or TimeoutError for a slow answer) if none in time."""
        loop = asyncio.get_running_loop()
        if self._all is None:
            self._all = asyncio.Semaphore(self.threads)
        deadline = loop.time() + self.timeout
        held: list[tuple[Hashable, _Slots]] = []
        semaphores: list[asyncio.Semaphore] = []
        started = False
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    keyed: tuple[tuple[Hashable, int], ...] = (
                        (("session", session), self.per_session),
                        (("wallet", wallet), self.per_wallet),
                    )
                    for key, size in keyed:
                        slots = self._slots(key, size)
                        held.append((key, slots))
                        await slots.semaphore.acquire()
                        semaphores.append(slots.semaphore)
                    await self._all.acquire()
                    semaphores.append(self._all)
            except TimeoutError:
                self.stats["refused"] += 1
                raise LookupsRefused(f"no lookup free for {host!r} within {self.timeout:.0f} s") from None
            job = self._pool.submit(lambda: _lookup(host, port))
            started = True
            self.in_flight += 1
            self.stats["lookups"] += 1
            job.add_done_callback(lambda _: self._finished(loop, semaphores, held))
            try:
                async with asyncio.timeout_at(deadline):
                    return await asyncio.wrap_future(job)
            except TimeoutError:
                self.stats["timeouts"] += 1
                raise TimeoutError(f"no answer within {self.timeout:.0f} s") from None
        finally:
            if not started:  # gave up (no place in time, or the session ended) before the lookup ran
                for semaphore in semaphores:
                    semaphore.release()
                for name, slots in held:
                    self._unuse(name, slots)

    def _finished(
        self, loop: asyncio.AbstractEventLoop, semaphores: list[asyncio.Semaphore], held: list[tuple[Hashable, _Slots]]
    ) -> None:
        """From the lookup's thread: give its places back on the loop."""

        def release() -> None:
            self.in_flight -= 1
            for semaphore in semaphores:
                semaphore.release()
            for key, slots in held:
                self._unuse(key, slots)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits any more
            loop.call_soon_threadsafe(release)

    def close(self) -> None:
        """Stop taking lookups; threads still blocked in getaddrinfo finish on their own."""
        self._pool.close()
