"""Composition root of the orders service (port 8005)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

from fastapi import FastAPI

from retail.kernel.app import create_service_app
from retail.kernel.following import following
from retail.kernel.http import Transports, peer_client
from retail.kernel.sessions import revocations_followed
from retail.kernel.storage import Adapters, MongoAdapter
from retail.orders.adapters.sql import OrdersUnitOfWork
from retail.orders.clients import InventoryReservations, ProductsCatalog
from retail.orders.config import OrdersSettings
from retail.orders.feeds import PRODUCTS_FEED, CatalogueView
from retail.orders.ports import OrdersDeps, UnitOfWork
from retail.orders.router import router
from retail.orders.service import keep_recovering

MIGRATIONS = Path(__file__).parent / "migrations"


def _mongo_adapter() -> MongoAdapter[UnitOfWork]:
    """Called only on MongoDB: a service on SQL never imports PyMongo (docs/architecture.md)."""
    from retail.orders.adapters import mongo

    return MongoAdapter(mongo.OrdersMongoUnitOfWork, mongo.INDEXES)


ADAPTERS: Adapters[UnitOfWork] = Adapters(
    sql=OrdersUnitOfWork,
    migrations=MIGRATIONS,
    mongo=_mongo_adapter,
)


def create_app(
    settings: OrdersSettings | None = None,
    *,
    transports: Transports | None = None,
) -> FastAPI:
    settings = settings or OrdersSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        products = peer_client(settings, "products", app.state.tokens, transports)
        inventory = peer_client(settings, "inventory", app.state.tokens, transports)
        catalog = CatalogueView(
            ProductsCatalog(products), max_age=settings.catalogue_max_age_seconds
        )
        app.state.followers = {PRODUCTS_FEED: catalog.following(products)}
        app.state.deps = OrdersDeps(
            units=app.state.unit_of_work,
            catalog=catalog,
            stock=InventoryReservations(inventory),
            policy=settings.policy(),
        )
        app.state.readiness.update(products=products.ping, inventory=inventory.ping)
        try:
            async with (
                _recovering(app, settings),
                revocations_followed(app, settings, transports),
                _catalogue_followed(app, settings),
            ):
                yield
        finally:
            await products.aclose()
            await inventory.aclose()

    return create_service_app(
        settings,
        title="Retail orders service",
        description="Orders and their lifecycle: placing (a saga reserving stock at "
        "inventory), idempotent retries, reorders, cancelling, and recovery after crashes.",
        routers=[router],
        lifespan=lifespan,
        adapters=ADAPTERS,
    )


def _catalogue_followed(
    app: FastAPI, settings: OrdersSettings
) -> AbstractAsyncContextManager[None]:
    """The catalogue view follows products' feed for the life of the app (docs/architecture.md,
    "The catalogue view in orders"); with a bound of 0 it is never current, never followed."""
    if settings.catalogue_max_age_seconds <= 0 or not settings.follow_feeds:
        return nullcontext()
    return following(*app.state.followers.values())


@asynccontextmanager
async def _recovering(app: FastAPI, settings: OrdersSettings) -> AsyncIterator[None]:
    """The recovery loop for the life of the app: its first pass runs at start-up."""
    if not settings.recover_pending:
        yield
        return
    task = asyncio.create_task(
        keep_recovering(
            app.state.deps,
            interval_seconds=settings.recovery_interval_seconds,
            batch=settings.recovery_batch_size,
        ),
        name="orders:recovery",
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
