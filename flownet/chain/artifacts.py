"""Load the committed contract artifacts (ABI, bytecode, provenance) from ``flownet/artifacts/``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from flownet.errors import CompileError

ARTIFACTS_DIR = Path(__file__).resolve().parents[1] / "artifacts"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract as committed in flownet/artifacts/<name>.json."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str
    source_hash: str
    file_hash: str
    immutable_ranges: tuple[tuple[int, int], ...] = ()

    def matches_runtime_code(self, code: bytes) -> bool:
        """True when `code` is this contract's runtime code, whatever its immutables were set to."""
        expected = bytearray(bytes.fromhex(self.deployed_bytecode.removeprefix("0x")))
        actual = bytearray(code)
        if len(actual) != len(expected):
            return False
        for start, length in self.immutable_ranges:
            actual[start : start + length] = expected[start : start + length]
        return actual == expected

    def errors_by_selector(self) -> dict[bytes, dict[str, Any]]:
        """Custom errors of this ABI keyed by their 4-byte selector."""
        from eth_utils.abi import function_abi_to_4byte_selector

        return {function_abi_to_4byte_selector(e): e for e in self.abi if e["type"] == "error"}  # type: ignore[arg-type]


@cache
def load_artifact(name: str, directory: Path = ARTIFACTS_DIR) -> Artifact:
    """The artifact of contract `name` (``FlowToken``, ``Staking`` or ``BandwidthMarket``)."""
    path = directory / f"{name}.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CompileError(f"no artifact for contract {name!r} at {path} (run `make artifacts`)") from None
    data = json.loads(raw)
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        compiler_version=data["compiler"]["version"],
        source_hash=data["sourceHash"],
        file_hash="sha256:" + hashlib.sha256(raw).hexdigest(),
        immutable_ranges=tuple((int(s), int(n)) for s, n in data.get("immutableRanges", [])),
    )
