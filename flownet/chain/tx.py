"""Send transactions signed by a local key, wait for them, and explain reverts.

Every FlowNet agent signs locally (its key comes from an encrypted keystore), so the same code runs
against anvil, eth-tester or a public chain. A revert is raised as `TransactionFailed` with the
contract's custom error decoded by name and arguments, e.g.
``MarketReceiptNotNewer(orderId=0x12…, amount=10, paid=10)``.
"""

from __future__ import annotations

import ast
import logging
import re
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from flownet.chain.artifacts import load_artifact
from flownet.errors import ChainError, TransactionFailed

log = logging.getLogger(__name__)

ERROR_SOURCES = ("FlowToken", "Staking", "BandwidthMarket")
_TESTER_REVERT = re.compile(r"execution reverted: (b(['\"]).*\2)$", re.DOTALL)


@dataclass(frozen=True)
class Sent:
    """A mined, successful transaction."""

    action: str
    tx_hash: str
    gas_used: int
    block_number: int
    receipt: Any


def decode_revert(data: str | bytes | None) -> str:
    """Turn revert data into ``ErrorName(arg=value, ...)`` using every FlowNet ABI (plus OpenZeppelin's)."""
    if data is None:
        return "reverted without data"
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else bytes(data)
    if len(raw) < 4:
        return f"reverted with data 0x{raw.hex()}"
    selector, body = raw[:4], raw[4:]
    if selector == bytes.fromhex("08c379a0"):
        return f"Error({abi_decode(['string'], body)[0]!r})"
    for name in ERROR_SOURCES:
        entry = load_artifact(name).errors_by_selector().get(selector)
        if entry is None:
            continue
        types = [i["type"] if i["type"] != "tuple" else _tuple_type(i) for i in entry["inputs"]]
        try:
            values = abi_decode(types, body)
        except Exception:  # wrong layout for this ABI's error of the same selector: keep looking
            continue
        args = ", ".join(f"{i['name']}={_show(v)}" for i, v in zip(entry["inputs"], values, strict=True))
        return f"{entry['name']}({args})"
    return f"unknown error 0x{raw.hex()}"


def _tuple_type(item: dict[str, Any]) -> str:
    return "(" + ",".join(c["type"] for c in item["components"]) + ")"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and Web3.is_address(value):
        return Web3.to_checksum_address(value)
    return str(value)


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


class Sender:
    """Signs and sends transactions from one local account, tracking its nonce."""

    def __init__(self, w3: Web3, account: LocalAccount, poll_latency: float = 0.01, timeout: float = 120.0) -> None:
        self.w3 = w3
        self.account = account
        self.poll_latency = poll_latency
        self.timeout = timeout

    @property
    def address(self) -> str:
        return self.account.address

    def transact(self, fn: ContractFunction, action: str | None = None, gas: int | None = None) -> Sent:
        """Estimate, sign, send and wait for `fn`; raise TransactionFailed with the decoded reason."""
        action = action or fn.fn_name
        params: dict[str, Any] = {"from": self.address}
        try:
            params["gas"] = gas or int(fn.estimate_gas(params) * 1.2) + 10_000
        except Exception as exc:
            if not _is_revert(exc):
                raise
            raise TransactionFailed(action, decode_revert(_revert_data(exc))) from exc
        tx = fn.build_transaction({**params, **self._fees(), "nonce": self._nonce()})
        return self._send(tx, action)

    def send_value(self, to: str, value: int, action: str = "transfer ETH") -> Sent:
        tx = {"from": self.address, "to": to, "value": value, "gas": 21_000, "nonce": self._nonce(), **self._fees()}
        tx["chainId"] = self.w3.eth.chain_id
        return self._send(tx, action)

    def deploy(self, contract_factory: Any, *args: Any, action: str) -> tuple[str, Sent]:
        """Deploy a contract; return its address and the transaction."""
        ctor = contract_factory.constructor(*args)
        try:
            gas = int(ctor.estimate_gas({"from": self.address}) * 1.2) + 10_000
        except Exception as exc:
            if not _is_revert(exc):
                raise
            raise TransactionFailed(action, decode_revert(_revert_data(exc))) from exc
        tx = ctor.build_transaction({"from": self.address, "gas": gas, "nonce": self._nonce(), **self._fees()})
        sent = self._send(tx, action)
        address = sent.receipt["contractAddress"]
        if not address:
            raise ChainError(f"{action}: receipt {sent.tx_hash} has no contract address")
        return Web3.to_checksum_address(address), sent

    def _nonce(self) -> int:
        return self.w3.eth.get_transaction_count(self.address, "pending")

    def _fees(self) -> dict[str, int]:
        base = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:
            return {"gasPrice": self.w3.eth.gas_price}
        tip = 1_000_000_000
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def _send(self, tx: dict[str, Any], action: str) -> Sent:
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=self.timeout, poll_latency=self.poll_latency
        )
        hex_hash = "0x" + bytes(tx_hash).hex()
        if receipt["status"] != 1:
            raise TransactionFailed(action, "reverted on chain (state changed between estimate and mining)", hex_hash)
        log.info("%s: tx %s gas %d block %d", action, hex_hash, receipt["gasUsed"], receipt["blockNumber"])
        return Sent(action, hex_hash, receipt["gasUsed"], receipt["blockNumber"], receipt)
