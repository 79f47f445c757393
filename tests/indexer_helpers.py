"""Shared helpers for the indexer tests: a fast FlowNet event generator on anvil, a fault-injecting RPC
proxy on 127.0.0.1, clean reference indexes and reconciliation against view calls.

`Sim` deploys FlowNet with the SDK, then sends transactions in bulk from impersonated accounts
(anvil_autoImpersonateAccount, explicit nonces and gas, automine off and one ``evm_mine`` per block), so
thousands of events take seconds. Receipts and close agreements are signed with real local keys.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from flownet.chain.connect import http_web3
from flownet.chain.deploy import TOKEN_UNIT, DeployConfig, Deployment, deploy
from flownet.chain.market import sign_close, sign_receipt
from flownet.chain.tx import Sender
from flownet.core.receipts import CloseAgreement, MarketDomain, Order
from flownet.devnet import fund
from indexer.events import RawLog, decode
from indexer.reconcile import reconcile as shared_reconcile
from indexer.rpc import RetryPolicy, RpcClient
from indexer.store import Ledger
from indexer.sync import Indexer, bloom_bits

GAS = 1_000_000
PRICE = 2 * TOKEN_UNIT
MIB = 1 << 20


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class OpenOrder:
    order: Order
    client: LocalAccount
    provider: LocalAccount
    paid: int = 0
    paid_bytes: int = 0


@dataclass
class Sim:
    """A FlowNet deployment on an anvil node with funded providers and clients and bulk senders."""

    url: str
    clients: int = 4
    providers: int = 2
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.http = httpx.Client(timeout=60)
        self.w3 = http_web3(self.url)
        deployer: LocalAccount = Account.create(self.rng.randbytes(32))
        fund(self.w3, deployer.address, 10**20)
        self.deployment: Deployment = deploy(self.w3, Sender(self.w3, deployer), DeployConfig())
        self.deployer = deployer
        self.token = self.deployment.contract(self.w3, "FlowToken")
        self.staking = self.deployment.contract(self.w3, "Staking")
        self.market = self.deployment.contract(self.w3, "BandwidthMarket")
        self.domain = MarketDomain(self.deployment.chain_id, self.market.address)
        self.contract_of = {a: n for n, a in self.deployment.addresses.items()}
        self.rpc("anvil_autoImpersonateAccount", True)
        self.provider_accounts = [Account.create(self.rng.randbytes(32)) for _ in range(self.providers)]
        self.client_accounts = [Account.create(self.rng.randbytes(32)) for _ in range(self.clients)]
        people = self.provider_accounts + self.client_accounts
        for person in people:
            self.rpc("anvil_setBalance", person.address, hex(10**21))
        self.send([self._tx(deployer, self.token, "transfer", p.address, 100_000 * TOKEN_UNIT) for p in people])
        approvals = [self._tx(p, self.token, "approve", c.address, 2**256 - 1) for p in people for c in (self.market,)]
        approvals += [
            self._tx(p, self.token, "approve", self.staking.address, 2**256 - 1) for p in self.provider_accounts
        ]
        self.send(approvals)
        self.send([self._tx(p, self.staking, "stake", 1, 50_000 * TOKEN_UNIT) for p in self.provider_accounts])
        self.send(
            [
                self._tx(p, self.staking, "setOffer", PRICE, f"bafk-sim-{i}")
                for i, p in enumerate(self.provider_accounts)
            ]
        )
        self.open: list[OpenOrder] = []

    # ------------------------------------------------------------------ node

    def close(self) -> None:
        self.http.close()

    def rpc(self, method: str, *params: Any) -> Any:
        answer = self.http.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        body = answer.json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        out: list[Any] = []
        for chunk in chunks(calls, 200):
            payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)} for i, (m, p) in enumerate(chunk)]
            body = self.http.post(self.url, json=payload).json()
            by_id = {item["id"]: item for item in body}
            for i in range(len(chunk)):
                if "error" in by_id[i]:
                    raise RuntimeError(f"{chunk[i][0]}: {by_id[i]['error']}")
                out.append(by_id[i]["result"])
        return out

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot: str) -> None:
        assert self.rpc("evm_revert", snapshot) is True

    def checkpoint(self) -> tuple[str, list[OpenOrder]]:
        """An evm_snapshot plus the generator's own state, for `restore`."""
        return self.snapshot(), [OpenOrder(o.order, o.client, o.provider, o.paid, o.paid_bytes) for o in self.open]

    def restore(self, checkpoint: tuple[str, list[OpenOrder]]) -> None:
        """Revert the chain (and the generator) to `checkpoint`; a checkpoint is used once."""
        self.revert(checkpoint[0])
        self.open = [OpenOrder(o.order, o.client, o.provider, o.paid, o.paid_bytes) for o in checkpoint[1]]

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def logs(self, to_block: int | None = None) -> list[dict[str, Any]]:
        """Every log of the deployment on the node's chain, one eth_getLogs (the reference answer)."""
        query = {
            "fromBlock": hex(self.deployment.deployment_block),
            "toBlock": hex(self.head() if to_block is None else to_block),
            "address": list(self.deployment.addresses.values()),
        }
        return list(self.rpc("eth_getLogs", query))

    # ------------------------------------------------------------------ sending

    def _tx(self, sender: LocalAccount, contract: Any, fn: str, *args: Any) -> tuple[str, str, str]:
        return sender.address, contract.address, contract.encode_abi(fn, args=list(args))

    def send(self, txs: Sequence[tuple[str, str, str]], per_block: int | None = None) -> list[dict[str, Any]]:
        """Mine `txs` (sender, to, calldata), `per_block` to a block (all in one if None); all must succeed."""
        if not txs:
            return []
        senders = sorted({s for s, _, _ in txs})
        counts = self.batch([("eth_getTransactionCount", [s, "pending"]) for s in senders])
        nonces = {s: int(c, 16) for s, c in zip(senders, counts, strict=True)}
        hashes: list[str] = []
        self.rpc("evm_setAutomine", False)
        try:
            for group in chunks(txs, per_block or len(txs)):
                calls = []
                for sender, to, data in group:
                    tx = {"from": sender, "to": to, "data": data, "gas": hex(GAS), "nonce": hex(nonces[sender])}
                    nonces[sender] += 1
                    calls.append(("eth_sendTransaction", [tx]))
                hashes += self.batch(calls)
                self.rpc("evm_mine")
        finally:
            self.rpc("evm_setAutomine", True)
        receipts = self.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        failed = [r["transactionHash"] for r in receipts if r is None or r["status"] != "0x1"]
        assert not failed, f"{len(failed)} generated transactions failed: {failed[:3]}"
        return receipts

    def _per_block(self) -> int:
        return self.rng.choice((1, 1, 2, 3, 5, 8))

    def _send_mixed(self, txs: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        receipts: list[dict[str, Any]] = []
        start = 0
        while start < len(txs):
            n = self._per_block()
            receipts += self.send(txs[start : start + n], per_block=n)
            start += n
        return receipts

    # ------------------------------------------------------------------ FlowNet activity

    def open_orders(self, count: int, spread: bool = True) -> None:
        """`count` orders from random clients to random providers (3 events each)."""
        txs, who = [], []
        for _ in range(count):
            client = self.rng.choice(self.client_accounts)
            provider = self.rng.choice(self.provider_accounts)
            deposit = self.rng.randint(1, 50) * TOKEN_UNIT + self.rng.randint(0, 10**6)
            txs.append(self._tx(client, self.market, "openOrder", provider.address, deposit, 24 * 3600, 3 * TOKEN_UNIT))
            who.append((client, provider))
        receipts = self._send_mixed(txs) if spread else self.send(txs)
        by_address = {a.address: a for a in self.client_accounts + self.provider_accounts}
        for receipt in receipts:
            for raw in receipt["logs"]:
                event = decode(RawLog.from_rpc(raw), self.contract_of)
                if event is not None and event.name == "OrderOpened":
                    a = event.args
                    order = Order(a["nonce"], a["client"], a["provider"], a["deposit"], a["pricePerGiB"], a["expiry"])
                    self.open.append(OpenOrder(order, by_address[a["client"]], by_address[a["provider"]]))

    def redeems(self, count: int, spread: bool = True) -> None:
        """Up to `count` redeems of new cumulative receipts (2 events each), at most one per order."""
        txs = self._redeem_txs(count)
        if spread:
            self._send_mixed(txs)
        else:
            self.send(txs)

    def _redeem_txs(self, count: int) -> list[tuple[str, str, str]]:
        chosen = self.rng.sample(self.open, min(count, len(self.open)))
        txs = []
        for o in chosen:
            room = o.order.deposit - o.paid
            if room <= 10**6:
                continue
            new_bytes = o.paid_bytes + self.rng.randint(1, 64) * MIB
            receipt = o.order.receipt_for(new_bytes)
            if receipt.cumulative_amount <= o.paid:
                continue
            signed = sign_receipt(o.client, self.domain, o.order, receipt)
            sender = self.rng.choice([o.provider, o.client])
            if o.paid == 0:  # only the provider may redeem an order's first receipt (its acceptance)
                sender = o.provider
            txs.append(self._tx(sender, self.market, "redeem", signed.as_redemption()))
            o.paid, o.paid_bytes = receipt.cumulative_amount, new_bytes
        return txs

    def closes(self, count: int) -> None:
        """`count` cooperative closes at a final amount a little above what was paid (3-4 events each)."""
        chosen = self.rng.sample(self.open, min(count, len(self.open)))
        txs = []
        for o in chosen:
            final = min(o.order.deposit, o.paid + self.rng.randint(0, 3) * 10**15)
            signature = sign_close(o.provider, self.domain, CloseAgreement(o.order.order_id, final))
            txs.append(self._tx(o.client, self.market, "close", o.order.order_id, o.order.as_tuple(), final, signature))
            self.open.remove(o)
        self._send_mixed(txs)

    def cancels(self, count: int) -> None:
        """Up to `count` cancels by providers of orders they never accepted (OrderCancelled, StakeUnlocked
        and the refund's Transfer); every other one also refuses the client until a past time
        (ClientRefused, which refuses nothing, so later orders still open)."""
        unpaid = [o for o in self.open if o.paid == 0]
        txs = []
        for i, o in enumerate(self.rng.sample(unpaid, min(count, len(unpaid)))):
            txs.append(self._tx(o.provider, self.market, "cancel", o.order.order_id, o.order.as_tuple(), i % 2))
            self.open.remove(o)
        self._send_mixed(txs)

    def transfers(self, count: int) -> None:
        """`count` token transfers between clients (1 event each)."""
        txs = []
        for _ in range(count):
            a, b = self.rng.sample(self.client_accounts, 2)
            txs.append(self._tx(a, self.token, "transfer", b.address, self.rng.randint(1, 10**18)))
        self._send_mixed(txs)

    def unstakes(self) -> None:
        """Every provider asks to unstake a little (UnstakeRequested)."""
        txs = [
            self._tx(p, self.staking, "requestUnstake", self.rng.randint(1, 100) * TOKEN_UNIT)
            for p in self.provider_accounts
        ]
        self._send_mixed(txs)

    def activity(self, txs: int) -> None:
        """About `txs` transactions of mixed FlowNet activity, spread over blocks of 1-8 transactions."""
        opens = max(1, txs * 4 // 10)
        self.open_orders(opens)
        self.redeems(txs * 3 // 10)
        self.transfers(txs * 2 // 10)
        self.closes(max(1, txs // 20))
        self.redeems(txs // 20)
        self.cancels(max(1, txs // 40))

    def blocks_with_events(self, blocks: int) -> None:
        """Exactly `blocks` new blocks, each with 1-3 FlowNet transactions (orders, redeems, transfers)."""
        for _ in range(blocks):
            kind = self.rng.choice(("open", "open", "redeem", "transfer"))
            client, other = self.rng.sample(self.client_accounts, 2)
            n = self.rng.randint(1, 3)
            redeem_txs = self._redeem_txs(n) if kind == "redeem" else []
            if kind == "open" or (kind == "redeem" and not redeem_txs):
                provider = self.rng.choice(self.provider_accounts)
                deposit = self.rng.randint(1, 50) * TOKEN_UNIT + self.rng.randint(0, 10**6)
                txs = [
                    self._tx(client, self.market, "openOrder", provider.address, deposit, 24 * 3600, 3 * TOKEN_UNIT)
                ] * n
                before = len(self.open)
                receipts = self.send(txs)
                self._track(receipts)
                assert len(self.open) == before + n
            elif kind == "redeem":
                self.send(redeem_txs)
            else:
                self.send([self._tx(client, self.token, "transfer", other.address, self.rng.randint(1, 10**18))] * n)

    def _track(self, receipts: list[dict[str, Any]]) -> None:
        by_address = {a.address: a for a in self.client_accounts + self.provider_accounts}
        for receipt in receipts:
            for raw in receipt["logs"]:
                event = decode(RawLog.from_rpc(raw), self.contract_of)
                if event is not None and event.name == "OrderOpened":
                    a = event.args
                    order = Order(a["nonce"], a["client"], a["provider"], a["deposit"], a["pricePerGiB"], a["expiry"])
                    self.open.append(OpenOrder(order, by_address[a["client"]], by_address[a["provider"]]))

    def addresses(self) -> list[str]:
        return [self.deployer.address] + [a.address for a in self.provider_accounts + self.client_accounts]


# --------------------------------------------------------------------------------------------- indexing


_OPEN: list[Any] = []  # clients and ledgers the helpers opened, for close_all()


def close_all() -> None:
    """Close every RPC client and ledger the helpers opened (call after each test)."""
    while _OPEN:
        _OPEN.pop().close()


def make_indexer(url: str, deployment: Deployment, db: Path, window: int = 64, **kwargs: Any) -> Indexer:
    """An Indexer with quick retries for tests (no multi-second backoffs); closed by close_all()."""
    rpc_kwargs = {
        "timeout": kwargs.pop("timeout", 10.0),
        "retry": RetryPolicy(max_attempts=8, max_elapsed=30, base=0.02, cap=0.2),
    }
    rpc = RpcClient(url, **rpc_kwargs)
    ledger = Ledger(db, deployment.addresses, deployment.chain_id, window=window)
    _OPEN.extend((ledger, rpc))
    kwargs.setdefault("backoff", RetryPolicy(base=0.01, cap=0.1))
    kwargs.setdefault("poll_interval", 0.05)
    return Indexer(rpc, ledger, deployment, window=window, **kwargs)


def index_fresh(url: str, deployment: Deployment, db: Path, window: int = 64) -> Ledger:
    """A clean index of the node's current chain: the reference every other run must equal."""
    indexer = make_indexer(url, deployment, db, window=window)
    result = indexer.step()
    assert result.cursor == result.head, result
    return indexer.ledger


def log_keys(ledger: Ledger) -> list[tuple[int, int]]:
    return [(r[0], r[1]) for r in ledger.conn.execute("SELECT block_number, log_index FROM raw_logs ORDER BY 1, 2")]


def node_log_keys(sim: Sim, to_block: int) -> list[tuple[int, int]]:
    return sorted((int(x["blockNumber"], 16), int(x["logIndex"], 16)) for x in sim.logs(to_block))


def check_reconciles(ledger: Ledger, sim: Sim) -> None:
    """(d) The ledger's accounts against view calls at the indexed block."""
    cursor = ledger.cursor()
    assert cursor is not None
    problems = reconcile(ledger, sim, cursor.number)
    assert not problems, "\n".join(problems)


def reconcile(ledger: Ledger, sim: Sim, block: int) -> list[str]:
    """indexer.reconcile's differences (every account, stake and order) plus the checks below."""
    return list(shared_reconcile(ledger, sim.w3, sim.deployment, block)) + balance_problems(ledger, sim, block)


def balance_problems(ledger: Ledger, sim: Sim, block: int) -> list[str]:
    """Staking's and the market's token balances against the stake and escrow accounts, and the wallet
    of every address the generator used (known to the ledger or not) against balanceOf, at `block`."""
    balances = {row[0]: int(row[1]) for row in ledger.conn.execute("SELECT account, balance FROM balances")}
    problems = []

    def on_chain(address: str) -> int:
        return int(sim.token.functions.balanceOf(address).call(block_identifier=block))

    stake = sum(v for k, v in balances.items() if k.startswith(("stake:active:", "stake:thawing:")))
    escrow = sum(v for k, v in balances.items() if k.startswith("escrow:"))
    if on_chain(sim.staking.address) != stake:
        problems.append(
            f"Staking holds {on_chain(sim.staking.address)} at block {block}, stake accounts sum to {stake}"
        )
    if on_chain(sim.market.address) != escrow:
        problems.append(
            f"market holds {on_chain(sim.market.address)} at block {block}, escrow accounts sum to {escrow}"
        )
    wallets = {k.split(":", 1)[1] for k in balances if k.startswith("wallet:")} | set(sim.addresses())
    for address in sorted(wallets):
        mine, theirs = balances.get(f"wallet:{address}", 0), on_chain(address)
        if mine != theirs:
            problems.append(f"wallet:{address} is {mine} in the ledger, balanceOf says {theirs} at block {block}")
    if sum(balances.values()) != 0:
        problems.append(f"ledger accounts sum to {sum(balances.values())}, not 0")
    if not any(k.startswith("wallet:") for k in balances):
        problems.append("no wallet accounts at all")
    return problems


# --------------------------------------------------------------------------------------------- fault proxy


@dataclass
class Faults:
    """Bounded fault budget of the proxy: kind -> at most this many injections."""

    http_500: int = 6
    http_429: int = 6
    rpc_error: int = 6
    timeout: int = 3
    truncate: int = 6
    empty_logs: int = 8
    range_hint: int = 4
    head_lag: int = 4

    @classmethod
    def only(cls, **budget: int) -> Faults:
        """No fault at all but those named."""
        return cls(**(dict.fromkeys(vars(cls()), 0) | budget))


class FaultProxy:
    """A threaded JSON-RPC proxy on 127.0.0.1 that forwards to `upstream` and injects faults at random.

    At most one fault per request; every injection is counted in `injected`. Silent faults (an eth_getLogs
    answer emptied) may hit any eth_getLogs request, the bloom check's rechecks included.
    """

    def __init__(
        self,
        upstream: str,
        faults: Faults,
        probability: float = 0.15,
        seed: int = 1,
        stall: float = 1.5,
        rates: dict[str, float] | None = None,
    ):
        self.upstream = upstream
        self.budget = dict(vars(faults))
        self.injected = dict.fromkeys(self.budget, 0)
        self.rates = {kind: probability for kind in self.budget} | (rates or {})
        self.rng = random.Random(seed)
        self.stall = stall
        self.lock = threading.Lock()
        self.requests = 0
        self._client = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, payload, headers = proxy.handle(body)
                with suppress(OSError):
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._client.close()

    def _pick(self, request: Any) -> str | None:
        """Under the lock: the fault to inject into this request, if any (at most one per request)."""
        calls = request if isinstance(request, list) else [request]
        methods = {c.get("method") for c in calls}
        eligible = ["http_500", "http_429", "rpc_error", "timeout", "truncate"]
        if "eth_getLogs" in methods:
            eligible.append("empty_logs")
        if "eth_blockNumber" in methods:
            eligible.append("head_lag")
        if not isinstance(request, list) and request.get("method") == "eth_getLogs":
            query = request["params"][0]
            if "fromBlock" in query and int(query["toBlock"], 16) > int(query["fromBlock"], 16):
                eligible.append("range_hint")
        self.rng.shuffle(eligible)
        for kind in eligible:
            if self.injected[kind] < self.budget[kind] and self.rng.random() < self.rates[kind]:
                return kind
        return None

    def handle(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        request = json.loads(body)
        calls = request if isinstance(request, list) else [request]
        with self.lock:
            self.requests += 1
            fault = self._pick(request)
            if fault is not None and fault != "empty_logs":
                self.injected[fault] += 1
        if fault == "http_500":
            return 500, b"internal server error", {}
        if fault == "http_429":
            return 429, b'{"error": "too many requests"}', {"Retry-After": "0"}
        if fault == "timeout":
            time.sleep(self.stall)  # the client has given up by now; the answer goes nowhere
        if fault == "range_hint":
            query = request["params"][0]
            lo, hi = int(query["fromBlock"], 16), int(query["toBlock"], 16)
            message = (
                "query returned more than 10000 results. "
                f"Try with this block range [{hex(lo)}, {hex(lo + (hi - lo) // 2)}]."
            )
            answer: Any = {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32005, "message": message}}
            return 200, json.dumps(answer).encode(), {}
        upstream = self._client.post(self.upstream, content=body, headers={"Content-Type": "application/json"})
        answer = upstream.json()
        answers = answer if isinstance(answer, list) else [answer]
        by_id = {c.get("id"): c for c in calls}
        if fault == "rpc_error":
            victim = self.rng.choice(answers)
            victim.pop("result", None)
            victim["error"] = {"code": -32603, "message": "injected internal error", "data": "fault proxy"}
        if fault == "head_lag":
            for a in answers:
                if by_id.get(a.get("id"), {}).get("method") == "eth_blockNumber" and "result" in a:
                    a["result"] = hex(max(0, int(a["result"], 16) - 3))
        if fault == "empty_logs":
            for a in answers:
                if by_id.get(a.get("id"), {}).get("method") == "eth_getLogs" and a.get("result"):
                    a["result"] = []
                    with self.lock:
                        self.injected["empty_logs"] += 1
                    break
        payload = json.dumps(answer).encode()
        if fault == "truncate":
            payload = payload[: self.rng.randint(0, max(0, len(payload) - 1))]
        return 200, payload, {}


@contextmanager
def fault_proxy(upstream: str, faults: Faults | None = None, **kwargs: Any) -> Iterator[FaultProxy]:
    with FaultProxy(upstream, faults or Faults(), **kwargs) as proxy:
        yield proxy


# --------------------------------------------------------------------------------------------- fake chain


class FakeChain:
    """An in-memory chain served through httpx.MockTransport, for fast unit tests of the indexer.

    Every `logs_every`-th block holds a FlowToken Transfer between two outsiders; blooms are real.
    Knobs: `max_results` / `max_range` refuse larger eth_getLogs queries (with `refusal` as the message
    template), `lag` lowers the reported head, `answers` / `hash_answers` override the next eth_getLogs
    answers by range / by block hash, `receipts` turns eth_getBlockReceipts on or off.
    """

    TRANSFER = "0x" + keccak(b"Transfer(address,address,uint256)").hex()

    def __init__(self, contracts: dict[str, str], blocks: int, logs_every: int = 3, chain_id: int = 31337) -> None:
        self.contracts = contracts
        self.token = contracts["FlowToken"]
        self.chain_id = chain_id
        self.logs_every = logs_every
        self.chain: list[dict[str, Any]] = []
        self.extend(blocks, salt=b"main")
        self.lag = 0
        self.max_results: int | None = None
        self.max_range: int | None = None
        self.refusal = "query returned more than {limit} results"
        self.answers: list[Any] = []  # next eth_getLogs (range) answers to return instead of the truth
        self.hash_answers: list[Any] = []  # next eth_getLogs (blockHash) answers to return instead of the truth
        self.receipts = True  # serves eth_getBlockReceipts
        self.ranges: list[tuple[int, int]] = []
        self.calls: list[str] = []

    def extend(self, count: int, salt: bytes) -> None:
        for _ in range(count):
            n = len(self.chain)
            parent = self.chain[-1]["hash"] if self.chain else "0x" + "00" * 32
            block_hash = "0x" + keccak(salt + n.to_bytes(8, "big") + bytes.fromhex(parent[2:])).hex()
            logs = []
            if n % self.logs_every == 0 and n > 0:
                for i in range(1 + (n // self.logs_every) % 2):
                    sender = "0x" + keccak(salt + bytes([i])).hex()[-40:]
                    to = "0x" + keccak(block_hash.encode()).hex()[-40:]
                    logs.append(
                        {
                            "address": self.token.lower(),
                            "topics": [self.TRANSFER, "0x" + "00" * 12 + sender[2:], "0x" + "00" * 12 + to[2:]],
                            "data": "0x" + (n * 1000 + i).to_bytes(32, "big").hex(),
                            "blockNumber": hex(n),
                            "blockHash": block_hash,
                            "transactionHash": "0x" + keccak(block_hash.encode() + bytes([i])).hex(),
                            "logIndex": hex(i),
                            "transactionIndex": hex(i),
                            "removed": False,
                        }
                    )
            bloom = bytearray(256)
            for entry in logs:
                for item in [entry["address"], *entry["topics"]]:
                    for index, mask in bloom_bits(bytes.fromhex(item[2:])):
                        bloom[index] |= mask
            self.chain.append(
                {
                    "number": hex(n),
                    "hash": block_hash,
                    "parentHash": parent,
                    "logsBloom": "0x" + bloom.hex(),
                    "logs": logs,
                }
            )

    def reorg(self, depth: int, new_blocks: int, salt: bytes) -> None:
        del self.chain[len(self.chain) - depth :]
        self.extend(new_blocks, salt)

    @property
    def head(self) -> int:
        return len(self.chain) - 1 - self.lag

    def all_logs(self) -> list[dict[str, Any]]:
        return [entry for block in self.chain for entry in block["logs"]]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if isinstance(body, list):
            return httpx.Response(200, json=[self.answer(call) for call in body])
        return httpx.Response(200, json=self.answer(body))

    def answer(self, call: dict[str, Any]) -> dict[str, Any]:
        method, params = call["method"], call["params"]
        self.calls.append(method)
        reply = {"jsonrpc": "2.0", "id": call["id"]}
        if method == "eth_chainId":
            return {**reply, "result": hex(self.chain_id)}
        if method == "eth_blockNumber":
            return {**reply, "result": hex(self.head)}
        if method == "eth_getBlockByNumber":
            n = int(params[0], 16)
            if n > self.head:
                return {**reply, "result": None}
            block = {k: v for k, v in self.chain[n].items() if k != "logs"}
            return {**reply, "result": {**block, "transactions": []}}
        if method == "eth_getBlockReceipts":
            if not self.receipts:
                return {**reply, "error": {"code": -32601, "message": "the method eth_getBlockReceipts does not exist"}}
            found = [b for b in self.chain if b["hash"] == params[0]]
            if not found:
                return {**reply, "result": None}
            return {**reply, "result": [{"blockHash": found[0]["hash"], "logs": found[0]["logs"]}]}
        if method == "eth_getLogs":
            q = params[0]
            wanted = {a.lower() for a in q["address"]}
            if "blockHash" in q:
                blocks = [b for b in self.chain if b["hash"] == q["blockHash"]]
                if self.hash_answers:
                    return {**reply, "result": self.hash_answers.pop(0)}
            else:
                lo, hi = int(q["fromBlock"], 16), int(q["toBlock"], 16)
                self.ranges.append((lo, hi))
                if self.max_range is not None and hi - lo + 1 > self.max_range:
                    return {**reply, "error": {"code": -32602, "message": self.refusal.format(limit=self.max_range)}}
                blocks = self.chain[lo : hi + 1]
                found = [e for b in blocks for e in b["logs"] if e["address"] in wanted]
                if self.max_results is not None and len(found) > self.max_results:
                    # Like Infura: name a range from `lo` that would fit.
                    count, end = 0, lo
                    for b in blocks:
                        count += len(b["logs"])
                        if count > self.max_results:
                            break
                        end = int(b["number"], 16)
                    message = self.refusal.format(limit=self.max_results, lo=hex(lo), hi=hex(end))
                    return {**reply, "error": {"code": -32005, "message": message}}
                if self.answers:
                    return {**reply, "result": self.answers.pop(0)}
            return {**reply, "result": [e for b in blocks for e in b["logs"] if e["address"] in wanted]}
        return {**reply, "error": {"code": -32601, "message": f"method {method} not found"}}
