"""Composition root of the orders service (port 8005)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
from fastapi import FastAPI

from retail.kernel.app import create_service_app
from retail.kernel.http import peer_client
from retail.kernel.storage import Adapters
from retail.orders.adapters.mongo import INDEXES, OrdersMongoUnitOfWork
from retail.orders.adapters.sql import OrdersUnitOfWork
from retail.orders.clients import ExitAfterReserve, InventoryReservations, ProductsCatalog
from retail.orders.config import OrdersSettings
from retail.orders.dependencies import Units
from retail.orders.ports import Context, ProductCatalog, StockReservations, UnitOfWork
from retail.orders.recovery import keep_recovering
from retail.orders.router import router

MIGRATIONS = Path(__file__).parent / "migrations"
ADAPTERS: Adapters[UnitOfWork] = Adapters(
    sql=OrdersUnitOfWork,
    migrations=MIGRATIONS,
    mongo=OrdersMongoUnitOfWork,
    indexes=INDEXES,
)


def create_app(
    settings: OrdersSettings | None = None,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or OrdersSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        products = peer_client(settings, "products", app.state.tokens, transports)
        inventory = peer_client(settings, "inventory", app.state.tokens, transports)
        stock: StockReservations = InventoryReservations(inventory)
        if settings.fault_after_reserve():
            stock = ExitAfterReserve(stock)
        app.state.catalog = ProductsCatalog(products)
        app.state.stock = stock
        app.state.policy = settings.policy()
        app.state.recovery = partial(
            recovery_context, app.state.unit_of_work, app.state.catalog, stock, settings
        )
        app.state.readiness.update(products=products.ping, inventory=inventory.ping)
        try:
            async with _recovering(app, settings):
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


def recovery_context(
    units: Units,
    catalog: ProductCatalog,
    stock: StockReservations,
    settings: OrdersSettings,
) -> Context:
    """A fresh context per recovery pass (its own unit of work)."""
    return Context(units(), catalog, stock, settings.policy(), reads=units(readonly=True))


@asynccontextmanager
async def _recovering(app: FastAPI, settings: OrdersSettings) -> AsyncIterator[None]:
    """The recovery loop for the life of the app: its first pass runs at start-up."""
    if not settings.recover_pending:
        yield
        return
    task = asyncio.create_task(
        keep_recovering(
            app.state.recovery,
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
