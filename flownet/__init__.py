"""FlowNet: a decentralized, trusted bandwidth market on EVM chains.

The public API re-exports what an integrator needs to deploy the contracts, act as a provider or
client, and sign receipts; everything else is internal and may change.
"""

from flownet.chain.deploy import DeployConfig, Deployment, deploy
from flownet.chain.market import FlowNet, Role, SignedReceipt, sign_close, sign_receipt
from flownet.chain.tx import Sender, Sent
from flownet.core.pricing import GIB, cost_of, lock_for
from flownet.core.receipts import CloseAgreement, MarketDomain, Order, Receipt
from flownet.errors import (
    ChainError,
    CompileError,
    ConfigError,
    DeploymentError,
    FlowNetError,
    ReceiptError,
    TransactionFailed,
)

__version__ = "0.1.0"

__all__ = [
    "GIB",
    "ChainError",
    "CloseAgreement",
    "CompileError",
    "ConfigError",
    "DeployConfig",
    "Deployment",
    "DeploymentError",
    "FlowNet",
    "FlowNetError",
    "MarketDomain",
    "Order",
    "Receipt",
    "ReceiptError",
    "Role",
    "Sender",
    "Sent",
    "SignedReceipt",
    "TransactionFailed",
    "__version__",
    "cost_of",
    "deploy",
    "lock_for",
    "sign_close",
    "sign_receipt",
]
