"""Composition root of the inventory service (port 8004)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from retail.inventory import service
from retail.inventory.adapters.sql import InventoryUnitOfWork
from retail.inventory.clients import product_changes, products_client
from retail.inventory.config import InventorySettings
from retail.inventory.dependencies import Units, event_reader
from retail.inventory.domain import ProductChange
from retail.inventory.ports import InventoryDeps, UnitOfWork
from retail.inventory.router import internal_router, router
from retail.kernel.app import create_service_app, gauge_read_when_scraped
from retail.kernel.events import feed_router
from retail.kernel.following import CursorTarget, FeedFollower, following
from retail.kernel.http import ServiceClient, Transports
from retail.kernel.sessions import revocations_followed
from retail.kernel.storage import Adapters, MongoAdapter

MIGRATIONS = Path(__file__).parent / "migrations"
LOW_STOCK = ("retail_low_stock_products", "Products at or below their low-stock threshold")


def _mongo_adapter() -> MongoAdapter[UnitOfWork]:
    """Called only on MongoDB: a service on SQL never imports PyMongo (docs/architecture.md)."""
    from retail.inventory.adapters import mongo

    return MongoAdapter(mongo.InventoryMongoUnitOfWork, mongo.INDEXES)


ADAPTERS: Adapters[UnitOfWork] = Adapters(
    sql=InventoryUnitOfWork,
    migrations=MIGRATIONS,
    mongo=_mongo_adapter,
)


def create_app(
    settings: InventorySettings | None = None,
    *,
    transports: Transports | None = None,
) -> FastAPI:
    settings = settings or InventorySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.deps = deps = InventoryDeps(app.state.unit_of_work)
        products = products_client(settings, app.state.tokens, transports)
        followers = {
            service.PRODUCTS_FEED: products_follower(
                products, app.state.unit_of_work, settings.feed_poll_seconds
            )
        }
        app.state.followers = followers
        gauge_read_when_scraped(
            app,
            *LOW_STOCK,
            partial(service.count_low_stock, deps, default_threshold=settings.low_stock_threshold),
        )
        running: AbstractAsyncContextManager[None] = (
            following(*followers.values()) if settings.follow_feeds else nullcontext()
        )
        try:
            async with running, revocations_followed(app, settings, transports):
                yield
        finally:
            await products.aclose()

    return create_service_app(
        settings,
        title="Retail inventory service",
        description="Stock levels (their only owner), reservations of orders, stock history, "
        "and the stock feed.",
        routers=[router, internal_router, feed_router(event_reader)],
        lifespan=lifespan,
        adapters=ADAPTERS,
    )


def products_follower(products: ServiceClient, units: Units, interval: float) -> FeedFollower:
    """Creates, renames and removes levels as products change; its cursor lives in
    inventory's database and moves in the same transaction as the levels."""
    target = CursorTarget[UnitOfWork, ProductChange](
        service.PRODUCTS_FEED,
        units,
        product_changes,
        service.apply_product_change,
        apply_all=service.apply_product_changes_together,
    )
    return FeedFollower(service.PRODUCTS_FEED, products, target, min_interval=interval)
