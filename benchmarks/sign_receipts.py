"""Receipt signing throughput: a client signs one EIP-712 receipt per credit window, so this bounds
how finely it can meter. Compares eth-keys' coincurve backend (FlowNet's dependency) with the pure
Python backend in the same run.

    .venv/bin/python benchmarks/sign_receipts.py [--count N]
"""

from __future__ import annotations

import argparse
import os
import time

from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_keys import KeyAPI
from eth_keys.backends import CoinCurveECCBackend, NativeECCBackend

from flownet.core.pricing import GIB
from flownet.core.receipts import MarketDomain, Order


def sign_rate(backend: object, count: int) -> float:
    keys = KeyAPI(backend)  # type: ignore[arg-type]
    private = keys.PrivateKey(os.urandom(32))
    order = Order(1, private.public_key.to_checksum_address(), "0x" + "a1" * 20, 10**21, 2 * 10**18, 2_000_000_000)
    domain = MarketDomain(31337, "0x" + "b2" * 20)
    start = time.perf_counter()
    for i in range(count):
        message = encode_typed_data(full_message=order.receipt_for((i + 1) * GIB // 64).typed_data(domain))
        keys.ecdsa_sign(_hash_eip191_message(message), private)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="receipts to sign per backend (default 2000)")
    args = parser.parse_args()
    if args.count <= 0:
        parser.error(f"--count must be positive (not {args.count})")
    baseline = sign_rate(NativeECCBackend(), max(args.count // 10, 1))
    fast = sign_rate(CoinCurveECCBackend(), args.count)
    print(f"baseline  pure-Python eth-keys : {baseline:8.0f} receipts/s")
    print(f"flownet   coincurve eth-keys   : {fast:8.0f} receipts/s  ({fast / baseline:.1f}x)")


if __name__ == "__main__":
    main()
