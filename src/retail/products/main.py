"""Composition root of the products service (port 8002)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

from anyio import CapacityLimiter
from fastapi import FastAPI

from retail.kernel.app import create_service_app
from retail.kernel.events import feed_router
from retail.kernel.following import CursorTarget, FeedFollower, following
from retail.kernel.http import ServiceClient, Transports
from retail.kernel.sessions import revocations_followed
from retail.kernel.storage import Adapters, MongoAdapter
from retail.products import feeds
from retail.products.adapters.images import LocalImageStore, S3ImageStore, s3_image_store
from retail.products.adapters.sql import ProductsUnitOfWork
from retail.products.clients import CategoriesDirectory, category_changes, peer, stock_levels
from retail.products.config import ProductsSettings
from retail.products.dependencies import event_reader
from retail.products.ports import ProductsDeps, UnitOfWork, Units
from retail.products.router import internal_router, media_router, router

MIGRATIONS = Path(__file__).parent / "migrations"


def _mongo_adapter() -> MongoAdapter[UnitOfWork]:
    """Called only on MongoDB: a service on SQL never imports PyMongo (docs/architecture.md)."""
    from retail.products.adapters import mongo

    return MongoAdapter(mongo.ProductsMongoUnitOfWork, mongo.INDEXES)


ADAPTERS: Adapters[UnitOfWork] = Adapters(
    sql=ProductsUnitOfWork,
    migrations=MIGRATIONS,
    mongo=_mongo_adapter,
)


def create_app(
    settings: ProductsSettings | None = None,
    *,
    transports: Transports | None = None,
) -> FastAPI:
    settings = settings or ProductsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.media_root = settings.media_dir() / "products"
        # Without PUBLIC_BASE_URL, image URLs are relative (/media/products/...): never built
        # from the request's Host header, which any client can write.
        app.state.local_images = LocalImageStore(
            app.state.media_root, settings.public_base_url or ""
        )
        app.state.image_limiter = CapacityLimiter(settings.image_workers)
        remote_images = _remote_images(settings)
        if remote_images is not None:
            app.state.readiness["images"] = remote_images.ping
        categories = peer(settings, "categories", app.state.tokens, transports)
        inventory = peer(settings, "inventory", app.state.tokens, transports)
        app.state.deps = ProductsDeps(
            units=app.state.unit_of_work,
            categories=CategoriesDirectory(categories),
            images=remote_images or app.state.local_images,
        )
        app.state.followers = _followers(settings, app.state.unit_of_work, categories, inventory)
        running: AbstractAsyncContextManager[None] = (
            following(*app.state.followers.values()) if settings.follow_feeds else nullcontext()
        )
        try:
            async with running, revocations_followed(app, settings, transports):
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
        # A product's page is dropped only by the commits that change it: each order's
        # stock change keeps the other products' pages (feeds.py, set_stock).
        cache_tag_param="product_id",
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
    stock = CursorTarget(
        feeds.INVENTORY_FEED, units, stock_levels, feeds.set_stock, apply_all=feeds.set_stocks
    )
    deleted = CursorTarget(feeds.CATEGORIES_FEED, units, category_changes, feeds.clear_category)
    interval = settings.feed_poll_seconds
    return {
        feeds.INVENTORY_FEED: FeedFollower(
            feeds.INVENTORY_FEED, inventory, stock, min_interval=interval
        ),
        feeds.CATEGORIES_FEED: FeedFollower(
            feeds.CATEGORIES_FEED, categories, deleted, min_interval=interval
        ),
    }
