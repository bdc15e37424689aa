"""The client one service uses to call another: service token attached, failures as 503.

Production calls go through aiohttp (`AiohttpServiceClient`): one session per peer for the
life of the app, its C parser, and idle connections dropped after `CLIENT_KEEPALIVE_SECONDS`,
well before the server would close them (`retail serve` keeps them 65 s), so a pooled
connection is not reused just as the server closes it. If that happens anyway (a restart,
a proxy between), the call is retried once when it is safe to: the connection failed before
any answer came, and the caller marked the call `idempotent` (reads, and writes keyed by an
id the peer deduplicates, such as a reservation). aiohttp itself retries GET, PUT and DELETE
that way, so only other methods are retried here.

Tests wire services together in one process through httpx transports (`peer_client`'s
`transports`): `HttpxServiceClient` answers with the same `PeerResponse`.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from retail.kernel.errors import AppError, ServiceUnavailable
from retail.kernel.events import FEED_PATH, EventFeed
from retail.kernel.security import TokenCodec
from retail.kernel.settings import Settings
from retail.kernel.tracing import peer_call

if TYPE_CHECKING:
    import httpx  # the test seam's; a service never imports it (see HttpxServiceClient)

logger = logging.getLogger("retail.http")

CLIENT_KEEPALIVE_SECONDS = 4.0
MAX_CONNECTIONS_PER_PEER = 100
# The methods aiohttp already retries once on a dropped pooled connection (RFC 9112 9.3.1).
_RETRIED_BY_AIOHTTP = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class PeerError(AppError):
    """A peer answered with an error we did not expect; surfaced as 502."""

    status_code = 502
    error_code = "BAD_GATEWAY"
    message = "A service this request needs answered with an error"


@dataclass(frozen=True, slots=True)
class PeerResponse:
    status_code: int
    content: bytes


class ServiceClient(ABC):
    """A peer's API as its callers see it; `request` raises `ServiceUnavailable` when the
    peer cannot be reached or does not answer in time."""

    def __init__(self, peer: str, tokens: TokenCodec, caller: str, *, timeout: float) -> None:
        self.peer = peer
        self.timeout = timeout
        self._tokens = tokens
        self._caller = caller
        self._token = ""
        self._token_expires = 0.0

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
        params: Mapping[str, str | int | float] | None = None,
        idempotent: bool = False,
        time_limit: float | None = None,
        bearer: str | None = None,
    ) -> PeerResponse:
        """`idempotent`: repeating the call changes nothing more (safe to retry once).
        `time_limit`: seconds for the whole call (default: HTTP_TIMEOUT_SECONDS).
        `bearer`: act as the signed-in user whose token this is, not as the service."""
        headers = {"Authorization": f"Bearer {bearer or self._service_token()}"}
        body = None
        if json is not None:
            body = orjson.dumps(json)
            headers["Content-Type"] = "application/json"
        with peer_call(method, self.peer, path, headers) as span:  # adds `traceparent`
            response = await self._send(
                method,
                path,
                body=body,
                params=params,
                headers=headers,
                idempotent=idempotent,
                time_limit=self.timeout if time_limit is None else time_limit,
            )
            span.answered(response.status_code)
        return response

    @abstractmethod
    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        params: Mapping[str, str | int | float] | None,
        headers: dict[str, str],
        idempotent: bool,
        time_limit: float,
    ) -> PeerResponse: ...

    @abstractmethod
    async def aclose(self) -> None: ...

    async def read_events(self, after: int, limit: int, *, wait: float = 0) -> EventFeed:
        """A page of the peer's feed; with `wait`, held by the peer until there is one."""
        params: dict[str, str | int | float] = {"after": after, "limit": limit}
        if wait:
            params["wait"] = wait
        response = await self.request(
            "GET", FEED_PATH, params=params, idempotent=True, time_limit=self.timeout + wait
        )
        expect_ok(response, self.peer)
        return EventFeed.model_validate_json(response.content)

    async def ping(self) -> None:
        expect_ok(await self.request("GET", "/health", idempotent=True), self.peer)

    def _unavailable(self) -> ServiceUnavailable:
        return ServiceUnavailable(f"The {self.peer} service is unavailable")


class AiohttpServiceClient(ServiceClient):
    def __init__(
        self, peer: str, base_url: str, tokens: TokenCodec, caller: str, *, timeout: float
    ) -> None:
        super().__init__(peer, tokens, caller, timeout=timeout)
        self._base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        # Created on first use: aiohttp wants a running event loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS_PER_PEER, keepalive_timeout=CLIENT_KEEPALIVE_SECONDS
            )
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        params: Mapping[str, str | int | float] | None,
        headers: dict[str, str],
        idempotent: bool,
        time_limit: float,
    ) -> PeerResponse:
        retry = idempotent and method not in _RETRIED_BY_AIOHTTP
        url = self._base_url + path
        try:
            while True:
                try:
                    response = await self._opened().request(
                        method,
                        url,
                        data=body,
                        params=params,
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=time_limit),
                    )
                    break
                except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
                    raise  # no connection was made: the peer is down, not a stale connection
                except (
                    aiohttp.ServerDisconnectedError,  # closed with no answer byte
                    aiohttp.ClientOSError,  # reset while the request went out
                    aiohttp.ClientConnectionResetError,  # written to a closing transport
                ) as exc:
                    if not retry:
                        raise
                    retry = False  # the connection died before any answer: once more
                    logger.info("%s %s to %s: %r; retrying once", method, path, self.peer, exc)
            async with response:
                return PeerResponse(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unavailable() from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxServiceClient(ServiceClient):
    """The test seam: a peer served by an httpx transport (an app over ASGI, a mock).

    httpx is imported here, not by the module: a service's process has no use for it, and
    in a development environment it loads its command line's rich, pygments and click
    too, 20 MiB of every service's resident memory."""

    def __init__(
        self,
        peer: str,
        base_url: str,
        tokens: TokenCodec,
        caller: str,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport,
    ) -> None:
        import httpx

        super().__init__(peer, tokens, caller, timeout=timeout)
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport)
        self._transport_error = httpx.TransportError

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None,
        params: Mapping[str, str | int | float] | None,
        headers: dict[str, str],
        idempotent: bool,
        time_limit: float,
    ) -> PeerResponse:
        try:
            response = await self._http.request(
                method, path, content=body, params=params, headers=headers, timeout=time_limit
            )
        except self._transport_error as exc:
            raise self._unavailable() from exc
        return PeerResponse(response.status_code, response.content)

    async def aclose(self) -> None:
        await self._http.aclose()


def expect_ok(response: PeerResponse, peer: str) -> None:
    if response.status_code >= 500:
        raise ServiceUnavailable(f"The {peer} service is unavailable")
    if response.status_code >= 400:
        raise PeerError(f"The {peer} service answered {response.status_code}")


Transports = Mapping[str, "httpx.AsyncBaseTransport"]


def peer_client(
    settings: Settings,
    peer: str,
    tokens: TokenCodec,
    transports: Transports | None = None,
    *,
    timeout: float | None = None,
) -> ServiceClient:
    """A client for `peer` at its configured URL, or over the transport a test passes for
    it (services wired together in one process)."""
    timeout = settings.http_timeout_seconds if timeout is None else timeout
    caller, url = settings.service_name, settings.url_of(peer)
    transport = (transports or {}).get(peer)
    if transport is not None:
        return HttpxServiceClient(peer, url, tokens, caller, timeout=timeout, transport=transport)
    return AiohttpServiceClient(peer, url, tokens, caller, timeout=timeout)
