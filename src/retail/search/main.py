"""Composition root of the search service (port 8006)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path

from anyio import to_thread
from fastapi import FastAPI

from retail.kernel.app import create_service_app
from retail.kernel.following import FeedFollower
from retail.kernel.http import ServiceClient, Transports
from retail.kernel.security import TokenCodec
from retail.search import service
from retail.search.adapters.index import claim_index, existing_index_dirs
from retail.search.clients import feed_clients, running_search
from retail.search.config import SearchSettings
from retail.search.engine import ProductIndex
from retail.search.ports import Index
from retail.search.router import internal, router


def build_following(
    settings: SearchSettings, index: Index, clients: Mapping[str, ServiceClient]
) -> service.Following:
    following = service.Following()
    following.followers = [
        FeedFollower(
            feed,
            client,
            service.IndexTarget(feed, index, following),
            min_interval=settings.feed_poll_seconds,
        )
        for feed, client in clients.items()
    ]
    return following


@asynccontextmanager
async def opened(
    settings: SearchSettings,
    tokens: TokenCodec,
    transports: Transports | None = None,
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
        clients = feed_clients(settings, tokens, transports)
        for client in clients.values():
            stack.push_async_callback(client.aclose)
        following = build_following(settings, index, clients)
        stack.push_async_callback(following.stop)  # before the clients and index close
        yield index, following


def create_app(
    settings: SearchSettings | None = None,
    *,
    transports: Transports | None = None,
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


async def reindex(
    settings: SearchSettings,
    transports: Transports | None = None,
) -> list[service.Reindexed]:
    """`retail reindex` (`service.reindex`), wired to the index directories on disk and to
    the search service at `SEARCH_URL`."""
    tokens = TokenCodec.from_settings(settings)

    def open_index(directory: Path) -> AbstractAsyncContextManager[tuple[Index, service.Following]]:
        return opened(settings, tokens, transports, directory=directory)

    return await service.reindex(
        open_index,
        directories=existing_index_dirs(settings),
        running=partial(running_search, settings, tokens, transports),
    )
