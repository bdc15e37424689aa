"""The client one service uses to call another: service token attached, failures as 503."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from retail.kernel.errors import AppError, ServiceUnavailable
from retail.kernel.events import FEED_PATH, EventFeed
from retail.kernel.security import TokenCodec
from retail.kernel.settings import Settings


class PeerError(AppError):
    """A peer answered with an error we did not expect; surfaced as 502."""

    status_code = 502
    error_code = "BAD_GATEWAY"
    message = "A service this request needs answered with an error"


class ServiceClient:
    def __init__(
        self,
        peer: str,
        base_url: str,
        tokens: TokenCodec,
        caller: str,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.peer = peer
        self._tokens = tokens
        self._caller = caller
        self._token = ""
        self._token_expires = 0.0
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    def _service_token(self) -> str:
        now = time.time()
        if now > self._token_expires:
            self._token = self._tokens.issue_service(self._caller)
            self._token_expires = now + self._tokens.service_ttl_seconds / 2
        return self._token

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        merged = {"Authorization": f"Bearer {self._service_token()}", **(headers or {})}
        try:
            return await self._http.request(method, path, json=json, params=params, headers=merged)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"The {self.peer} service is unavailable") from exc

    async def read_events(self, after: int, limit: int) -> EventFeed:
        response = await self.request("GET", FEED_PATH, params={"after": after, "limit": limit})
        expect_ok(response, self.peer)
        return EventFeed.model_validate_json(response.content)

    async def ping(self) -> None:
        expect_ok(await self.request("GET", "/health"), self.peer)

    async def aclose(self) -> None:
        await self._http.aclose()


def expect_ok(response: httpx.Response, peer: str) -> None:
    if response.status_code >= 500:
        raise ServiceUnavailable(f"The {peer} service is unavailable")
    if response.status_code >= 400:
        raise PeerError(f"The {peer} service answered {response.status_code}")


def peer_client(
    settings: Settings,
    peer: str,
    tokens: TokenCodec,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> ServiceClient:
    """A client for `peer` at its configured URL. Tests pass an ASGI transport per peer to
    wire services together in one process."""
    return ServiceClient(
        peer,
        settings.url_of(peer),
        tokens,
        settings.service_name,
        timeout=settings.http_timeout_seconds,
        transport=(transports or {}).get(peer),
    )
