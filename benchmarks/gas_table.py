"""Print the gas table (from snapshots/GasTest.json, written by `make gas`) against the targets.

Each figure is a whole transaction (21,000 base + calldata + execution), measured by forge with every
call isolated in its own transaction so storage access is cold as on a real chain. The "FLOW transfer
(baseline)" row is the ERC-20 transfer of FLOW in the same run: the floor any token payment costs. The
"before" column holds the figures `make gas` measured on main before issue 11's findings 4, 5 and 10
(per-owner certificate records, validity that follows stake, packed certificate and stake records).

    make gas    # runs forge, then this script
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "GasTest.json"

TARGETS = {
    "stake": 70_000,
    "withdraw": 45_000,
    "redeem (first)": 60_000,
    "redeem (later)": 60_000,
    "openOrder": 110_000,
    "redeemMany per receipt (amortized over 10)": 40_000,
}

# Measured by `make gas` at commit e29a410 (main plus the register and revoke rows).
BEFORE = {
    "stake": 86_877,
    "requestUnstake": 35_218,
    "withdraw": 51_257,
    "withdraw (full unbond)": 52_367,
    "withdraw (full unbond, 1 certificate)": 81_521,
    "slash": 71_638,
    "slash (1 certificate)": 100_792,
    "slash (8 certificates)": 320_343,
    "register (certificate)": 159_921,
    "revoke (certificate)": 56_288,
    "openOrder": 86_157,
    "openOrder (market's first order)": 103_257,
    "openOrderWithPermit": 117_888,
    "redeem (first)": 58_417,
    "redeem (later)": 58_429,
    "redeem (first, provider balance zero)": 75_517,
    "redeemMany x10 (total)": 233_185,
    "redeemMany per receipt (amortized over 10)": 23_318,
    "close": 73_434,
    "reclaim": 56_011,
    "slashEquivocation": 180_649,
    "slashEquivocation (supersedes an open dispute)": 216_062,
    "openDispute (2 signatures)": 381_882,
    "rebut (strike, dispute stays open)": 100_897,
    "rebut": 122_507,
    "executeDispute": 174_307,
    "setScore": 74_435,
    "FLOW transfer (baseline)": 34_371,
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
    "register (certificate)",
    "revoke (certificate)",
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
    print("| operation | gas | before | target |")
    print("| --- | ---: | ---: | --- |")
    misses = 0
    for name in ORDER:
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            ok = figures[name] <= target
            misses += not ok
            verdict = f"≤ {target:,} {'met' if ok else 'MISSED'}"
        before = f"{BEFORE[name]:,}" if name in BEFORE else ""
        print(f"| {name} | {figures[name]:,} | {before} | {verdict} |")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
