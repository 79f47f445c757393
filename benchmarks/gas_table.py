"""Print the gas table (from snapshots/GasTest.json, written by `make gas`) against the targets.

Each figure is a whole transaction (21,000 base + calldata + execution), measured by forge with every
call isolated in its own transaction so storage access is cold as on a real chain. The baseline column
is the ERC-20 transfer of FLOW in the same run: the floor any token payment costs.

    make gas    # runs forge, then this script
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "GasTest.json"

TARGETS = {
    "redeem (first)": 60_000,
    "redeem (later)": 60_000,
    "openOrder": 110_000,
    "redeemMany per receipt (amortized over 10)": 40_000,
}

ORDER = [
    "stake",
    "requestUnstake",
    "withdraw",
    "withdraw (full unbond)",
    "withdraw (full unbond, 1 certificate)",
    "slash",
    "slash (1 certificate)",
    "slash (8 certificates)",
    "openOrder",
    "openOrder (market's first order)",
    "openOrderWithPermit",
    "redeem (first)",
    "redeem (later)",
    "redeem (first, provider balance zero)",
    "redeemMany x10 (total)",
    "redeemMany per receipt (amortized over 10)",
    "close",
    "reclaim",
    "cancel",
    "cancel (and refuse the client)",
    "refuse",
    "slashEquivocation",
    "slashEquivocation (supersedes an open dispute)",
    "openDispute (2 signatures)",
    "rebut (strike, dispute stays open)",
    "rebut",
    "executeDispute",
    "setScore",
    "FLOW transfer (baseline)",
]


def main() -> int:
    try:
        figures = {k: int(v) for k, v in json.loads(SNAPSHOT.read_text()).items()}
    except FileNotFoundError:
        print(f"no {SNAPSHOT}: run `make gas` first", file=sys.stderr)
        return 1
    missing = [name for name in ORDER if name not in figures]
    if missing:
        print(f"{SNAPSHOT} lacks {missing}: run `make gas` again", file=sys.stderr)
        return 1
    print("| operation | gas | target |")
    print("| --- | ---: | --- |")
    misses = 0
    for name in ORDER:
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = figures[name] <= target
            misses += not ok
            verdict = f"≤ {target:,} {'met' if ok else 'MISSED'}"
        print(f"| {name} | {figures[name]:,} | {verdict} |")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
