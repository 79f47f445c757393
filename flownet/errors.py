"""FlowNet's exception hierarchy: one root, one subclass per domain.

Every message quotes the offending value and, where one exists, a hint on how to fix it, so a user
can act on it without reading the code. The CLI maps each class to an exit code.
"""

from __future__ import annotations

__all__ = [
    "BlobError",
    "ChainError",
    "CompileError",
    "ConfigError",
    "DeploymentError",
    "FlowNetError",
    "ProtocolError",
    "ReceiptError",
    "TransactionFailed",
    "TunnelError",
    "WalletError",
]


class FlowNetError(Exception):
    """Root of every error FlowNet raises on purpose."""

    exit_code = 1


class ConfigError(FlowNetError):
    """A setting, argument or file given to FlowNet is invalid."""

    exit_code = 2


class CompileError(FlowNetError):
    """The Solidity sources did not compile, or the artifacts do not match them."""

    exit_code = 3


class ChainError(FlowNetError):
    """The chain or its RPC endpoint misbehaved or is unreachable."""

    exit_code = 4


class TransactionFailed(ChainError):
    """A transaction reverted.

    `reason` is the decoded custom error (``MarketReceiptNotNewer(orderId=0x…, amount=…, paid=…)``),
    `error` its name, and the message a sentence with formatted values ending in ``[ErrorName]``.
    """

    def __init__(
        self, action: str, reason: str, tx_hash: str | None = None, sentence: str | None = None, error: str = ""
    ) -> None:
        self.action = action
        self.reason = reason
        self.error = error
        self.tx_hash = tx_hash
        where = f" (tx {tx_hash})" if tx_hash else ""
        tag = f" [{error}]" if error else ""
        super().__init__(f"{action} failed: {sentence or reason}{tag}{where}")


class DeploymentError(FlowNetError):
    """A deployment or its manifest is missing, inconsistent or does not match the chain."""

    exit_code = 5


class WalletError(FlowNetError):
    """A wallet is missing, already exists, or its password is wrong."""

    exit_code = 7


class BlobError(FlowNetError):
    """A blob is too large, missing, or its bytes do not match its CID."""

    exit_code = 8


class ReceiptError(FlowNetError):
    """A payment receipt is malformed or inconsistent with its order."""

    exit_code = 6


class TunnelError(FlowNetError):
    """The metered tunnel between a client and a provider failed."""

    exit_code = 10


class ProtocolError(TunnelError):
    """A peer sent bytes that break the SOCKS5 or FlowNet frame protocol.

    `reply_code` is the SOCKS5 reply (or method-selection) byte to send back before closing, when one applies.
    `completed` holds what a parser fully decoded from the same input before the error (for example the
    frames that preceded a malformed one), so the result never depends on how the bytes were split.
    """

    def __init__(self, message: str, reply_code: int | None = None) -> None:
        self.reply_code = reply_code
        self.completed: tuple[object, ...] = ()
        super().__init__(message)
