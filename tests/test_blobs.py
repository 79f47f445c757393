"""Blob store: CIDs against independently computed and published vectors, the local store, open_store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from flownet.blobs import MAX_BLOB_SIZE, BlobStore, LocalStore, cid_for, open_store, parse_cid, verify_blob
from flownet.config import load_settings
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
