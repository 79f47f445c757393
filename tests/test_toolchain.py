"""The toolchain wrappers pass failures through (npm's Foundry wrapper exits 0 when forge fails)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_foundry_wrapper_passes_the_exit_code_through() -> None:
    ok = subprocess.run([str(ROOT / "tools" / "foundry"), "forge", "--version"], capture_output=True, check=False)
    assert ok.returncode == 0 and b"forge" in ok.stdout.lower()
    bad = subprocess.run(
        [str(ROOT / "tools" / "foundry"), "forge", "--no-such-option"], capture_output=True, check=False
    )
    assert bad.returncode != 0
    unknown = subprocess.run([str(ROOT / "tools" / "foundry"), "solc"], capture_output=True, check=False)
    assert unknown.returncode == 2 and b"unknown Foundry tool" in unknown.stderr


def test_make_runs_forge_through_the_wrapper() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "FORGE := tools/foundry forge" in makefile
    assert "node_modules/.bin/forge" not in makefile
