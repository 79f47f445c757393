"""Chain ingestion: eth_getLogs over FlowNet's contracts into the Ledger, batch by batch, reorg-safe.

The chain is the truth and SQLite a projection of it, so no answer of the node is applied before it is
checked, and every batch (raw logs, projections, block hashes, cursor) commits in one transaction: a
crash at any instant leaves the last whole batch, and the next run continues from the cursor.

One batch is one eth_getLogs range ``[lo, hi]`` over the three contract addresses:

- Range size is adaptive (`RangeSizer`): it starts at 2,000 blocks; when the node refuses a range as too
  large or too many results it follows the node's hint when the message has one (``[0xfrom, 0xto]``, or
  a maximum block count such as "limited to a 10,000 range"), else halves; after two clean answers in
  a row that used the full size it doubles, up to `max_range` and to any maximum the node stated, but
  not within 16 clean answers of a refusal (so a node's hidden limit costs one refused call per ~18).
- Every answer is checked before use: a list of well-formed logs, each inside the range, from one of our
  addresses, not ``removed``, no duplicate (block, logIndex), one blockHash per block, decodable. An
  answer failing a check, or an error object, is retried with backoff (bounded) and never applied.
- Completeness (the bloom check): a block for which the range answer has no log, but whose header's
  ``logsBloom`` has one of our addresses together with one of that contract's event topics, may have
  been dropped by the node. Its logs are re-fetched by ``blockHash``: logs there mean the range answer
  was incomplete (discarded and retried); still none is confirmed from the block's receipts
  (``eth_getBlockReceipts``, a second data path, where the node has it) before it is accepted as a bloom
  false positive (counted). Only blocks with a bloom hit and no log pay for these calls.
  Headers cost one call each (batched, 100 per HTTP request), so they are fetched only where needed:
  for blocks with logs the logs themselves carry the block hash, so headers are fetched for the blocks
  *without* logs in the range (a dense backfill needs few), for the unfinalized window (needed for the
  reorg hashes anyway) and for the range's ends. ``bloom_check="window"`` limits the bloom check to
  the window for a sparse deployment on a busy chain, where checking every empty block means fetching
  nearly every header; older empty answers are then trusted.
- Reorgs: the hashes (and parent hashes) of the blocks in the unfinalized window (``head - window`` and
  above) are stored with each batch. Before a batch is applied, the first new block's parent hash must
  be the cursor's hash, and the window headers of the batch must link up; each step also checks that the
  cursor block is still the node's. On a mismatch the stored hashes are compared with the node's from
  the cursor down to the fork point, and `Ledger.rollback_to(fork)` undoes the orphaned blocks. A fork
  below the window raises IndexerError and changes nothing. A head below the cursor whose block still
  has the stored hash is a lagging node: wait, do not roll back.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Protocol

from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from flownet.errors import ChainError, FlowNetError
from indexer.events import RawLog, topics_of
from indexer.rpc import RetryPolicy, RpcClient, RpcError
from indexer.store import Block, IndexerError, Ledger

log = logging.getLogger(__name__)

__all__ = [
    "Indexer",
    "RangeSizer",
    "StepResult",
    "bloom_bits",
    "bloom_contains",
    "is_range_error",
    "main",
    "range_hint",
]


class DeploymentLike(Protocol):
    """What the indexer needs of a deployment (flownet.chain.deploy.Deployment or `Manifest`)."""

    @property
    def chain_id(self) -> int: ...

    @property
    def addresses(self) -> dict[str, str]: ...

    @property
    def deployment_block(self) -> int: ...


# --------------------------------------------------------------------------------------------- range


_HINT = re.compile(r"\[\s*(0x[0-9a-fA-F]+|\d+)\s*,\s*(0x[0-9a-fA-F]+|\d+)\s*\]")
_RANGE_ERROR = re.compile(
    "|".join(
        (
            r"block range",
            r"range (?:is )?too (?:large|wide|big)",
            r"too (?:large|wide) (?:a )?range",
            r"range (?:limit|exceeded)",
            r"max(?:imum)? (?:block )?range",
            r"exceeds? (?:the )?(?:max(?:imum)? )?(?:block )?range",
            r"more than [\d,]+ (?:results|logs)",
            r"query returned more than",
            r"too many (?:results|logs)",
            r"response size",
            r"log response",
            r"results? (?:limit|exceed)",
            r"query exceeds",
            r"limited to (?:a )?[\d,]+",
        )
    ),
    re.IGNORECASE,
)
# A stated maximum *block* count: "limited to a 10,000 range", "up to a 2K block range", "max range: 500",
# "exceed maximum block range: 5000", "range is too large, max is 1k blocks".
_MAX_BLOCKS = (
    re.compile(r"(\d[\d,_]*)\s*(k?)\s*(?:-\s*)?(?:block\s*)?range", re.IGNORECASE),
    re.compile(r"max(?:imum)?(?: block)? range(?: is)?\s*[:=]?\s*(\d[\d,_]*)\s*(k?)", re.IGNORECASE),
    re.compile(r"max(?:imum)? is\s*(\d[\d,_]*)\s*(k?)\s*blocks", re.IGNORECASE),
)


def is_range_error(message: str) -> bool:
    """Whether a JSON-RPC error message says the eth_getLogs range or its result set is too large."""
    return bool(_RANGE_ERROR.search(message))


def range_hint(message: str, lo: int) -> tuple[int | None, int | None]:
    """(size the node suggests for a range starting at `lo`, the node's stated maximum block count).

    A ``[from, to]`` hint gives the size ``to - lo + 1`` (the node computed it for our ``from``); a stated
    maximum gives both. Either may be None.
    """
    match = _HINT.search(message)
    if match:
        start, end = (int(v, 0) for v in match.groups())
        if end >= start:
            return max(1, end - max(start, lo) + 1), None
    if re.search(r"\b(?:results|logs)\b", message, re.IGNORECASE) and not re.search(r"block", message, re.IGNORECASE):
        return None, None  # "more than 10000 results": a result count, not a block count
    for pattern in _MAX_BLOCKS:
        match = pattern.search(message)
        if match:
            value = int(re.sub(r"[,_]", "", match.group(1))) * (1000 if match.group(2).lower() == "k" else 1)
            if value > 0:
                return value, value
    return None, None


class RangeSizer:
    """The eth_getLogs range width: follows the node's hints, halves on refusals, doubles after clean answers."""

    def __init__(
        self, initial: int = 2_000, maximum: int = 10_000, minimum: int = 1, grow_after: int = 2, hold: int = 16
    ) -> None:
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError(f"need 1 <= minimum <= initial <= maximum (got {minimum}, {initial}, {maximum})")
        self.size = initial
        self.maximum = maximum
        self.minimum = minimum
        self.grow_after = grow_after
        self.hold = hold  # clean answers to wait after a refusal before growing again
        self.ceiling: int | None = None  # a maximum the node stated
        self._clean = 0
        self._held = 0
        self.shrinks = 0

    def end(self, lo: int, limit: int) -> int:
        """The last block of the next range from `lo`, not past `limit`."""
        return min(limit, lo + self.size - 1)

    def success(self, lo: int, hi: int) -> None:
        """A clean answer for [lo, hi]; grow after `grow_after` in a row that used the full size."""
        if hi - lo + 1 < self.size:
            return  # clipped by the head: says nothing about a larger range
        if self._held > 0:
            self._held -= 1  # a refusal was recent: do not knock on the same limit at once
            return
        self._clean += 1
        if self._clean >= self.grow_after:
            self._clean = 0
            cap = min(self.maximum, self.ceiling or self.maximum)
            self.size = max(self.size, min(cap, self.size * 2))

    def refused(self, lo: int, hi: int, message: str) -> int:
        """The node refused [lo, hi] as too large; returns the new size (ChainError if it cannot shrink)."""
        width = hi - lo + 1
        self._clean = 0
        self._held = self.hold
        self.shrinks += 1
        size, ceiling = range_hint(message, lo)
        if ceiling is not None:
            self.ceiling = ceiling if self.ceiling is None else min(self.ceiling, ceiling)
        if size is None or size >= width:
            size = width // 2
        if width <= self.minimum or size < self.minimum:
            raise ChainError(
                f"the node refuses eth_getLogs even for {width} block(s) from {lo} ({message}); "
                "it cannot serve this deployment's logs — use another RPC node"
            )
        self.size = size
        return size


# --------------------------------------------------------------------------------------------- bloom


def bloom_bits(item: bytes) -> tuple[tuple[int, int], ...]:
    digest = keccak(item)
    bits = []
    for i in (0, 2, 4):
        bit = ((digest[i] << 8) | digest[i + 1]) & 2047
        bits.append((255 - bit // 8, 1 << (bit % 8)))
    return tuple(bits)


def bloom_contains(bloom: bytes, item: bytes) -> bool:
    """Whether a 2048-bit logs bloom may contain `item` (an address or a topic, as bytes)."""
    return all(bloom[index] & mask for index, mask in bloom_bits(item))


class _BloomFilter:
    """Does a block's bloom say it may hold a log of one of our contracts (address AND one of its topics)?"""

    def __init__(self, contracts: dict[str, str]) -> None:
        self._sets = [
            (bloom_bits(bytes.fromhex(address[2:])), [bloom_bits(bytes.fromhex(t[2:])) for t in topics_of(name)])
            for name, address in contracts.items()
        ]

    def hit(self, bloom: bytes) -> bool:
        def has(bits: tuple[tuple[int, int], ...]) -> bool:
            return all(bloom[i] & m for i, m in bits)

        return any(has(address) and any(has(t) for t in topics) for address, topics in self._sets)


# --------------------------------------------------------------------------------------------- indexer


@dataclass(frozen=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    bloom: bytes

    def block(self) -> Block:
        return Block(self.number, self.hash, self.parent_hash)


class _BadAnswer(Exception):
    """The node's answer failed a check; never applied, retried."""


class _Reorg(Exception):
    """The first new block does not build on the cursor."""


@dataclass
class StepResult:
    head: int = -1
    blocks: int = 0
    logs: int = 0
    batches: int = 0
    reorgs: int = 0
    lagging: bool = False
    cursor: int | None = None


@dataclass
class Stats:
    """Counters since the indexer started (for logs and tests)."""

    batches: int = 0
    blocks: int = 0
    logs: int = 0
    headers: int = 0
    bad_answers: int = 0
    bloom_rechecks: int = 0
    bloom_false_positives: int = 0
    reorgs: int = 0
    rolled_back: int = 0
    lagging: int = 0
    reasons: list[str] = field(default_factory=list)

    def bad(self, reason: str) -> None:
        self.bad_answers += 1
        if len(self.reasons) < 100:
            self.reasons.append(reason)


class Indexer:
    """Ingests one deployment's logs from `rpc` into `ledger`."""

    def __init__(
        self,
        rpc: RpcClient,
        ledger: Ledger,
        deployment: DeploymentLike,
        window: int = 64,
        confirmations: int = 0,
        *,
        initial_range: int = 2_000,
        max_range: int = 10_000,
        poll_interval: float = 2.0,
        bloom_check: str = "all",
        bloom_refetches: int = 1,
        header_batch: int = 100,
        answer_retries: int = 8,
        backoff: RetryPolicy | None = None,
        progress_interval: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 1 or confirmations < 0:
            raise ValueError(f"window must be >= 1 and confirmations >= 0 (got {window}, {confirmations})")
        if bloom_check not in ("all", "window"):
            raise ValueError(f"bloom_check must be 'all' or 'window', not {bloom_check!r}")
        self.rpc = rpc
        self.ledger = ledger
        self.deployment = deployment
        self.window = window
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self.bloom_check = bloom_check
        self.bloom_refetches = bloom_refetches
        self.header_batch = header_batch
        self.answer_retries = answer_retries
        self.max_reorgs_per_step = 16
        self.backoff = backoff or RetryPolicy(base=0.1, cap=5.0)
        self.progress_interval = progress_interval
        self.sizer = RangeSizer(initial=min(initial_range, max_range), maximum=max_range)
        self.addresses = [to_checksum_address(a) for a in deployment.addresses.values()]
        self._address_set = set(self.addresses)
        self._bloom = _BloomFilter({n: to_checksum_address(a) for n, a in deployment.addresses.items()})
        self._sleep = sleep
        self._clock = clock
        self._stop = threading.Event()
        self._chain_checked = False
        self._false_alarms = 0
        self._receipts_supported = True
        self.stats = Stats()
        self._progress_at = clock()
        self._progress_mark = (0, 0)

    # ------------------------------------------------------------------ public

    def step(self) -> StepResult:
        """Index as far as the node's head (less `confirmations`) allows, in one or more batches."""
        self._check_chain()
        head = self._head()
        result = StepResult(head=head)
        check_cursor = True
        while not self._stop.is_set():
            if result.reorgs > self.max_reorgs_per_step:
                raise ChainError(
                    f"the chain of {self.rpc.display_url} reorganized {result.reorgs} times in one step; pausing"
                )
            cursor = self.ledger.cursor()
            if cursor is None:
                lo = self.deployment.deployment_block
            else:
                if head < cursor.number:
                    if self._lagging(cursor, head):
                        result.lagging = True
                        break
                    result.reorgs += 1
                    continue
                if check_cursor and not self._on_chain(cursor.number, cursor.hash):
                    self._rollback(cursor)
                    result.reorgs += 1
                    continue
                lo = cursor.number + 1
            check_cursor = False
            target = head - self.confirmations
            if lo > target:
                break
            try:
                hi, logs = self._index(lo, target, head, cursor.hash if cursor else None)
            except _Reorg:
                assert cursor is not None
                self._rollback(cursor)
                result.reorgs += 1
                continue
            self._false_alarms = 0
            result.blocks += hi - lo + 1
            result.logs += logs
            result.batches += 1
            self.stats.batches += 1
            self.stats.blocks += hi - lo + 1
            self.stats.logs += logs
            self._progress(hi, head)
        cursor = self.ledger.cursor()
        result.cursor = cursor.number if cursor else None
        return result

    def run(self, stop_event: threading.Event | None = None, until: int | None = None) -> None:
        """Follow the chain until `stop_event` is set (or the cursor reaches `until`).

        RPC trouble (ChainError) is logged and retried with backoff; IndexerError stops the loop.
        """
        if stop_event is not None:
            self._stop = stop_event
        failures = 0
        while not self._stop.is_set():
            try:
                result = self.step()
            except IndexerError:
                raise
            except ChainError as exc:
                failures += 1
                pause = self.backoff.delay(min(failures, 10))
                log.warning("RPC trouble (%s); retrying in %.1f s", exc, pause)
                self._stop.wait(pause)
                continue
            failures = 0
            if until is not None and result.cursor is not None and result.cursor >= until:
                log.info("reached block %d", result.cursor)
                return
            if result.lagging or result.batches == 0:
                self._stop.wait(self.poll_interval)

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ chain facts

    def _check_chain(self) -> None:
        if self._chain_checked:
            return
        value = self.rpc.call("eth_chainId")
        try:
            chain_id = int(value, 16)
        except (TypeError, ValueError):
            raise ChainError(f"eth_chainId on {self.rpc.display_url} answered {value!r}") from None
        if chain_id != self.deployment.chain_id:
            raise IndexerError(
                f"{self.rpc.display_url} serves chain {chain_id}, but the deployment is on chain "
                f"{self.deployment.chain_id}; use the matching RPC URL or manifest"
            )
        self._chain_checked = True

    def _head(self) -> int:
        value = self.rpc.call("eth_blockNumber")
        try:
            return int(value, 16)
        except (TypeError, ValueError):
            raise ChainError(f"eth_blockNumber on {self.rpc.display_url} answered {value!r}") from None

    def _headers(self, numbers: Iterable[int], missing_ok: bool = False) -> dict[int, Header]:
        numbers = sorted(set(numbers))
        calls = [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        answers: list[Any] = []
        for start in range(0, len(calls), self.header_batch):
            answers += self.rpc.batch(calls[start : start + self.header_batch])
        self.stats.headers += len(numbers)
        headers: dict[int, Header] = {}
        for number, raw in zip(numbers, answers, strict=True):
            if raw is None:
                if missing_ok:
                    continue
                raise _BadAnswer(f"the node has no block {number} (lagging backend?)")
            try:
                header = Header(
                    int(raw["number"], 16), raw["hash"], raw["parentHash"], bytes.fromhex(raw["logsBloom"][2:])
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise _BadAnswer(f"garbled header for block {number}: {exc!r}") from None
            if header.number != number or len(header.bloom) != 256 or not _is_hash(header.hash):
                raise _BadAnswer(f"header asked for block {number} is not one ({raw.get('number')}, {raw.get('hash')})")
            headers[number] = header
        return headers

    def _on_chain(self, number: int, stored_hash: str) -> bool:
        """Whether the node's block `number` (at or below its head) has `stored_hash`."""
        header = self._retrying(lambda: self._headers([number]), f"header of block {number}")
        return bool(header[number].hash == stored_hash)

    def _stored_hash(self, number: int) -> str | None:
        cursor = self.ledger.cursor()
        if cursor is not None and cursor.number == number:
            return cursor.hash
        return self.ledger.block_hash(number)

    # ------------------------------------------------------------------ reorgs

    def _lagging(self, cursor: Block, head: int) -> bool:
        """The head is below the cursor: True (wait) if the node's block at `head` is ours, else roll back."""
        stored = self._stored_hash(head)
        if stored is None or self._on_chain(head, stored):
            self.stats.lagging += 1
            log.warning("node head %d is behind the cursor %d (lagging node); waiting", head, cursor.number)
            return True
        self._rollback(cursor)
        return False

    def _rollback(self, cursor: Block) -> None:
        """Find the fork point below `cursor` among the stored hashes and roll the ledger back to it."""
        floor = self.ledger.rollback_floor()
        fork: int | None = None
        for attempt in range(2):
            fork = self._fork_point(cursor, floor)
            if fork is not None:
                break
            if attempt == 0:  # one more look before declaring a deep reorg: the node may be flaky
                self._sleep(self.backoff.delay(3))
        if fork is None:
            raise IndexerError(
                f"reorg deeper than the unfinalized window: none of the stored hashes of blocks "
                f"{max(floor, 0)}..{cursor.number} is on the chain of {self.rpc.display_url} any more (window "
                f"{self.window} blocks); refusing to rewrite finalized history — check the node, or rebuild the "
                "database from scratch"
            )
        if fork == cursor.number:
            # The cursor block is still the node's: the signal came from inconsistent answers, not a reorg.
            self._false_alarms += 1
            self.stats.bad(f"reorg signal at block {cursor.number + 1}, but the cursor block is still on the chain")
            if self._false_alarms >= self.answer_retries:
                raise ChainError(
                    f"{self.rpc.display_url} keeps contradicting itself about the parent of block {cursor.number + 1}"
                )
            self._sleep(self.backoff.delay(self._false_alarms))
            return
        self._false_alarms = 0
        depth = cursor.number - fork
        log.warning(
            "reorg: blocks %d..%d replaced (depth %d); rolling back to %d", fork + 1, cursor.number, depth, fork
        )
        self.ledger.rollback_to(fork)
        self.stats.reorgs += 1
        self.stats.rolled_back += depth

    def _fork_point(self, cursor: Block, floor: int) -> int | None:
        """The highest stored block the node still has (checking 16 blocks per batch, newest first)."""
        number = cursor.number
        lowest = min(max(floor, 0), cursor.number)  # the cursor's own hash is kept even below the floor
        while number >= lowest:
            chunk = list(range(number, max(lowest, number - 15) - 1, -1))
            stored = {n: self._stored_hash(n) for n in chunk}
            wanted = [n for n in chunk if stored[n] is not None]
            node: dict[int, Header] = {}
            if wanted:
                node = self._retrying(partial(self._headers, wanted, missing_ok=True), "fork search")
            for n in chunk:
                if stored[n] is not None and n in node and node[n].hash == stored[n]:
                    return n
            number = chunk[-1] - 1
        return None

    # ------------------------------------------------------------------ one batch

    def _retrying(self, fetch: Callable[[], Any], what: str) -> Any:
        """`fetch()` retried (with backoff) while the node's answers are unusable."""
        attempt = 0
        while True:
            try:
                return fetch()
            except (_BadAnswer, RpcError) as exc:
                if isinstance(exc, RpcError) and is_range_error(exc.message):
                    raise
                attempt += 1
                self.stats.bad(f"{what}: {exc}")
                if attempt >= self.answer_retries:
                    raise ChainError(
                        f"{self.rpc.display_url} gave {attempt} unusable answers for {what}; last: {exc}"
                    ) from None
                pause = self.backoff.delay(attempt)
                log.info("unusable answer for %s (%s); retry %d in %.2f s", what, exc, attempt, pause)
                self._sleep(pause)

    def _index(self, lo: int, limit: int, head: int, cursor_hash: str | None) -> tuple[int, int]:
        """Fetch, check and apply the next range from `lo` (at most to `limit`); returns (hi, logs applied)."""

        def attempt() -> tuple[int, int]:
            hi, answer = self._get_logs(lo, limit)
            blocks, logs = self._verify(lo, hi, answer, head, cursor_hash)
            try:
                # One transaction; decoding happens inside it, so an undecodable log rolls the whole batch back.
                self.ledger.apply(blocks, logs, finalized=head - self.window, cursor=blocks[-1], head=head)
            except _UNDECODABLE as exc:
                raise _BadAnswer(f"eth_getLogs {lo}..{hi} returned a log that does not decode ({exc!r:.120})") from None
            self.sizer.success(lo, hi)
            return hi, len(logs)

        return self._retrying(attempt, f"blocks {lo}..")  # type: ignore[no-any-return]

    def _get_logs(self, lo: int, limit: int) -> tuple[int, Any]:
        while True:
            hi = self.sizer.end(lo, limit)
            query = {"fromBlock": hex(lo), "toBlock": hex(hi), "address": self.addresses}
            try:
                return hi, self.rpc.call("eth_getLogs", [query])
            except RpcError as exc:
                if not is_range_error(exc.message):
                    raise
                size = self.sizer.refused(lo, hi, exc.message)
                log.info("eth_getLogs %d..%d refused (%s); range now %d blocks", lo, hi, exc.message, size)

    def _verify(
        self, lo: int, hi: int, answer: Any, head: int, cursor_hash: str | None
    ) -> tuple[list[Block], list[RawLog]]:
        logs = self._check_logs(lo, hi, answer)
        hashes = {log.block_number: log.block_hash for log in logs}
        finalized = head - self.window
        window_lo = max(lo, finalized)
        need = {lo, hi, *range(window_lo, hi + 1)}
        if self.bloom_check == "all":
            need.update(n for n in range(lo, hi + 1) if n not in hashes)
        headers = self._headers(need)
        if cursor_hash is not None and headers[lo].parent_hash != cursor_hash:
            raise _Reorg(lo)
        for n in range(window_lo + 1, hi + 1):
            if headers[n].parent_hash != headers[n - 1].hash:
                raise _BadAnswer(f"headers {n - 1} and {n} do not link (the chain moved while we read it)")
        for n, block_hash in hashes.items():
            if n in headers and headers[n].hash != block_hash:
                raise _BadAnswer(f"logs of block {n} carry hash {block_hash} but its header is {headers[n].hash}")
        suspects = [h for n, h in sorted(headers.items()) if n not in hashes and self._bloom.hit(h.bloom)]
        if suspects:
            self._recheck(suspects)
        blocks = [headers[n].block() for n in sorted(headers) if n >= finalized or n == hi]
        return blocks, logs

    def _check_logs(self, lo: int, hi: int, answer: Any) -> list[RawLog]:
        if not isinstance(answer, list):
            raise _BadAnswer(f"eth_getLogs {lo}..{hi} answered a {type(answer).__name__}, not a list")
        logs: list[RawLog] = []
        block_hashes: dict[int, str] = {}
        seen: set[tuple[int, int]] = set()
        for item in answer:
            try:
                if item.get("removed"):
                    raise _BadAnswer(f"eth_getLogs {lo}..{hi} returned a removed log")
                raw = RawLog(
                    block_number=int(item["blockNumber"], 16),
                    block_hash=item["blockHash"],
                    log_index=int(item["logIndex"], 16),
                    tx_hash=item["transactionHash"],
                    address=_checksum(item["address"]),
                    topics=tuple(item["topics"]),
                    data=item["data"],
                )
                if not (_is_hash(raw.block_hash) and _is_hash(raw.tx_hash) and all(_is_hash(t) for t in raw.topics)):
                    raise ValueError("malformed hash or topic")
                if not isinstance(raw.data, str) or raw.data[:2] != "0x" or len(raw.data) % 2:
                    raise ValueError("malformed data")
                bytes.fromhex(raw.data[2:])
            except _BadAnswer:
                raise
            except Exception as exc:
                raise _BadAnswer(f"eth_getLogs {lo}..{hi} returned a garbled log ({exc!r:.120})") from None
            if not lo <= raw.block_number <= hi:
                raise _BadAnswer(f"eth_getLogs {lo}..{hi} returned a log of block {raw.block_number}")
            if raw.address not in self._address_set:
                raise _BadAnswer(f"eth_getLogs {lo}..{hi} returned a log of another contract ({raw.address})")
            key = (raw.block_number, raw.log_index)
            if key in seen:
                raise _BadAnswer(f"eth_getLogs {lo}..{hi} returned log {key} twice")
            seen.add(key)
            if block_hashes.setdefault(raw.block_number, raw.block_hash) != raw.block_hash:
                raise _BadAnswer(f"eth_getLogs {lo}..{hi} returned two hashes for block {raw.block_number}")
            logs.append(raw)
        logs.sort(key=lambda r: (r.block_number, r.log_index))
        return logs

    def _recheck(self, suspects: Sequence[Header]) -> None:
        """Blocks whose bloom says "maybe ours" but which had no log: look again, by block hash.

        Still no log: before calling it a bloom false positive, ask a second data path, the block's receipts
        (``eth_getBlockReceipts``), where the node has it; a node whose log index lags or lies about one block
        rarely lies in its receipts too. Without that method the answer of the log index is accepted.
        """
        self.stats.bloom_rechecks += len(suspects)
        for _ in range(self.bloom_refetches):
            calls = [("eth_getLogs", [{"blockHash": h.hash, "address": self.addresses}]) for h in suspects]
            answers = self.rpc.batch(calls)
            for header, answer in zip(suspects, answers, strict=True):
                if not isinstance(answer, list):
                    raise _BadAnswer(f"eth_getLogs for block {header.number} answered a {type(answer).__name__}")
                if answer:
                    raise _BadAnswer(
                        f"the range answer missed the {len(answer)} log(s) of block {header.number} (bloom check)"
                    )
        if self._receipts_supported:
            self._confirm_by_receipts(suspects)
        self.stats.bloom_false_positives += len(suspects)
        log.debug("bloom false positives: blocks %s", [h.number for h in suspects])

    def _confirm_by_receipts(self, suspects: Sequence[Header]) -> None:
        answers = self.rpc.batch([("eth_getBlockReceipts", [h.hash]) for h in suspects], errors="return")
        for header, answer in zip(suspects, answers, strict=True):
            if isinstance(answer, RpcError):
                if answer.code == -32601 or _UNSUPPORTED.search(answer.message):
                    self._receipts_supported = False
                    log.info("%s has no eth_getBlockReceipts: bloom hits are rechecked by eth_getLogs only", answer.url)
                    return
                raise answer
            if not isinstance(answer, list):
                raise _BadAnswer(f"eth_getBlockReceipts for block {header.number} answered {str(answer)[:80]}")
            ours = 0
            for receipt in answer:
                try:
                    if receipt["blockHash"] != header.hash:
                        raise _BadAnswer(f"eth_getBlockReceipts for block {header.number} returned another block's")
                    ours += sum(1 for entry in receipt["logs"] if _checksum(entry["address"]) in self._address_set)
                except (KeyError, TypeError, ValueError) as exc:
                    raise _BadAnswer(f"garbled receipts for block {header.number} ({exc!r:.80})") from None
            if ours:
                raise _BadAnswer(
                    f"eth_getLogs twice missed {ours} log(s) of block {header.number} "
                    "that its receipts hold (bloom check)"
                )

    # ------------------------------------------------------------------ progress

    def _progress(self, cursor: int, head: int) -> None:
        now = self._clock()
        elapsed = now - self._progress_at
        if elapsed < self.progress_interval:
            return
        blocks, logs = self.stats.blocks - self._progress_mark[0], self.stats.logs - self._progress_mark[1]
        log.info(
            "block %d of %d (lag %d): %.0f blocks/s, %.0f events/s, range %d blocks",
            cursor,
            head,
            head - cursor,
            blocks / elapsed,
            logs / elapsed,
            self.sizer.size,
        )
        self._progress_at = now
        self._progress_mark = (self.stats.blocks, self.stats.logs)


_UNSUPPORTED = re.compile(r"not (?:found|supported|available|exist)|unsupported|does not exist|unknown method", re.I)

# What decoding a garbled log raises inside Ledger.apply (eth_abi's DecodingError tree, eth_utils' ValueError).
_UNDECODABLE = (DecodingError, ValueError, TypeError, KeyError, IndexError, OverflowError)


@lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    return to_checksum_address(address)


_HASH = re.compile(r"0x[0-9a-fA-F]{64}\Z").match


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and _HASH(value) is not None


# --------------------------------------------------------------------------------------------- command line


@dataclass(frozen=True)
class Manifest:
    """The parts of a deployment manifest the indexer needs."""

    chain_id: int
    addresses: dict[str, str]
    deployment_block: int

    @classmethod
    def load(cls, path: Path) -> Manifest:
        from flownet.chain.deploy import Deployment

        d = Deployment.load(path)
        return cls(d.chain_id, dict(d.addresses), d.deployment_block)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m indexer.sync", description="Index a FlowNet deployment's events into a SQLite ledger."
    )
    parser.add_argument("--rpc", required=True, help="JSON-RPC URL of the chain's node")
    parser.add_argument("--manifest", required=True, type=Path, help="deployment manifest (deployment.json)")
    parser.add_argument("--db", required=True, type=Path, help="SQLite ledger to write")
    parser.add_argument("--window", type=int, default=64, help="unfinalized window in blocks (default 64)")
    parser.add_argument("--confirmations", type=int, default=0, help="index only blocks this far below the head")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between polls at the head (default 2)")
    parser.add_argument("--range", type=int, default=2_000, help="initial eth_getLogs range (default 2000)")
    parser.add_argument("--max-range", type=int, default=10_000, help="largest eth_getLogs range (default 10000)")
    parser.add_argument("--bloom-check", choices=("all", "window"), default="all", help="blocks checked by bloom")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per RPC request (default 15)")
    parser.add_argument("--until", help="stop once this block (or 'head': the head at start) is indexed")
    parser.add_argument("--once", action="store_true", help="one step: index up to the head, then exit")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.window < 1 or args.confirmations < 0 or args.range < 1 or args.max_range < 1:
        parser.error("--window, --range and --max-range must be at least 1, --confirmations at least 0")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        manifest = Manifest.load(args.manifest)
        ledger = Ledger(args.db, manifest.addresses, manifest.chain_id, window=args.window)
        with RpcClient(args.rpc, timeout=args.timeout) as rpc:
            indexer = Indexer(
                rpc,
                ledger,
                manifest,
                window=args.window,
                confirmations=args.confirmations,
                initial_range=args.range,
                max_range=args.max_range,
                poll_interval=args.poll,
                bloom_check=args.bloom_check,
            )
            try:
                if args.once:
                    result = indexer.step()
                    print(f"indexed to block {result.cursor} (head {result.head}): {result.logs} events", flush=True)
                    return 0
                until = None
                if args.until == "head":
                    until = indexer._head() - args.confirmations
                elif args.until is not None:
                    until = int(args.until, 0)
                print(f"indexing {rpc.display_url} into {args.db}", flush=True)
                indexer.run(stop, until=until)
                cursor = ledger.cursor()
                print(f"stopped at block {cursor.number if cursor else None}", flush=True)
            finally:
                ledger.close()
    except FlowNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
