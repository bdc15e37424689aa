"""Public reads answered from process memory for as long as the database is unchanged.

The catalogue is read far more often than it changes, and on the embedded SQLite default a
read's cost is mostly the driver's thread hops, not the query. So a service may name the
routes whose answer is the same for every caller (the catalogue's GETs), and their 200
answers are kept, keyed by path and query string, from the second time a key is asked for
until the database changes.

"Changed" is decided by the database, never by a timer: SQLite's `PRAGMA data_version`
moves on a connection whenever another connection, in this process or in another, commits
to the file. A hit is served only when no commit that could change the kept answer has
happened since that answer's read began: an answer is never staler than a fresh read
would be. (`SqliteDataVersion`, on a connection of its own, sees every commit; a service's
cache uses the finer `CacheVersion` below.)
PostgreSQL and MongoDB have no such cheap counter; there the cache stays off and an HTTP
cache or CDN in front is the tool.

A service whose own writes are frequent and narrow (products applies every order's stock
change) would see every kept answer dropped many times a second. So the version a service's
lifespan gives the cache (`CacheVersion`) is read on the process's own writer connection,
where `data_version` moves only on other connections' commits, and the process's own
commits are recorded in `OwnChanges`: each with the keys its unit of work promised it
changes (`changes_only`: stock for these products), or with none (anything may have
changed). A kept answer is tagged with the value of the path parameter the service names
(products: `product_id`); it stays valid until another connection commits, or an own commit
names its tag or names nothing. An untagged answer (a list page) is dropped by every own
commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

VersionSource = Callable[[], int | None]


# Keys remembered one by one before the next own commit counts as changing everything: a
# bulk import's stock names thousands of products, each a dict entry until then.
MAX_CHANGED_KEYS = 50_000


class OwnChanges:
    """This process's own commits, numbered, with what each may have changed: the keys its
    unit of work named, or everything. Only the loop touches it, between awaits."""

    __slots__ = ("any_at", "everything_at", "key_at", "seq")

    def __init__(self) -> None:
        self.seq = 0  # the number of the last own commit
        self.any_at = 0
        self.everything_at = 0
        self.key_at: dict[str, int] = {}

    def committed(self, keys: Iterable[str] | None) -> None:
        self.seq += 1
        self.any_at = self.seq
        named = None if keys is None else set(keys)
        if named is None or len(self.key_at) + len(named) > MAX_CHANGED_KEYS:
            self.everything_at = self.seq
            self.key_at.clear()  # every key's number is now below everything_at
            return
        for key in named:
            self.key_at[key] = self.seq

    def unchanged_since(self, seq: int, tag: str | None) -> bool:
        """Whether no own commit after commit number `seq` can have changed an answer
        tagged `tag` (None: an answer any commit may change)."""
        if tag is None:
            return self.any_at <= seq
        return self.everything_at <= seq and self.key_at.get(tag, 0) <= seq


class CacheVersion(Protocol):
    """What the read cache checks: a version that moves on other connections' commits
    (None: the file is busy, bypass the cache) and this process's own commits."""

    changes: OwnChanges

    def __call__(self) -> Hashable | None: ...


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
    tag: str | None = None  # what own commits must name to drop it (None: any commit)
    since: int = 0  # the number of the last own commit when its read began


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
    """The kept answers of one process, dropped together when the version moves, and one
    by one when an own commit names their tag (`OwnChanges`).

    `max_bytes` bounds what the entries occupy, not only their bodies. An answer is kept on
    its key's second miss (a doorkeeper, as in TinyLFU): a one-off query string (a crawler
    walking pages, an ad click's `fbclid`, a cache buster) is never kept, so it cannot push
    out the answers a storefront asks for again and again. A key whose answer an own commit
    dropped has proven itself: its next answer is kept at once."""

    max_bytes: int
    version: Hashable | None = None
    size: int = 0
    entries: dict[tuple[str, bytes], tuple[_Kept, int]] = field(default_factory=dict)
    missed_once: set[int] = field(default_factory=set)

    def get(
        self, key: tuple[str, bytes], version: Hashable, changes: OwnChanges | None = None
    ) -> _Kept | None:
        if version != self.version:
            self.entries.clear()
            self.size, self.version = 0, version
            return None
        found = self.entries.get(key)
        if found is None:
            return None
        kept = found[0]
        if changes is not None and not changes.unchanged_since(kept.since, kept.tag):
            self.size -= self.entries.pop(key)[1]
            self._remember(hash(key))
            return None
        return kept

    def put(
        self,
        key: tuple[str, bytes],
        version: Hashable,
        kept: _Kept,
        changes: OwnChanges | None = None,
    ) -> None:
        if version != self.version:
            return
        if changes is not None and not changes.unchanged_since(kept.since, kept.tag):
            return  # an own commit landed while it was read: it may show the old data
        seen = hash(key)
        if seen not in self.missed_once:
            self._remember(seen)
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

    def _remember(self, seen: int) -> None:
        if len(self.missed_once) >= DOORKEEPER_KEYS:
            self.missed_once.clear()
        self.missed_once.add(seen)


class ReadCacheMiddleware:
    """Keeps the 200 answers to GETs under `prefixes`. The version is looked up on
    `app.state.cache_version` (a `CacheVersion`, set by the kernel's lifespan), else on
    `app.state.data_version` (any callable; absent or None: no caching). `tag_param`: the
    path parameter whose value tags an answer (see the module's docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefixes: tuple[str, ...],
        max_bytes: int,
        tag_param: str | None = None,
    ) -> None:
        self.app = app
        self.prefixes = prefixes
        self.cache = ReadCache(max_bytes)
        self.tag_param = tag_param

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        source = self._source(scope)
        version = source() if source is not None else None
        if version is None:
            await self.app(scope, receive, send)
            return
        changes: OwnChanges | None = getattr(source, "changes", None)
        key = (scope["path"], scope["query_string"])
        kept = self.cache.get(key, version, changes)
        if kept is not None:
            scope["route"] = kept.route
            await send({"type": "http.response.start", "status": 200, "headers": kept.headers})
            await send({"type": "http.response.body", "body": kept.body})
            return
        # Read before the answer's own read begins: a commit after this is one it may miss.
        since = changes.seq if changes is not None else 0
        await self._serve_and_keep(scope, receive, send, key, version, changes, since)

    def _source(self, scope: Scope) -> Callable[[], Hashable | None] | None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        if not scope["path"].startswith(self.prefixes):
            return None
        state = scope["app"].state
        source: Callable[[], Hashable | None] | None = getattr(state, "cache_version", None)
        return source if source is not None else getattr(state, "data_version", None)

    def _tag(self, scope: Scope) -> str | None:
        if self.tag_param is None:
            return None
        value = scope.get("path_params", {}).get(self.tag_param)
        return value if isinstance(value, str) else None

    async def _serve_and_keep(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        key: tuple[str, bytes],
        version: Hashable,
        changes: OwnChanges | None,
        since: int,
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
                    route, tag = scope.get("route"), self._tag(scope)
                    kept = _Kept(headers, b"".join(chunks), route, tag, since)
                    self.cache.put(key, version, kept, changes)
            await send(message)

        await self.app(scope, receive, keeping_send)
