"""Composition root of the inventory service (port 8004)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import NamedTuple

import httpx
from fastapi import FastAPI

from retail.inventory import service
from retail.inventory.adapters.mongo import INDEXES, InventoryMongoUnitOfWork
from retail.inventory.adapters.sql import InventoryUnitOfWork
from retail.inventory.clients import product_changes, products_client
from retail.inventory.config import InventorySettings
from retail.inventory.dependencies import UnitOfWorkFactory, event_reader
from retail.inventory.router import internal_router, router
from retail.kernel.app import ReadinessCheck, create_service_app
from retail.kernel.db import backend_of, engine_for, migrate, ping, session_factory
from retail.kernel.events import Event, FeedFollower, feed_router, following
from retail.kernel.http import ServiceClient
from retail.kernel.mongo import MongoStore

MIGRATIONS = Path(__file__).parent / "migrations"


class Storage(NamedTuple):
    """The configured back end, as the rest of the app sees it."""

    units: UnitOfWorkFactory
    ping: ReadinessCheck


def create_app(
    settings: InventorySettings | None = None,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or InventorySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_storage(settings) as storage:
            app.state.unit_of_work = storage.units
            app.state.readiness["database"] = storage.ping
            products = products_client(settings, app.state.tokens, transports)
            followers = {
                service.PRODUCTS_FEED: products_follower(
                    products, storage.units, settings.feed_poll_seconds
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
    )


def open_storage(settings: InventorySettings) -> AbstractAsyncContextManager[Storage]:
    """The back end the database URL names (DATABASE_URL, INVENTORY_DATABASE_URL, ...)."""
    if backend_of(settings.resolved_database_url()) == "mongodb":
        return mongo_storage(settings)
    return sql_storage(settings)


@asynccontextmanager
async def sql_storage(settings: InventorySettings) -> AsyncIterator[Storage]:
    engine = engine_for(settings)
    try:
        await migrate(engine, MIGRATIONS)
        yield Storage(partial(InventoryUnitOfWork, session_factory(engine)), partial(ping, engine))
    finally:
        await engine.dispose()


@asynccontextmanager
async def mongo_storage(settings: InventorySettings) -> AsyncIterator[Storage]:
    """Indexes are created (idempotently) and a dead writer's leftovers settled on opening."""
    store = await MongoStore.open(settings, INDEXES)
    try:
        yield Storage(partial(InventoryMongoUnitOfWork, store), store.ping)
    finally:
        await store.close()


def products_follower(
    products: ServiceClient, units: UnitOfWorkFactory, interval: float
) -> FeedFollower:
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
