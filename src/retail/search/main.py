"""Composition root of the search service (port 8006)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from anyio import to_thread
from fastapi import FastAPI

from retail.kernel.app import create_service_app
from retail.kernel.events import Event
from retail.kernel.following import FeedFollower
from retail.kernel.http import ServiceClient, expect_ok, peer_client
from retail.kernel.security import TokenCodec
from retail.search import service
from retail.search.config import SearchSettings
from retail.search.engine import IndexInUse, ProductIndex
from retail.search.ports import Index
from retail.search.router import internal, router
from retail.search.schemas import ReindexResult

logger = logging.getLogger("retail.search")

Applier = Callable[[Index, Sequence[Event], service.Guard], Awaitable[None]]
APPLIERS: dict[str, Applier] = {
    "categories": service.apply_category_events,
    "products": service.apply_product_events,
    "inventory": service.apply_inventory_events,
}
# Instances sharing a DATA_DIR (`--workers N`) take the next free directory each.
MAX_INSTANCES = 32
# A rebuild of a large catalogue takes far longer than an ordinary call between services.
REINDEX_TIMEOUT_SECONDS = 3600.0


def index_dirs(settings: SearchSettings) -> list[Path]:
    """Where instances keep their indexes: the configured directory, then `<name>-2`, ..."""
    first = settings.index_dir()
    return [first] + [first.with_name(f"{first.name}-{n}") for n in range(2, MAX_INSTANCES + 1)]


def claim_index(settings: SearchSettings) -> ProductIndex:
    """The first index directory no other instance holds (its lock says so)."""
    for directory in index_dirs(settings):
        try:
            index = ProductIndex(directory)
        except IndexInUse:
            continue
        if directory != settings.index_dir():
            logger.info(
                "%s is held by another instance; this one uses %s", directory.parent, directory
            )
        return index
    raise IndexInUse(
        f"all {MAX_INSTANCES} index directories beside {index_dirs(settings)[0]} are in use"
    )


@dataclass(frozen=True)
class IndexTarget:
    """A feed's `FeedTarget`: its cursor is kept in the index and committed with the page
    (service.py); an apply begun before a rebuild is dropped (`Following.guard`)."""

    feed: str
    index: Index
    following: service.Following

    async def load_cursor(self) -> int:
        return await service.load_cursor(self.index, self.feed)

    async def apply(self, events: Sequence[Event]) -> None:
        await APPLIERS[self.feed](self.index, events, self.following.guard())


def build_following(
    settings: SearchSettings, index: Index, clients: Mapping[str, ServiceClient]
) -> service.Following:
    following = service.Following()
    following.followers = [
        FeedFollower(
            feed,
            clients[feed],
            IndexTarget(feed, index, following),
            min_interval=settings.feed_poll_seconds,
        )
        for feed in service.FEEDS
    ]
    return following


@asynccontextmanager
async def opened(
    settings: SearchSettings,
    tokens: TokenCodec,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    *,
    directory: Path | None = None,
) -> AsyncIterator[tuple[ProductIndex, service.Following]]:
    """The index (in `directory`, or the first free one) and its followers, closed on exit."""
    if directory is None:
        index = await to_thread.run_sync(claim_index, settings)
    else:
        index = await to_thread.run_sync(ProductIndex, directory)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(to_thread.run_sync, index.close)
        clients = {feed: peer_client(settings, feed, tokens, transports) for feed in service.FEEDS}
        for client in clients.values():
            stack.push_async_callback(client.aclose)
        following = build_following(settings, index, clients)
        stack.push_async_callback(following.stop)  # before the clients and index close
        yield index, following


def create_app(
    settings: SearchSettings | None = None,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or SearchSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with opened(settings, app.state.tokens, transports) as (index, following):
            app.state.index = index
            app.state.following = following
            app.state.followers = {f.name: f for f in following.followers}

            async def index_answers() -> None:
                await service.count(index)

            app.state.readiness["index"] = index_answers
            if settings.follow_feeds:
                following.start()
            yield

    return create_service_app(
        settings,
        title="Retail search service",
        description="Ranked, typo-tolerant product search built from the catalogue's feeds.",
        routers=[router, internal],
        lifespan=lifespan,
    )


@dataclass(frozen=True, slots=True)
class Reindexed:
    """What `retail reindex` did: which index it rebuilt (a directory, or the running
    service that rebuilt its own), and what went in."""

    where: str
    result: ReindexResult


async def reindex(
    settings: SearchSettings,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> list[Reindexed]:
    """`retail reindex`: rebuild from the feeds. A stopped service's indexes are rebuilt
    here; a running instance holds its directory, so it is asked to rebuild its own."""
    tokens = TokenCodec.from_settings(settings)
    try:
        return await reindex_offline(settings, tokens, transports)
    except IndexInUse:
        return [await reindex_online(settings, tokens, transports)]


async def reindex_offline(
    settings: SearchSettings,
    tokens: TokenCodec,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> list[Reindexed]:
    """Every index directory there is (the first one at least); IndexInUse if one is held."""
    directories = [d for d in index_dirs(settings) if d.exists()] or index_dirs(settings)[:1]
    done: list[Reindexed] = []
    for directory in directories:
        async with opened(settings, tokens, transports, directory=directory) as (index, following):
            applied = await following.rebuild(index)
            result = ReindexResult(
                events_applied=applied, products_indexed=await service.count(index)
            )
        done.append(Reindexed(str(directory), result))
    return done


async def reindex_online(
    settings: SearchSettings,
    tokens: TokenCodec,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> Reindexed:
    client = peer_client(settings, "search", tokens, transports, timeout=REINDEX_TIMEOUT_SECONDS)
    try:
        response = await client.request("POST", "/internal/reindex")
    finally:
        await client.aclose()
    expect_ok(response, "search")
    return Reindexed(settings.url_of("search"), ReindexResult.model_validate_json(response.content))
