"""A blocking HTTP client that calls an ASGI app in-process (tests, benchmarks): no socket, no server.

    with InProcessClient(app) as client:
        client.get("/status").json()

One event loop runs in a helper thread for the client's lifetime (anyio's blocking portal), and
httpx's ASGITransport hands each request to the app on it, as uvicorn would.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.types import ASGIApp


class InProcessClient:
    def __init__(self, app: ASGIApp, base_url: str = "http://fullnode.test") -> None:
        self.app = app
        self.base_url = base_url
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._client: httpx.AsyncClient | None = None

    def __enter__(self) -> InProcessClient:
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        transport = httpx.ASGITransport(app=self.app)  # type: ignore[arg-type]
        self._client = httpx.AsyncClient(transport=transport, base_url=self.base_url)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._portal is not None and self._portal_cm is not None and self._client is not None
        self._portal.call(self._client.aclose)
        self._portal_cm.__exit__(kind, exc, tb)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        assert self._portal is not None and self._client is not None, "use InProcessClient as a context manager"
        client = self._client

        async def send() -> httpx.Response:
            return await client.request(method, url, **kwargs)

        return self._portal.call(send)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)
