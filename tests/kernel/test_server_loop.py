"""The event loop the services run on accepts every waiting connection at once.

With libuv 1.45 and later (uvloop) a listening socket yields one connection per loop
iteration, so on a saturated server a new client waits behind many rounds of the clients
already connected. The test counts loop iterations, not time: connections that the kernel
has already completed are waiting when the loop starts, and a loop that accepts them all
at once makes each of them in a handful of iterations, one at a time takes one per
connection.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from retail.cli import EVENT_LOOP, LISTEN_BACKLOG

WAITING = 32


async def _iterations_until_all_connected(count: int) -> int:
    loop = asyncio.get_running_loop()
    connected = 0

    class Counting(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            nonlocal connected
            connected += 1

    server = await loop.create_server(Counting, "127.0.0.1", 0, backlog=LISTEN_BACKLOG)
    port = server.sockets[0].getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    iterations = 0
    done: asyncio.Future[int] = loop.create_future()

    def tick() -> None:  # one call per loop iteration: call_soon from a callback runs next
        nonlocal iterations
        iterations += 1
        if connected >= count or iterations >= 100 * count:
            done.set_result(iterations)
        else:
            loop.call_soon(tick)

    try:
        loop.call_soon(tick)
        await done
    finally:
        for client in clients:
            client.close()
        server.close()
        await server.wait_closed()
    assert connected == count
    return iterations


def test_waiting_connections_are_all_accepted_within_a_few_iterations() -> None:
    config = uvicorn.Config("retail.products.main:create_app", loop=EVENT_LOOP)
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        iterations = runner.run(_iterations_until_all_connected(WAITING))
    assert iterations < WAITING // 4, f"{iterations} iterations to accept {WAITING}"
