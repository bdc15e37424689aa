"""The aiohttp peer client against a real socket: a pooled connection that the server drops
as the next request arrives is retried once for idempotent calls and never for others;
an unreachable or silent peer is a 503; the service token goes along."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.http import AiohttpServiceClient, ServiceClient
from tests.support import tokens


@dataclass
class OneRequestPerConnection:
    """An HTTP/1.1 server that answers the first request on each connection (keep-alive
    promised) and drops the connection when a second request arrives on it: what a server
    closing an idle connection looks like to a client that reuses it at that moment."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0
    silent: bool = False
    body: bytes = b'{"ok":true}'

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = False
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                if answered:
                    self.dropped += 1
                    return  # drop it without a byte of answer
                request_line, *header_lines = head.decode().split("\r\n")
                headers = dict(line.split(": ", 1) for line in header_lines if line)
                await reader.readexactly(int(headers.get("Content-Length", "0")))
                self.requests.append((request_line, headers.get("Authorization", "")))
                if self.silent:
                    await asyncio.Event().wait()  # never answers
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n%s"
                    % (len(self.body), self.body)
                )
                await writer.drain()
                answered = True
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[OneRequestPerConnection, int]]:
    behaviour = OneRequestPerConnection()
    listening = await asyncio.start_server(behaviour.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]  # chosen by the kernel, never guessed
    async with listening:
        yield behaviour, port
        listening.close()


@pytest.fixture
async def client(
    server: tuple[OneRequestPerConnection, int],
) -> AsyncIterator[ServiceClient]:
    _, port = server
    peer = AiohttpServiceClient(
        "inventory", f"http://127.0.0.1:{port}", tokens, "orders", timeout=5.0
    )
    yield peer
    await peer.aclose()


async def test_an_idempotent_post_is_retried_once_on_a_dropped_connection(
    server: tuple[OneRequestPerConnection, int], client: ServiceClient
) -> None:
    behaviour, _ = server
    first = await client.request("POST", "/internal/reservations", json={"order_id": "o1"})
    assert first.status_code == 200
    again = await client.request(
        "POST", "/internal/reservations", json={"order_id": "o1"}, idempotent=True
    )
    assert (again.status_code, again.content) == (200, b'{"ok":true}')
    assert behaviour.dropped == 1  # the pooled connection was tried, then a new one
    assert len(behaviour.requests) == 2


async def test_a_post_not_marked_idempotent_is_not_retried(
    server: tuple[OneRequestPerConnection, int], client: ServiceClient
) -> None:
    behaviour, _ = server
    await client.request("POST", "/internal/things", json={})
    with pytest.raises(ServiceUnavailable):
        await client.request("POST", "/internal/things", json={})
    assert behaviour.dropped == 1
    assert len(behaviour.requests) == 1  # it may have been applied: never sent twice


async def test_a_get_is_retried_on_a_dropped_connection(
    server: tuple[OneRequestPerConnection, int], client: ServiceClient
) -> None:
    behaviour, _ = server
    await client.ping()
    await client.ping()
    assert behaviour.dropped == 1
    assert [line for line, _ in behaviour.requests] == ["GET /health HTTP/1.1"] * 2


async def test_the_service_token_goes_along(
    server: tuple[OneRequestPerConnection, int], client: ServiceClient
) -> None:
    behaviour, _ = server
    await client.request("GET", "/x")
    scheme, _, token = behaviour.requests[0][1].partition(" ")
    assert scheme == "Bearer"
    assert tokens.verify_service(token) == "orders"


async def test_a_silent_peer_is_a_503(
    server: tuple[OneRequestPerConnection, int], client: ServiceClient
) -> None:
    behaviour, _ = server
    behaviour.silent = True
    with pytest.raises(ServiceUnavailable):
        await client.request("GET", "/x", time_limit=0.05)


async def test_a_feed_read_waits_at_the_peer_with_a_longer_time_limit(
    server: tuple[OneRequestPerConnection, int], client: ServiceClient
) -> None:
    behaviour, _ = server
    behaviour.body = b'{"events":[],"last_seq":7}'
    feed = await client.read_events(7, 100, wait=20)
    assert (feed.events, feed.last_seq) == ([], 7)
    assert behaviour.requests[0][0] == "GET /internal/events?after=7&limit=100&wait=20 HTTP/1.1"
