#!/usr/bin/env python3
"""Add the Foundry platform packages the npm registry here does not serve to package-lock.json.

`npm ci` refuses a lock file that lacks any optional dependency of @foundry-rs/{anvil,cast,forge}, but
the registry reachable from this workplace serves only some platform builds, so `npm install` cannot
record the rest. This adds an entry (version, os, cpu, optional) for each missing one; npm skips them
on other platforms. Run after `npm install` changes the lock: python3 tools/complete-lockfile.py
"""

import json
import sys
from pathlib import Path

LOCK = Path(__file__).resolve().parents[1] / "package-lock.json"
PLATFORMS = {
    "darwin-amd64": ("darwin", "x64"),
    "darwin-arm64": ("darwin", "arm64"),
    "linux-amd64": ("linux", "x64"),
    "linux-arm64": ("linux", "arm64"),
    "win32-amd64": ("win32", "x64"),
}


def main() -> int:
    lock = json.loads(LOCK.read_text())
    packages = lock["packages"]
    added = []
    for tool in ("anvil", "cast", "forge"):
        parent = packages.get(f"node_modules/@foundry-rs/{tool}")
        if parent is None:
            print(f"@foundry-rs/{tool} is not in the lock file; run npm install first", file=sys.stderr)
            return 1
        for platform, (os_name, cpu) in PLATFORMS.items():
            key = f"node_modules/@foundry-rs/{tool}-{platform}"
            if key not in packages:
                packages[key] = {
                    "version": parent["version"],
                    "cpu": [cpu],
                    "license": parent.get("license", ""),
                    "optional": True,
                    "os": [os_name],
                    "engines": {"node": ">=20"},
                }
                added.append(key)
    lock["packages"] = dict(sorted(packages.items(), key=lambda kv: (kv[0] != "", kv[0])))
    LOCK.write_text(json.dumps(lock, indent=2) + "\n")
    print(f"added {len(added)} entries" + "".join(f"\n  {k}" for k in added))
    return 0


if __name__ == "__main__":
    sys.exit(main())
