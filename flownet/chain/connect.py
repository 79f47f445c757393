"""Build web3 instances: an HTTP JSON-RPC node or an in-process eth-tester chain.

All chain access in FlowNet goes through a `Web3` made here, so tests can swap the backend.
"""

from __future__ import annotations

from web3 import Web3
from web3.providers.rpc import HTTPProvider

from flownet.errors import ChainError, ConfigError


def http_web3(url: str, timeout: float = 30.0) -> Web3:
    """A Web3 on the JSON-RPC endpoint at `url`, checked to answer."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"RPC URL must start with http:// or https:// (not {url!r})")
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))
    try:
        _ = w3.eth.chain_id
    except Exception as exc:  # requests raises many types; all mean the same to the user
        raise ChainError(f"no JSON-RPC node answers at {url}: {exc}") from exc
    return w3


def in_process_web3() -> Web3:
    """A Web3 on a fresh in-process eth-tester (py-evm) chain with funded, unlocked accounts."""
    from web3.providers.eth_tester import EthereumTesterProvider

    return Web3(EthereumTesterProvider())
