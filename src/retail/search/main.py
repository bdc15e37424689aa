"""Composition root of the search service (port 8006)."""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

import httpx
from anyio import to_thread
from fastapi import FastAPI

from retail.kernel.app import create_service_app
from retail.kernel.events import Event, FeedFollower, following
from retail.kernel.http import ServiceClient, peer_client
from retail.kernel.security import TokenCodec
from retail.search import service
from retail.search.config import SearchSettings
from retail.search.engine import ProductIndex
from retail.search.ports import Index
from retail.search.router import internal, router

Applier = Callable[[Index, Sequence[Event]], Awaitable[None]]
APPLIERS: dict[str, Applier] = {
    "categories": service.apply_category_events,
    "products": service.apply_product_events,
    "inventory": service.apply_inventory_events,
}


def build_followers(
    settings: SearchSettings, index: Index, clients: Mapping[str, ServiceClient]
) -> dict[str, FeedFollower]:
    return {
        feed: FeedFollower(
            feed,
            clients[feed].read_events,
            partial(service.load_cursor, index, feed),
            partial(APPLIERS[feed], index),
            interval_seconds=settings.feed_poll_seconds,
        )
        for feed in service.FEEDS
    }


@asynccontextmanager
async def opened(
    settings: SearchSettings,
    tokens: TokenCodec,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> AsyncIterator[tuple[ProductIndex, dict[str, FeedFollower]]]:
    """The index and its followers, closed again on exit."""
    index = await to_thread.run_sync(ProductIndex, settings.index_dir())
    async with AsyncExitStack() as stack:
        stack.push_async_callback(to_thread.run_sync, index.close)
        clients = {feed: peer_client(settings, feed, tokens, transports) for feed in service.FEEDS}
        for client in clients.values():
            stack.push_async_callback(client.aclose)
        yield index, build_followers(settings, index, clients)


def create_app(
    settings: SearchSettings | None = None,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or SearchSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with opened(settings, app.state.tokens, transports) as (index, followers):
            app.state.index = index
            app.state.followers = followers

            async def index_answers() -> None:
                await to_thread.run_sync(index.count)

            app.state.readiness["index"] = index_answers
            running = list(followers.values()) if settings.follow_feeds else []
            async with following(*running):
                yield

    return create_service_app(
        settings,
        title="Retail search service",
        description="Ranked, typo-tolerant product search built from the catalogue's feeds.",
        routers=[router, internal],
        lifespan=lifespan,
    )


async def reindex_offline(settings: SearchSettings) -> int:
    """`retail reindex` while the service is stopped: rebuild the index from the feeds."""
    tokens = TokenCodec.from_settings(settings)
    async with opened(settings, tokens) as (index, followers):
        return await service.rebuild(index, list(followers.values()))
