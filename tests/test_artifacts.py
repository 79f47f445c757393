"""The committed artifacts must be exactly what a fresh compile of contracts/ produces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flownet.chain import compile as compiler
from flownet.chain.artifacts import load_artifact


@pytest.fixture(scope="module")
def fresh() -> dict[str, dict[str, object]]:
    return compiler.compile_contracts()


def test_committed_artifacts_match_fresh_compile(fresh: dict[str, dict[str, object]]) -> None:
    for name, artifact in fresh.items():
        committed = (compiler.ARTIFACTS_DIR / f"{name}.json").read_text()
        assert committed == compiler.render(artifact), f"{name}.json is stale: run `make artifacts`"


def test_stale_check_detects_a_changed_artifact(tmp_path: Path, fresh: dict[str, dict[str, object]]) -> None:
    for path in compiler.ARTIFACTS_DIR.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    assert compiler.stale_artifacts(tmp_path) == []
    tampered = json.loads((tmp_path / "Staking.json").read_text())
    tampered["bytecode"] = tampered["bytecode"][:-2] + "00"
    (tmp_path / "Staking.json").write_text(compiler.render(tampered))
    (tmp_path / "FlowToken.json").unlink()
    assert compiler.stale_artifacts(tmp_path) == ["FlowToken", "Staking"]


def test_artifacts_record_provenance(fresh: dict[str, dict[str, object]]) -> None:
    for name in compiler.CONTRACTS:
        artifact = load_artifact(name)
        assert artifact.compiler_version.startswith(compiler.SOLC_VERSION)
        assert artifact.source_hash == fresh[name]["sourceHash"]
        assert artifact.source_hash.startswith("sha256:") and len(artifact.source_hash) == 71
        assert artifact.bytecode.startswith("0x") and len(artifact.bytecode) > 1000
    sources = fresh["BandwidthMarket"]["sources"]
    assert "contracts/BandwidthMarket.sol" in sources
    assert any(s.startswith("node_modules/@openzeppelin/contracts/") for s in sources)  # type: ignore[union-attr]


def test_source_hash_changes_with_any_source_byte() -> None:
    names = ["contracts/libraries/Pricing.sol"]
    assert compiler.source_hash(names) == compiler.source_hash(list(names))
    assert compiler.source_hash(names) != compiler.source_hash([*names, "contracts/Staking.sol"])


def test_missing_artifact_is_a_clear_error(tmp_path: Path) -> None:
    from flownet.errors import CompileError

    with pytest.raises(CompileError, match="no artifact for contract 'Nope'"):
        load_artifact("Nope", tmp_path)
