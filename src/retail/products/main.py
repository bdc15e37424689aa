"""Composition root of the products service (port 8002)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

import httpx
from anyio import CapacityLimiter
from fastapi import FastAPI

from retail.kernel.app import create_service_app
from retail.kernel.events import Event, FeedFollower, feed_router, following
from retail.kernel.http import ServiceClient
from retail.kernel.storage import Adapters
from retail.products import feeds
from retail.products.adapters.images import S3ImageStore, s3_image_store
from retail.products.adapters.mongo import INDEXES, ProductsMongoUnitOfWork
from retail.products.adapters.sql import ProductsUnitOfWork
from retail.products.clients import CategoriesDirectory, category_changes, peer, stock_levels
from retail.products.config import ProductsSettings
from retail.products.dependencies import Units, event_reader
from retail.products.ports import UnitOfWork
from retail.products.router import internal_router, media_router, router

MIGRATIONS = Path(__file__).parent / "migrations"
ADAPTERS: Adapters[UnitOfWork] = Adapters(
    sql=ProductsUnitOfWork,
    migrations=MIGRATIONS,
    mongo=ProductsMongoUnitOfWork,
    indexes=INDEXES,
)

Apply = Callable[[Sequence[Event]], Awaitable[None]]


def create_app(
    settings: ProductsSettings | None = None,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or ProductsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.media_root = settings.media_dir() / "products"
        app.state.image_limiter = CapacityLimiter(settings.image_workers)
        app.state.remote_images = _remote_images(settings)
        if app.state.remote_images is not None:
            app.state.readiness["images"] = app.state.remote_images.ping
        categories = peer(settings, "categories", app.state.tokens, transports)
        inventory = peer(settings, "inventory", app.state.tokens, transports)
        app.state.categories = CategoriesDirectory(categories)
        app.state.followers = _followers(settings, app.state.unit_of_work, categories, inventory)
        running: AbstractAsyncContextManager[None] = (
            following(*app.state.followers.values()) if settings.follow_feeds else nullcontext()
        )
        try:
            async with running:
                yield
        finally:
            await categories.aclose()
            await inventory.aclose()

    return create_service_app(
        settings,
        title="Retail products service",
        description="The catalogue: products and their images, and the products change feed.",
        routers=[router, internal_router, media_router, feed_router(event_reader)],
        lifespan=lifespan,
        adapters=ADAPTERS,
        cached_reads=("/api/products",),
    )


def _remote_images(settings: ProductsSettings) -> S3ImageStore | None:
    if not settings.s3_bucket:
        return None
    return s3_image_store(
        settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        public_base_url=settings.s3_public_base_url,
    )


def _followers(
    settings: ProductsSettings,
    units: Units,
    categories: ServiceClient,
    inventory: ServiceClient,
) -> dict[str, FeedFollower]:
    """Inventory's feed feeds the stock read model; the categories feed clears deleted
    categories. Each cursor lives in products' database and moves with what it applied."""

    async def apply_stock(events: Sequence[Event]) -> None:
        await feeds.apply_stock_levels(units(), stock_levels(events))

    async def apply_categories(events: Sequence[Event]) -> None:
        await feeds.apply_category_changes(units(), category_changes(events))

    def follower(name: str, client: ServiceClient, apply: Apply) -> FeedFollower:
        async def load() -> int:
            return await feeds.feed_cursor(units(readonly=True), name)

        return FeedFollower(
            name, client.read_events, load, apply, interval_seconds=settings.feed_poll_seconds
        )

    return {
        feeds.INVENTORY_FEED: follower(feeds.INVENTORY_FEED, inventory, apply_stock),
        feeds.CATEGORIES_FEED: follower(feeds.CATEGORIES_FEED, categories, apply_categories),
    }
