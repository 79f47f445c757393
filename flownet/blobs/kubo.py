"""A thin client of the Kubo HTTP RPC API (``/api/v0``, every call a POST) as a BlobStore.

Works with Kubo and with js-ipfs, which serves the same API. The node is never trusted: ``put``
checks that the CID the node answers is the one FlowNet computes, and ``get`` checks that the bytes
hash to the CID asked for.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from flownet.blobs.cid import MAX_BLOB_SIZE, check_size, cid_for, parse_cid, verify_blob
from flownet.core import safejson
from flownet.errors import BlobError, ConfigError

__all__ = ["ADD_PARAMS", "KuboStore"]

# One raw leaf of at most 1 MiB, CIDv1, answered in base32: the CID is then cid_for(data).
ADD_PARAMS: dict[str, str] = {
    "cid-version": "1",
    "raw-leaves": "true",
    "chunker": f"size-{MAX_BLOB_SIZE}",
    "pin": "true",
    "cid-base": "base32",
}
# How a node says that a block is not here: Kubo with offline=true, js-ipfs when `timeout` runs out.
NOT_HERE = ("not found", "could not find", "timed out", "deadline exceeded", "timeout")
ERROR_BODY_LIMIT = 64 * 1024


class KuboStore:
    """Blobs on an IPFS node reached at `api_url` (e.g. ``http://127.0.0.1:5001``).

    `transport` replaces the network (``httpx.MockTransport`` in tests). `timeout` bounds every call
    in seconds (connecting: at most 5 s); `has_timeout` is how long ``has`` lets the node look.
    """

    def __init__(
        self,
        api_url: str,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        has_timeout: float = 2.0,
    ) -> None:
        if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
            raise ConfigError(f"ipfs_api must be an http:// or https:// URL of a Kubo RPC API (not {api_url!r})")
        url = api_url.rstrip("/")
        if url.endswith("/api/v0"):
            url = url[: -len("/api/v0")]
        self.api_url = url
        self.timeout = timeout
        self.has_timeout = has_timeout
        self._client = httpx.Client(
            base_url=f"{url}/api/v0/",
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"User-Agent": "flownet"},
        )

    def __repr__(self) -> str:
        return f"KuboStore({self.api_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KuboStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- BlobStore ------------------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        check_size(len(data))
        cid = cid_for(data)
        body = self._call("add", ADD_PARAMS, files={"file": ("blob", data, "application/octet-stream")})
        answered = None
        for line in body.decode("utf-8", errors="replace").splitlines():
            entry = _json_object(line)
            if entry and isinstance(entry.get("Hash"), str):
                answered = entry["Hash"]
        if answered is None:
            raise BlobError(f"the IPFS node at {self.api_url} answered add without a CID: {_excerpt(body)!r}")
        if answered != cid:
            raise BlobError(
                f"the IPFS node at {self.api_url} stored the blob as {answered}, but its CID is {cid} "
                "(the node must honour cid-version=1, raw-leaves, a 1 MiB chunker, sha2-256 and base32)"
            )
        return cid

    def get(self, cid: str) -> bytes:
        parse_cid(cid)
        data = self._call("cat", {"arg": cid}, limit=MAX_BLOB_SIZE, what=cid)
        return verify_blob(cid, data)

    def pin(self, cid: str) -> None:
        parse_cid(cid)
        body = self._call("pin/add", {"arg": cid, "cid-base": "base32"}, what=cid)
        entry = _json_object(body.decode("utf-8", errors="replace"))
        pins = entry.get("Pins") if entry else None
        if not isinstance(pins, list) or cid not in pins:
            raise BlobError(f"the IPFS node at {self.api_url} did not confirm pinning {cid}: {_excerpt(body)!r}")

    def has(self, cid: str) -> bool:
        parse_cid(cid)
        params = {"arg": cid, "offline": "true", "timeout": f"{self.has_timeout:g}s"}
        try:
            self._call("block/stat", params, what=cid)
        except _NodeRefused as exc:
            if any(phrase in exc.message.lower() for phrase in NOT_HERE):
                return False
            raise
        return True

    # --- HTTP -----------------------------------------------------------------------------------------

    def _call(
        self,
        endpoint: str,
        params: dict[str, str],
        *,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        limit: int = 16 * MAX_BLOB_SIZE,
        what: str | None = None,
    ) -> bytes:
        """POST /api/v0/`endpoint`; the body (at most `limit` bytes) or BlobError quoting the node."""
        about = f" for {what}" if what else ""
        try:
            with self._client.stream("POST", endpoint, params=params, files=files) as response:
                if response.status_code >= 400:
                    body = _read(response, ERROR_BODY_LIMIT, truncate=True)
                    raise _NodeRefused(self.api_url, endpoint, about, response.status_code, _message(body))
                body = _read(response, limit)
        except _TooLarge:
            raise BlobError(
                f"the IPFS node at {self.api_url} answered {endpoint}{about} with more than {limit:,} bytes"
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise BlobError(
                f"cannot reach the IPFS node at {self.api_url} ({exc}); is it running? "
                "(without ipfs_api / FLOWNET_IPFS_API / --ipfs-api the local store is used)"
            ) from None
        except httpx.TimeoutException:
            raise BlobError(
                f"the IPFS node at {self.api_url} did not answer {endpoint}{about} within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise BlobError(f"talking to the IPFS node at {self.api_url} ({endpoint}{about}) failed: {exc}") from None
        return body


class _NodeRefused(BlobError):
    """The node answered with an HTTP error; `message` is its own text."""

    def __init__(self, url: str, endpoint: str, about: str, status: int, message: str) -> None:
        self.message = message
        super().__init__(f"the IPFS node at {url} refused {endpoint}{about}: HTTP {status}: {message!r}")


class _TooLarge(Exception):
    pass


def _read(response: httpx.Response, limit: int, truncate: bool = False) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            if truncate:
                break
            raise _TooLarge
    return b"".join(chunks)[:limit]


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = safejson.loads(text, what="the IPFS node's answer", max_bytes=1 << 20)
    except ValueError:  # not JSON, too large or too deep (InputRejected is a ValueError)
        return None
    return value if isinstance(value, dict) else None


def _message(body: bytes) -> str:
    """Kubo's and js-ipfs's {"Message": ...}, else the start of the body."""
    entry = _json_object(body.decode("utf-8", errors="replace"))
    if entry and isinstance(entry.get("Message"), str):
        return str(entry["Message"])
    return _excerpt(body)


def _excerpt(body: bytes, size: int = 300) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text if len(text) <= size else text[:size] + "..."
