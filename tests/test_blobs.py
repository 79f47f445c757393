"""Blob store: CIDs against independently computed and published vectors, the local store, open_store."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from flownet.blobs import (
    MAX_BLOB_SIZE,
    BlobStore,
    KuboStore,
    LocalStore,
    cid_for,
    open_store,
    parse_cid,
    verify_blob,
)
from flownet.cli import cli
from flownet.config import load_settings
from flownet.devnet import free_port
from flownet.errors import BlobError, ConfigError

RFC4648 = "abcdefghijklmnopqrstuvwxyz234567"


def spec_cid(data: bytes) -> str:
    """The CID computed from the multiformats spec with a bit-by-bit base32, independent of flownet."""
    binary = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()  # cidv1, raw, sha2-256, 32 bytes
    bits = "".join(f"{byte:08b}" for byte in binary)
    bits += "0" * (-len(bits) % 5)
    return "b" + "".join(RFC4648[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))


# CIDs published by / reproduced with Kubo (`ipfs add --cid-version=1 --raw-leaves`) for these bytes.
KNOWN = {
    b"": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    b"hello world": "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
    b"hello world\n": "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
}


@pytest.mark.parametrize("data", [b"", b"hello world", b"hello world\n", b"\x00" * 1000, os.urandom(4096)])
def test_cid_matches_the_spec(data: bytes) -> None:
    cid = cid_for(data)
    assert cid == spec_cid(data)
    assert cid.startswith("bafkrei") and len(cid) == 59
    assert parse_cid(cid) == hashlib.sha256(data).digest()


@pytest.mark.parametrize(("data", "cid"), KNOWN.items())
def test_cid_known_vectors(data: bytes, cid: str) -> None:
    assert cid_for(data) == cid
    assert spec_cid(data) == cid


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", "CIDv0"),
        ("zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA", "not a base32 CIDv1"),
        ("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "dag-pb"),
        ("bafkreihdwdcefgh4", "not a CIDv1 with raw codec"),
        ("bafkrei", "not valid lowercase base32"),
        ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk1", "not valid lowercase base32"),
        ("BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU", "not a base32 CIDv1"),
        ("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvykv", "not canonical"),
        ("", "not a base32 CIDv1"),
    ],
)
def test_parse_cid_rejects_other_cids(text: str, fragment: str) -> None:
    with pytest.raises(BlobError, match=fragment) as info:
        parse_cid(text)
    assert repr(text) in str(info.value)


def test_verify_blob() -> None:
    cid = cid_for(b"abc")
    assert verify_blob(cid, b"abc") == b"abc"
    with pytest.raises(BlobError, match=f"blob {cid} does not match its CID.*{cid_for(b'abd')}"):
        verify_blob(cid, b"abd")


# --- LocalStore ---------------------------------------------------------------------------------------


def test_local_round_trip_pin_has(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "blobs")
    assert isinstance(store, BlobStore)
    data = b"provider metadata"
    cid = cid_for(data)
    assert not store.has(cid)
    assert store.put(data) == cid
    assert store.has(cid) and store.is_pinned(cid)
    assert store.get(cid) == data
    assert store.put(data) == cid  # idempotent
    assert store.path_of(cid) == tmp_path / "blobs" / "objects" / cid[-3:-1] / cid
    assert store.path_of(cid).read_bytes() == data
    store.pin(cid)
    assert store.is_pinned(cid)
    # a second store on the same directory sees the blob
    assert LocalStore(tmp_path / "blobs").get(cid) == data


def test_local_empty_and_exactly_one_mib(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for data in (b"", os.urandom(MAX_BLOB_SIZE)):
        assert store.get(store.put(data)) == data


def test_local_over_one_mib_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(BlobError, match=r"blob is 1,048,577 bytes, over the limit of 1,048,576 bytes \(1 MiB\)"):
        store.put(b"x" * (MAX_BLOB_SIZE + 1))
    assert not (tmp_path / "objects").exists()


def test_local_missing_blob(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    cid = cid_for(b"never stored")
    assert not store.has(cid)
    with pytest.raises(BlobError, match=f"blob {cid} is not in the local store {tmp_path}"):
        store.get(cid)
    with pytest.raises(BlobError, match=f"cannot pin {cid}: it is not in the local store"):
        store.pin(cid)
    assert not store.is_pinned(cid)


def test_local_bad_cid_never_touches_the_file_system(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for bad in ("../../etc/passwd", "bafkrei/../../x"):
        with pytest.raises(BlobError, match="not"):
            store.get(bad)
        with pytest.raises(BlobError):
            store.has(bad)


def test_local_tampered_file_is_detected_and_repaired_by_put(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    cid = store.put(b"the real bytes")
    store.path_of(cid).write_bytes(b"the fake bytes")
    with pytest.raises(BlobError, match=f"blob {cid} does not match its CID"):
        store.get(cid)
    store.path_of(cid).write_bytes(b"the real bytes" + b"\x00" * MAX_BLOB_SIZE)  # oversized on disk
    with pytest.raises(BlobError, match="does not match its CID"):
        store.get(cid)
    assert store.put(b"the real bytes") == cid  # rewrites the damaged copy
    assert store.get(cid) == b"the real bytes"


def test_local_write_goes_through_a_temp_file_and_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        assert Path(src).read_bytes() == b"atomic"  # complete and flushed before the rename
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    cid = store.put(b"atomic")
    [(src, dst)] = renames
    assert src.parent == tmp_path / "tmp" and src.name.endswith(".part")
    assert dst == store.path_of(cid)
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_local_crash_mid_write_leaves_no_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    store = LocalStore(tmp_path)

    def crash(fd: int) -> None:
        raise failure

    monkeypatch.setattr(os, "fsync", crash)
    data = b"half written"
    with pytest.raises(BlobError if isinstance(failure, OSError) else KeyboardInterrupt) as info:
        store.put(data)
    if isinstance(failure, OSError):
        assert "disk full" in str(info.value)
    monkeypatch.undo()
    cid = cid_for(data)
    assert not store.has(cid)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert store.put(data) == cid and store.get(cid) == data


def test_local_store_in_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blobs"
    blocker.write_text("not a directory")
    with pytest.raises(BlobError, match=f"cannot write to the local store {blocker}"):
        LocalStore(blocker).put(b"x")


# --- open_store ---------------------------------------------------------------------------------------


def test_open_store_defaults_to_the_local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWNET_IPFS_API", raising=False)
    settings = load_settings(tmp_path)
    store = open_store(settings)
    assert isinstance(store, LocalStore) and store.directory == settings.blobs_dir
    cid = store.put(b"{}")
    assert open_store(settings).get(cid) == b"{}"


def test_open_store_rejects_a_bad_ipfs_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWNET_IPFS_API", "localhost:5001")
    with pytest.raises(ConfigError, match="'localhost:5001'"):
        open_store(load_settings(tmp_path))


def test_open_store_uses_kubo_when_ipfs_api_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWNET_IPFS_API", "http://127.0.0.1:5001/api/v0/")
    store = open_store(load_settings(tmp_path))
    assert isinstance(store, KuboStore) and isinstance(store, BlobStore)
    assert store.api_url == "http://127.0.0.1:5001"


# --- KuboStore on httpx.MockTransport ------------------------------------------------------------------

API = "http://127.0.0.1:5001"
Handler = Callable[[httpx.Request], httpx.Response]


def kubo(handler: Handler, **kwargs: float) -> tuple[KuboStore, list[httpx.Request]]:
    """A KuboStore whose node is `handler`; the list collects every request it received."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return handler(request)

    return KuboStore(API, transport=httpx.MockTransport(record), **kwargs), seen


def multipart_parts(request: httpx.Request) -> list[tuple[dict[str, str], bytes]]:
    """(headers, body) of each part of a multipart/form-data request."""
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1].encode()
    parts = []
    for chunk in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = chunk[2:].partition(b"\r\n\r\n")
        headers = dict(line.decode().split(": ", 1) for line in head.split(b"\r\n"))
        parts.append(({k.lower(): v for k, v in headers.items()}, body[:-2]))
    return parts


def error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"Message": message, "Code": 0, "Type": "error"})


def test_kubo_put_sends_the_raw_leaf_parameters_and_typed_part() -> None:
    data = b"hello world\n"

    def node(request: httpx.Request) -> httpx.Response:
        # Kubo answers NDJSON, Size as a string; js-ipfs as a number
        return httpx.Response(200, text=json.dumps({"Name": "blob", "Hash": cid_for(data), "Size": "12"}) + "\n")

    store, seen = kubo(node)
    assert store.put(data) == KNOWN[data]
    [request] = seen
    assert request.method == "POST"
    assert request.url.path == "/api/v0/add"
    assert dict(request.url.params) == {
        "cid-version": "1",
        "raw-leaves": "true",
        "chunker": "size-1048576",
        "pin": "true",
        "cid-base": "base32",
    }
    [(headers, body)] = multipart_parts(request)
    assert headers["content-type"] == "application/octet-stream"
    assert 'name="file"' in headers["content-disposition"]
    assert body == data


def test_kubo_put_refuses_a_cid_that_is_not_ours() -> None:
    data = b"hello world\n"
    base58 = "zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY"  # what js-ipfs says without cid-base
    store, _ = kubo(lambda r: httpx.Response(200, json={"Name": "blob", "Hash": base58, "Size": 12}))
    with pytest.raises(BlobError, match=f"stored the blob as {base58}, but its CID is {KNOWN[data]}"):
        store.put(data)
    store, _ = kubo(lambda r: httpx.Response(200, text="not json"))
    with pytest.raises(BlobError, match="answered add without a CID: 'not json'"):
        store.put(data)


def test_kubo_put_over_one_mib_sends_nothing() -> None:
    store, seen = kubo(lambda r: httpx.Response(500))
    with pytest.raises(BlobError, match="over the limit of 1,048,576 bytes"):
        store.put(bytes(MAX_BLOB_SIZE + 1))
    assert seen == []


def test_kubo_get_verifies_the_bytes() -> None:
    data = b"provider metadata"
    cid = cid_for(data)
    store, seen = kubo(lambda r: httpx.Response(200, content=data))
    assert store.get(cid) == data
    assert seen[0].url.path == "/api/v0/cat" and dict(seen[0].url.params) == {"arg": cid}
    assert seen[0].method == "POST"

    store, _ = kubo(lambda r: httpx.Response(200, content=b"provider metadatA"))
    with pytest.raises(BlobError, match=f"blob {cid} does not match its CID"):
        store.get(cid)

    store, _ = kubo(lambda r: httpx.Response(200, content=bytes(MAX_BLOB_SIZE + 10)))
    with pytest.raises(BlobError, match=f"answered cat for {cid} with more than 1,048,576 bytes"):
        store.get(cid)


def test_kubo_get_rejects_a_bad_cid_before_asking() -> None:
    store, seen = kubo(lambda r: httpx.Response(200))
    with pytest.raises(BlobError, match="CIDv0"):
        store.get("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")
    assert seen == []


def test_kubo_http_errors_quote_the_node() -> None:
    cid = cid_for(b"x")
    store, _ = kubo(lambda r: error(500, "Failed to cat file: request timed out"))
    with pytest.raises(BlobError) as info:
        store.get(cid)
    assert str(info.value) == (
        f"the IPFS node at {API} refused cat for {cid}: HTTP 500: 'Failed to cat file: request timed out'"
    )
    store, _ = kubo(lambda r: httpx.Response(404, text="404 page not found"))
    with pytest.raises(BlobError, match="refused add: HTTP 404: '404 page not found'"):
        store.put(b"x")


def test_kubo_pin() -> None:
    cid = cid_for(b"x")
    store, seen = kubo(lambda r: httpx.Response(200, json={"Pins": [cid]}))
    store.pin(cid)
    assert seen[0].url.path == "/api/v0/pin/add"
    assert dict(seen[0].url.params) == {"arg": cid, "cid-base": "base32"}
    store, _ = kubo(lambda r: httpx.Response(200, json={"Pins": []}))
    with pytest.raises(BlobError, match=f"did not confirm pinning {cid}"):
        store.pin(cid)


def test_kubo_has() -> None:
    cid = cid_for(b"x")
    store, seen = kubo(lambda r: httpx.Response(200, json={"Key": cid, "Size": 1}), has_timeout=1.5)
    assert store.has(cid)
    assert seen[0].url.path == "/api/v0/block/stat"
    assert dict(seen[0].url.params) == {"arg": cid, "offline": "true", "timeout": "1.5s"}
    for message in ("block was not found locally (offline): ipld: could not find x", "request timed out"):
        store, _ = kubo(lambda r, m=message: error(500, m))
        assert not store.has(cid)
    store, _ = kubo(lambda r: error(403, "API access forbidden"))
    with pytest.raises(BlobError, match="HTTP 403: 'API access forbidden'"):
        store.has(cid)


def test_kubo_unreachable_node_names_the_url() -> None:
    port = free_port()  # nothing listens there
    store = KuboStore(f"http://127.0.0.1:{port}", timeout=5)
    with pytest.raises(BlobError, match=rf"cannot reach the IPFS node at http://127\.0\.0\.1:{port} .*is it running"):
        store.put(b"x")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    store, _ = kubo(refuse)
    with pytest.raises(BlobError, match=f"cannot reach the IPFS node at {API}"):
        store.get(cid_for(b"x"))


def test_kubo_timeouts_are_bounded_and_reported() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    store, _ = kubo(slow, timeout=7)
    assert store._client.timeout.read == 7 and store._client.timeout.connect == 5
    with pytest.raises(BlobError, match=f"the IPFS node at {API} did not answer cat for .* within 7 s"):
        store.get(cid_for(b"x"))


@pytest.mark.parametrize("url", ["localhost:5001", "ftp://x", ""])
def test_kubo_bad_url(url: str) -> None:
    with pytest.raises(ConfigError, match=repr(url)):
        KuboStore(url)


# --- CLI ----------------------------------------------------------------------------------------------


def run(home: Path, *args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home), "blob", *args], input=input)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FLOWNET_IPFS_API", raising=False)
    return tmp_path / "home"


def test_cli_put_get_pin_cid(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello world\n")
    cid = KNOWN[b"hello world\n"]

    result = run(home, "cid", str(source))
    assert result.exit_code == 0 and result.stdout == cid + "\n"
    assert not (home / "blobs").exists()  # computing a CID stores nothing

    result = run(home, "put", str(source))
    assert result.exit_code == 0, result.output
    assert result.stdout == cid + "\n"
    assert LocalStore(home / "blobs").get(cid) == b"hello world\n"

    result = run(home, "get", cid)
    assert result.exit_code == 0 and result.stdout_bytes == b"hello world\n"

    target = tmp_path / "out.bin"
    result = run(home, "get", cid, "-o", str(target))
    assert result.exit_code == 0 and target.read_bytes() == b"hello world\n"
    assert result.stdout == ""

    result = run(home, "pin", cid)
    assert result.exit_code == 0 and result.stdout == f"pinned {cid}\n"


def test_cli_binary_through_stdin_and_stdout(home: Path) -> None:
    data = bytes(range(256)) * 100
    result = run(home, "put", "-", input=data)
    assert result.exit_code == 0, result.output
    cid = result.stdout.strip()
    assert cid == cid_for(data)
    assert run(home, "cid", "-", input=data).stdout.strip() == cid
    assert run(home, "get", cid).stdout_bytes == data


def test_cli_errors_are_one_line_with_the_blob_exit_code(home: Path, tmp_path: Path) -> None:
    missing = cid_for(b"never stored")
    result = run(home, "get", missing)
    assert result.exit_code == 8
    assert result.stderr == f"error: blob {missing} is not in the local store {home / 'blobs'}\n"

    result = run(home, "pin", missing)
    assert result.exit_code == 8 and "it is not in the local store" in result.stderr

    result = run(home, "get", "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")
    assert result.exit_code == 8 and "CIDv0" in result.stderr

    big = tmp_path / "big.bin"
    big.write_bytes(bytes(MAX_BLOB_SIZE + 1))
    for command in ("put", "cid"):
        result = run(home, command, str(big))
        assert result.exit_code == 8
        assert (
            result.stderr == f"error: {big} is 1,048,577 bytes, over the limit of 1,048,576 bytes (1 MiB) for a blob\n"
        )

    result = run(home, "put", "-", input=bytes(MAX_BLOB_SIZE + 1))
    assert result.exit_code == 8
    assert result.stderr == "error: standard input is over the limit of 1,048,576 bytes (1 MiB) for a blob\n"

    # a tampered blob on disk
    cid = run(home, "put", "-", input=b"genuine").stdout.strip()
    LocalStore(home / "blobs").path_of(cid).write_bytes(b"forged!")
    result = run(home, "get", cid)
    assert result.exit_code == 8 and f"blob {cid} does not match its CID" in result.stderr
    assert result.stdout_bytes == b""


def test_cli_ipfs_api_errors(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    result = run(home, "put", "--ipfs-api", f"http://127.0.0.1:{port}", "-", input=b"x")
    assert result.exit_code == 8
    assert f"cannot reach the IPFS node at http://127.0.0.1:{port}" in result.stderr

    result = run(home, "get", "--ipfs-api", "127.0.0.1:5001", cid_for(b"x"))
    assert result.exit_code == 2 and "'127.0.0.1:5001'" in result.stderr

    monkeypatch.setenv("FLOWNET_IPFS_API", f"http://127.0.0.1:{port}")
    result = run(home, "pin", cid_for(b"x"))
    assert result.exit_code == 8 and f"http://127.0.0.1:{port}" in result.stderr


def test_cli_blob_commands_have_help(home: Path) -> None:
    group = cli.commands["blob"]
    assert isinstance(group, click.Group) and group.help and len(group.help) > 15
    assert sorted(group.commands) == ["cid", "get", "pin", "put"]
    for name, command in group.commands.items():
        assert command.help and len(command.help) > 15, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, (name, param.opts)
        assert run(home, name, "--help").exit_code == 0
