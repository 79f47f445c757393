"""The blob store interface, the embedded local store, and the choice between it and a Kubo node.

Every store returns from ``get`` only bytes that hash to the CID asked for, whatever the backend, so
a corrupted disk or a lying node is an error rather than wrong data.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol, runtime_checkable

from flownet.blobs.cid import MAX_BLOB_SIZE, check_size, cid_for, parse_cid, verify_blob
from flownet.config import Settings
from flownet.errors import BlobError

__all__ = ["BlobStore", "LocalStore", "open_store"]


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed storage of blobs of at most 1 MiB, named by their CIDv1 (raw, sha2-256)."""

    def put(self, data: bytes) -> str:
        """Store and pin `data`; return its CID. BlobError if it is over 1 MiB."""
        ...

    def get(self, cid: str) -> bytes:
        """The bytes of `cid`, verified to hash to it. BlobError if missing or not matching."""
        ...

    def pin(self, cid: str) -> None:
        """Keep `cid` (never garbage-collected). BlobError if the store does not have it."""
        ...

    def has(self, cid: str) -> bool:
        """Whether the store holds `cid` without fetching it from elsewhere."""
        ...


class LocalStore:
    """The embedded store: one file per blob under `directory`, no daemon needed.

    Layout::

        objects/<xy>/<cid>   the blob's bytes; <xy> is the CID's next-to-last two characters (as
                             Kubo's flatfs shards), so no directory grows past 1024 entries
        pins/<cid>           an empty marker: the blob is pinned
        tmp/                 blobs being written

    A blob is written to ``tmp/``, flushed and fsynced, then renamed onto its final name, so a crash
    never leaves a partial blob under a valid name (at worst a stray file in ``tmp/``, safe to delete).

    Pins: this store deletes nothing by itself, so a pin is a durable record of intent: the blob must
    be kept, and may be published to a network store later. ``put`` pins what it stores (like Kubo's
    ``add`` with ``pin=true``); ``pin`` marks a blob that is already here and fails for one that is not.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.directory)!r})"

    def path_of(self, cid: str) -> Path:
        parse_cid(cid)  # only canonical base32 reaches the file system
        return self.directory / "objects" / cid[-3:-1] / cid

    def _pin_path(self, cid: str) -> Path:
        parse_cid(cid)
        return self.directory / "pins" / cid

    def put(self, data: bytes) -> str:
        check_size(len(data))
        cid = cid_for(data)
        path = self.path_of(cid)
        if not self._intact(cid, path):
            self._write_atomically(path, data)
        self._mark_pinned(cid)
        return cid

    def get(self, cid: str) -> bytes:
        path = self.path_of(cid)
        try:
            with path.open("rb") as f:
                data = f.read(MAX_BLOB_SIZE + 1)
        except FileNotFoundError:
            raise BlobError(f"blob {cid} is not in the local store {self.directory}") from None
        except OSError as exc:
            raise BlobError(f"cannot read blob {cid} from {path}: {exc}") from None
        return verify_blob(cid, data)

    def has(self, cid: str) -> bool:
        return self.path_of(cid).is_file()

    def pin(self, cid: str) -> None:
        if not self.has(cid):
            raise BlobError(f"cannot pin {cid}: it is not in the local store {self.directory} (put it first)")
        self._mark_pinned(cid)

    def is_pinned(self, cid: str) -> bool:
        return self._pin_path(cid).is_file()

    def _intact(self, cid: str, path: Path) -> bool:
        """Whether `path` already holds exactly the blob `cid` (a damaged copy is rewritten)."""
        try:
            verify_blob(cid, path.read_bytes())
        except (OSError, BlobError):
            return False
        return True

    def _mark_pinned(self, cid: str) -> None:
        marker = self._pin_path(cid)
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch(exist_ok=True)
        except OSError as exc:
            raise BlobError(f"cannot pin {cid} in {marker.parent}: {exc}") from None

    def _write_atomically(self, path: Path, data: bytes) -> None:
        tmp_dir = self.directory / "tmp"
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix=f"{path.name}.", suffix=".part")
        except OSError as exc:
            raise BlobError(f"cannot write to the local store {self.directory}: {exc}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_name, path)
            _fsync_dir(path.parent)
        except BaseException as exc:
            Path(tmp_name).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise BlobError(f"cannot write blob {path.name} to {path}: {exc}") from None
            raise


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_store(settings: Settings) -> BlobStore:
    """A KuboStore on `settings.ipfs_api` when it is set, else the LocalStore in `settings.blobs_dir`."""
    if settings.ipfs_api:
        from flownet.blobs.kubo import KuboStore

        return KuboStore(settings.ipfs_api)
    return LocalStore(settings.blobs_dir)
