"""Send transactions, wait for them, and explain reverts.

Agents sign locally with a key from an encrypted keystore (`Sender`); the devnet's deployer sends from
the node's unlocked dev account (`NodeSender`). Both share one `NonceManager` per node and address, so
concurrent sends from one wallet get consecutive nonces. Gas is estimated with a margin, receipts are
polled every 10 ms, and a revert is raised as `TransactionFailed` with the contract's custom error
turned into a sentence (see flownet.chain.reverts).
"""

from __future__ import annotations

import ast
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError
from web3.types import TxParams

from flownet.chain import reverts
from flownet.errors import ChainError, TransactionFailed

log = logging.getLogger(__name__)

GAS_MARGIN = 1.2
GAS_EXTRA = 10_000
_TESTER_REVERT = re.compile(r"execution reverted: (b(['\"]).*\2)$", re.DOTALL)
_NONCE_TROUBLE = ("nonce too low", "nonce too high", "already known", "replacement transaction underpriced")


@dataclass(frozen=True)
class Sent:
    """A mined, successful transaction."""

    action: str
    tx_hash: str
    gas_used: int
    block_number: int
    receipt: Any


def decode_revert(data: str | bytes | None) -> str:
    """Revert data as ``ErrorName(arg=value, ...)`` (see flownet.chain.reverts for the sentence)."""
    return reverts.decode(data).raw


def _revert_data(exc: Exception) -> str | bytes | None:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):  # some providers wrap it
        data = data.get("data")
    if isinstance(data, (str, bytes)):
        return data
    if len(exc.args) > 1 and isinstance(exc.args[1], (str, bytes)):
        return exc.args[1]
    # web3's eth-tester provider re-raises with the raw revert bytes rendered into the message.
    match = _TESTER_REVERT.search(str(exc))
    if match:
        try:
            value = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            return None
        return value if isinstance(value, bytes) else None
    return None


def _is_revert(exc: Exception) -> bool:
    if isinstance(exc, (ContractCustomError, ContractLogicError, ContractPanicError)):
        return True
    return type(exc).__name__ == "TransactionFailed" and type(exc).__module__.startswith("eth_tester")


def failed(action: str, exc: Exception) -> TransactionFailed:
    """The TransactionFailed for a revert raised by a call or estimate."""
    decoded = reverts.decode(_revert_data(exc))
    return TransactionFailed(action, decoded.raw, sentence=decoded.sentence, error=decoded.name)


class NonceManager:
    """Hands out consecutive nonces per (node, address) across threads; resyncs from the node on trouble."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[tuple[int, str], int] = {}
        self._locks: dict[tuple[int, str], threading.Lock] = {}

    def lock_for(self, w3: Web3, address: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault((id(w3.provider), address), threading.Lock())

    def take(self, w3: Web3, address: str) -> int:
        """The next nonce; call with lock_for(w3, address) held."""
        key = (id(w3.provider), address)
        node_next = w3.eth.get_transaction_count(Web3.to_checksum_address(address), "pending")
        nonce = max(node_next, self._next.get(key, 0))
        self._next[key] = nonce + 1
        return nonce

    def forget(self, w3: Web3, address: str) -> None:
        self._next.pop((id(w3.provider), address), None)


NONCES = NonceManager()


class BaseSender:
    """Estimate, send and await transactions from one address."""

    def __init__(self, w3: Web3, address: str, poll_latency: float = 0.01, timeout: float = 120.0) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.poll_latency = poll_latency
        self.timeout = timeout

    def transact(self, fn: ContractFunction, action: str | None = None, gas: int | None = None) -> Sent:
        """Estimate (raising the decoded revert), send, and wait for `fn`."""
        action = action or fn.fn_name
        params: dict[str, Any] = {"from": self.address}
        try:
            params["gas"] = gas or int(fn.estimate_gas(cast(TxParams, params)) * GAS_MARGIN) + GAS_EXTRA
        except Exception as exc:
            if not _is_revert(exc):
                raise
            raise failed(action, exc) from exc

        def build(nonce: int) -> TxParams:
            return fn.build_transaction(cast(TxParams, {**params, **self._fees(), "nonce": nonce}))

        return self._submit(build, action)

    def send_value(self, to: str, value: int, action: str = "transfer ETH") -> Sent:
        chain_id = self.w3.eth.chain_id
        return self._submit(
            lambda nonce: {
                "from": self.address,
                "to": to,
                "value": value,
                "gas": 21_000,
                "nonce": nonce,
                "chainId": chain_id,
                **self._fees(),
            },
            action,
        )

    def deploy(self, contract_factory: Any, *args: Any, action: str) -> tuple[str, Sent]:
        """Deploy a contract; return its address and the transaction."""
        ctor = contract_factory.constructor(*args)
        try:
            gas = int(ctor.estimate_gas({"from": self.address}) * GAS_MARGIN) + GAS_EXTRA
        except Exception as exc:
            if not _is_revert(exc):
                raise
            raise failed(action, exc) from exc
        sent = self._submit(
            lambda nonce: ctor.build_transaction({"from": self.address, "gas": gas, "nonce": nonce, **self._fees()}),
            action,
        )
        address = sent.receipt["contractAddress"]
        if not address:
            raise ChainError(f"{action}: receipt {sent.tx_hash} has no contract address")
        return Web3.to_checksum_address(address), sent

    def _fees(self) -> dict[str, int]:
        base = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:
            return {"gasPrice": self.w3.eth.gas_price}
        tip = 1_000_000_000
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def _submit(self, build: Any, action: str) -> Sent:
        with NONCES.lock_for(self.w3, self.address):
            nonce = NONCES.take(self.w3, self.address)
            try:
                tx_hash = self._send(build(nonce))
            except Exception as exc:
                NONCES.forget(self.w3, self.address)
                if any(t in str(exc).lower() for t in _NONCE_TROUBLE):
                    raise ChainError(f"{action}: the node refused nonce {nonce} for {self.address}: {exc}") from exc
                raise
        return self._await(tx_hash, action)

    def _send(self, tx: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def _await(self, tx_hash: bytes, action: str) -> Sent:
        receipt = self.w3.eth.wait_for_transaction_receipt(
            HexBytes(tx_hash), timeout=self.timeout, poll_latency=self.poll_latency
        )
        hex_hash = "0x" + bytes(tx_hash).hex()
        if receipt["status"] != 1:
            raise TransactionFailed(action, "reverted on chain (state changed between estimate and mining)", hex_hash)
        log.info("%s: tx %s gas %d block %d", action, hex_hash, receipt["gasUsed"], receipt["blockNumber"])
        return Sent(action, hex_hash, receipt["gasUsed"], receipt["blockNumber"], receipt)


class Sender(BaseSender):
    """Signs locally with `account` (from an encrypted keystore) and sends raw transactions."""

    def __init__(self, w3: Web3, account: LocalAccount, poll_latency: float = 0.01, timeout: float = 120.0) -> None:
        super().__init__(w3, account.address, poll_latency, timeout)
        self.account = account

    def _send(self, tx: dict[str, Any]) -> bytes:
        signed = self.account.sign_transaction(tx)
        return bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))


class NodeSender(BaseSender):
    """Sends from an account the node holds unlocked (anvil's dev accounts) with eth_sendTransaction."""

    def _send(self, tx: dict[str, Any]) -> bytes:
        return bytes(self.w3.eth.send_transaction(tx))  # type: ignore[arg-type]
