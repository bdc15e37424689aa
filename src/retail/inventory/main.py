"""Composition root of the inventory service (port 8004)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

import httpx
from fastapi import FastAPI

from retail.inventory import service
from retail.inventory.adapters.mongo import INDEXES, InventoryMongoUnitOfWork
from retail.inventory.adapters.sql import InventoryUnitOfWork
from retail.inventory.clients import product_changes, products_client
from retail.inventory.config import InventorySettings
from retail.inventory.dependencies import Units, event_reader
from retail.inventory.ports import UnitOfWork
from retail.inventory.router import internal_router, router
from retail.kernel.app import create_service_app
from retail.kernel.events import Event, FeedFollower, feed_router, following
from retail.kernel.http import ServiceClient
from retail.kernel.storage import Adapters

MIGRATIONS = Path(__file__).parent / "migrations"
ADAPTERS: Adapters[UnitOfWork] = Adapters(
    sql=InventoryUnitOfWork,
    migrations=MIGRATIONS,
    mongo=InventoryMongoUnitOfWork,
    indexes=INDEXES,
)


def create_app(
    settings: InventorySettings | None = None,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or InventorySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        products = products_client(settings, app.state.tokens, transports)
        followers = {
            service.PRODUCTS_FEED: products_follower(
                products, app.state.unit_of_work, settings.feed_poll_seconds
            )
        }
        app.state.followers = followers
        running: AbstractAsyncContextManager[None] = (
            following(*followers.values()) if settings.follow_feeds else nullcontext()
        )
        try:
            async with running:
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

    async def load_cursor() -> int:
        return await service.feed_cursor(units(readonly=True), service.PRODUCTS_FEED)

    async def apply(events: Sequence[Event]) -> None:
        await service.apply_product_changes(units(), product_changes(events))

    return FeedFollower(
        service.PRODUCTS_FEED,
        products.read_events,
        load_cursor,
        apply,
        interval_seconds=interval,
    )
