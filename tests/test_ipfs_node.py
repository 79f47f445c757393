"""The blob store against a real IPFS node: js-ipfs from npm, offline on 127.0.0.1 (see IpfsNode).

Never skipped: if the node cannot start, the session fixture fails the tests with the node's output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from flownet.blobs import MAX_BLOB_SIZE, KuboStore, cid_for
from flownet.blobs.ipfsnode import IpfsNode
from flownet.cli import cli
from flownet.errors import BlobError

STARTUP_TIMEOUT = 60.0

SAMPLES = {
    "empty": b"",
    "small text": b"hello world\n",
    "random 300 KiB": os.urandom(300 * 1024),
    "exactly 1 MiB": os.urandom(MAX_BLOB_SIZE),
}
# CIDs published for these bytes as Kubo's `ipfs add --cid-version=1 --raw-leaves` (the node must agree)
KNOWN = {
    b"": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    b"hello world": "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
    b"hello world\n": "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
}


@pytest.fixture(scope="session")
def ipfs_node(request: pytest.FixtureRequest) -> Iterator[IpfsNode]:
    node = IpfsNode(startup_timeout=STARTUP_TIMEOUT)
    try:
        node.start()
    except Exception as exc:  # fail, never skip: CI must run these tests
        pytest.fail(f"the js-ipfs test node did not start: {exc}", pytrace=False)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\njs-ipfs test node pid {node.pid} ready on {node.api_url} in {node.startup_seconds:.2f} s"
            )
    workdir = node.workdir
    try:
        yield node
    finally:
        process = node.process
        node.stop()
        assert process is not None and process.poll() is not None, "the node is still running"
        assert workdir is not None and not workdir.exists(), "the node's repository was not removed"


@pytest.fixture
def store(ipfs_node: IpfsNode) -> Iterator[KuboStore]:
    with KuboStore(ipfs_node.api_url, timeout=30) as kubo:
        yield kubo


def rpc(node: IpfsNode, endpoint: str, **params: Any) -> httpx.Response:
    return httpx.post(f"{node.api_url}/api/v0/{endpoint}", params=params, timeout=30)


def node_add(node: IpfsNode, data: bytes, pin: bool = True) -> str:
    """The CID the node itself answers for `data` (raw-leaf parameters, no FlowNet check)."""
    params = {"cid-version": 1, "raw-leaves": "true", "chunker": "size-1048576", "cid-base": "base32"}
    response = httpx.post(
        f"{node.api_url}/api/v0/add",
        params={**params, "pin": str(pin).lower()},
        files={"file": ("blob", data, "application/octet-stream")},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["Hash"])


def is_pinned(node: IpfsNode, cid: str) -> bool:
    response = rpc(node, "pin/ls", arg=cid, **{"cid-base": "base32"})
    return response.status_code == 200 and cid in response.json().get("Keys", {})


def test_node_started_within_bounds(ipfs_node: IpfsNode) -> None:
    assert ipfs_node.startup_seconds is not None and ipfs_node.startup_seconds < STARTUP_TIMEOUT
    version = rpc(ipfs_node, "version").json()
    assert version["Version"]


@pytest.mark.parametrize("name", SAMPLES)
def test_node_cid_equals_cid_for(ipfs_node: IpfsNode, name: str) -> None:
    data = SAMPLES[name]
    assert node_add(ipfs_node, data) == cid_for(data)


@pytest.mark.parametrize(("data", "cid"), KNOWN.items())
def test_node_agrees_with_the_published_cids(ipfs_node: IpfsNode, data: bytes, cid: str) -> None:
    assert node_add(ipfs_node, data) == cid


@pytest.mark.parametrize("name", SAMPLES)
def test_kubo_store_round_trip(ipfs_node: IpfsNode, store: KuboStore, name: str) -> None:
    data = SAMPLES[name]
    cid = store.put(data)
    assert cid == cid_for(data)
    assert store.get(cid) == data
    assert store.has(cid)
    assert is_pinned(ipfs_node, cid)  # put pins
    store.pin(cid)  # pinning again is fine
    assert is_pinned(ipfs_node, cid)


def test_pin_a_blob_added_unpinned(ipfs_node: IpfsNode, store: KuboStore) -> None:
    data = os.urandom(1000)
    cid = node_add(ipfs_node, data, pin=False)
    assert cid == cid_for(data)
    assert not is_pinned(ipfs_node, cid)
    store.pin(cid)
    assert is_pinned(ipfs_node, cid)


def test_has_is_false_and_quick_for_a_missing_blob(store: KuboStore) -> None:
    began = time.monotonic()
    assert not store.has(cid_for(os.urandom(32)))
    assert time.monotonic() - began < store.has_timeout + 5


def test_the_node_chunks_past_one_mib_so_the_store_refuses(ipfs_node: IpfsNode, store: KuboStore) -> None:
    data = os.urandom(MAX_BLOB_SIZE + 1)
    assert node_add(ipfs_node, data, pin=False).startswith("bafybei")  # a dag-pb root, not cid_for(data)
    with pytest.raises(BlobError, match="over the limit of 1,048,576 bytes"):
        store.put(data)


def test_cli_against_the_node(ipfs_node: IpfsNode, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--home", str(tmp_path / "home"), "blob"]
    api = ["--ipfs-api", ipfs_node.api_url]
    data = os.urandom(5000)
    put = runner.invoke(cli, [*base, "put", *api, "-"], input=data)
    assert put.exit_code == 0, put.output
    cid = put.stdout.strip()
    assert cid == cid_for(data)
    assert not (tmp_path / "home" / "blobs").exists()  # went to the node, not the local store
    got = runner.invoke(cli, [*base, "get", *api, cid])
    assert got.exit_code == 0 and got.stdout_bytes == data
    pinned = runner.invoke(cli, [*base, "pin", *api, cid])
    assert pinned.exit_code == 0 and pinned.stdout == f"pinned {cid}\n"


class ScriptedNode(IpfsNode):
    """An IpfsNode whose daemon is a node one-liner, to exercise the failure paths."""

    def __init__(self, script: str, startup_timeout: float) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.script = script

    def command(self, config_file: Path) -> list[str]:
        return [*super().command(config_file)[:1], "-e", self.script]


def test_a_node_that_dies_reports_its_output() -> None:
    node = ScriptedNode("console.error('repo lock held'); process.exit(3)", startup_timeout=30)
    with pytest.raises(
        BlobError, match=r"(?s)exited with code 3 before answering on http://127\.0\.0\.1:\d+.*repo lock held"
    ):
        node.start()
    assert node.process is None and node.workdir is None


def test_a_node_that_never_answers_is_stopped_after_the_timeout() -> None:
    node = ScriptedNode("console.log('starting...'); setTimeout(() => {}, 120000)", startup_timeout=1.5)
    began = time.monotonic()
    with pytest.raises(BlobError, match=r"(?s)did not answer on .* within 1\.5 s.*starting\.\.\."):
        node.start()
    assert time.monotonic() - began < 15
    assert node.process is None and node.workdir is None
