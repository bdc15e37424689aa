"""Public reads answered from process memory for as long as the database is unchanged.

The catalogue is read far more often than it changes, and on the embedded SQLite default a
read's cost is mostly the driver's thread hops, not the query. So a service may name the
routes whose answer is the same for every caller (the catalogue's GETs), and their 200
answers are kept, keyed by path and query string, from the second time a key is asked for
until the database changes.

"Changed" is decided by the database, never by a timer: SQLite's `PRAGMA data_version`, read
on a connection of the cache's own, moves whenever any connection, in this process or in
another, commits to the file. A hit is served only when the version read for this request
equals the version read before the kept answer was computed, so no commit can have happened
since that answer's read began: an answer is never staler than a fresh read would be.
PostgreSQL and MongoDB have no such cheap counter; there the cache stays off and an HTTP
cache or CDN in front is the tool.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

VersionSource = Callable[[], int | None]


class SqliteDataVersion:
    """`PRAGMA data_version` of one SQLite file, on a connection that never writes.

    Reading it takes no lock a writer holds, so it is called on the event loop; if the file
    is busy anyway (timeout 0), the answer is None and the request bypasses the cache.
    """

    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(
            path, timeout=0, isolation_level=None, check_same_thread=False
        )

    def __call__(self) -> int | None:
        try:
            row = self._connection.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            return None
        return int(row[0])

    def close(self) -> None:
        self._connection.close()


def _personal(header: tuple[bytes, bytes]) -> bool:
    """An answer meant for its caller alone: a cookie, or a route's `Cache-Control:
    private` / `no-store` (e.g. an admin's view of the catalogue), which is never kept."""
    name, value = header
    if name.lower() == b"set-cookie":
        return True
    return name.lower() == b"cache-control" and (b"private" in value or b"no-store" in value)


@dataclass
class _Kept:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    route: Any = None  # the route that computed it, put back in the scope for /metrics


# What a kept answer costs beyond its body and headers: the key, the entry and the header
# tuples (measured with tracemalloc: about 400 bytes for a product's answer).
ENTRY_OVERHEAD_BYTES = 400
# How many keys the doorkeeper remembers before it starts afresh. It keeps their hashes
# (salted per process, so nobody can aim for a collision), not the keys: a long query
# string costs it no more than a short one.
DOORKEEPER_KEYS = 10_000


def _cost(key: tuple[str, bytes], kept: _Kept) -> int:
    headers = sum(len(name) + len(value) for name, value in kept.headers)
    return len(kept.body) + headers + len(key[0]) + len(key[1]) + ENTRY_OVERHEAD_BYTES


@dataclass
class ReadCache:
    """The kept answers of one process, dropped together when the version moves.

    `max_bytes` bounds what the entries occupy, not only their bodies. An answer is kept on
    its key's second miss (a doorkeeper, as in TinyLFU): a one-off query string (a crawler
    walking pages, an ad click's `fbclid`, a cache buster) is never kept, so it cannot push
    out the answers a storefront asks for again and again."""

    max_bytes: int
    version: int | None = None
    size: int = 0
    entries: dict[tuple[str, bytes], tuple[_Kept, int]] = field(default_factory=dict)
    missed_once: set[int] = field(default_factory=set)

    def get(self, key: tuple[str, bytes], version: int) -> _Kept | None:
        if version != self.version:
            self.entries.clear()
            self.size, self.version = 0, version
            return None
        found = self.entries.get(key)
        return None if found is None else found[0]

    def put(self, key: tuple[str, bytes], version: int, kept: _Kept) -> None:
        if version != self.version:
            return
        seen = hash(key)
        if seen not in self.missed_once:
            if len(self.missed_once) >= DOORKEEPER_KEYS:
                self.missed_once.clear()
            self.missed_once.add(seen)
            return
        cost = _cost(key, kept)
        if cost > self.max_bytes // 16:
            return
        self.missed_once.discard(seen)
        while self.entries and self.size + cost > self.max_bytes:
            oldest = next(iter(self.entries))
            self.size -= self.entries.pop(oldest)[1]
        self.entries[key] = (kept, cost)
        self.size += cost


class ReadCacheMiddleware:
    """Keeps the 200 answers to GETs under `prefixes`. The version source is looked up on
    `app.state.data_version` (set by the service's lifespan; absent or None: no caching)."""

    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...], max_bytes: int) -> None:
        self.app = app
        self.prefixes = prefixes
        self.cache = ReadCache(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        version = self._version(scope)
        if version is None:
            await self.app(scope, receive, send)
            return
        key = (scope["path"], scope["query_string"])
        kept = self.cache.get(key, version)
        if kept is not None:
            scope["route"] = kept.route
            await send({"type": "http.response.start", "status": 200, "headers": kept.headers})
            await send({"type": "http.response.body", "body": kept.body})
            return
        await self._serve_and_keep(scope, receive, send, key, version)

    def _version(self, scope: Scope) -> int | None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        if not scope["path"].startswith(self.prefixes):
            return None
        source: VersionSource | None = getattr(scope["app"].state, "data_version", None)
        return source() if source is not None else None

    async def _serve_and_keep(
        self, scope: Scope, receive: Receive, send: Send, key: tuple[str, bytes], version: int
    ) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def keeping_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                headers = list(start.get("headers", []))
                keep = start.get("status") == 200 and not any(map(_personal, headers))
                if keep and not message.get("more_body", False):
                    kept = _Kept(headers, b"".join(chunks), scope.get("route"))
                    self.cache.put(key, version, kept)
            await send(message)

        await self.app(scope, receive, keeping_send)
