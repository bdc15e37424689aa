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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retail.kernel.app import create_service_app
from retail.kernel.db import engine_for, migrate, ping, session_factory
from retail.kernel.http import peer_client
from retail.orders.adapters.sql import OrdersUnitOfWork
from retail.orders.clients import ExitAfterReserve, InventoryReservations, ProductsCatalog
from retail.orders.config import OrdersSettings
from retail.orders.ports import Context, ProductCatalog, StockReservations
from retail.orders.recovery import keep_recovering
from retail.orders.router import router

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: OrdersSettings | None = None,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or OrdersSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = engine_for(settings)
        await migrate(engine, MIGRATIONS)
        sessions = session_factory(engine)
        products = peer_client(settings, "products", app.state.tokens, transports)
        inventory = peer_client(settings, "inventory", app.state.tokens, transports)
        stock: StockReservations = InventoryReservations(inventory)
        if settings.fault_after_reserve():
            stock = ExitAfterReserve(stock)
        app.state.sessions = sessions
        app.state.catalog = ProductsCatalog(products)
        app.state.stock = stock
        app.state.policy = settings.policy()
        app.state.recovery = partial(recovery_context, sessions, app.state.catalog, stock, settings)
        app.state.readiness.update(
            database=partial(ping, engine), products=products.ping, inventory=inventory.ping
        )
        try:
            async with _recovering(app, settings):
                yield
        finally:
            await products.aclose()
            await inventory.aclose()
            await engine.dispose()

    return create_service_app(
        settings,
        title="Retail orders service",
        description="Orders and their lifecycle: placing (a saga reserving stock at "
        "inventory), idempotent retries, reorders, cancelling, and recovery after crashes.",
        routers=[router],
        lifespan=lifespan,
    )


def recovery_context(
    sessions: async_sessionmaker[AsyncSession],
    catalog: ProductCatalog,
    stock: StockReservations,
    settings: OrdersSettings,
) -> Context:
    """A fresh context per recovery pass (its own unit of work)."""
    return Context(
        OrdersUnitOfWork(sessions),
        catalog,
        stock,
        settings.policy(),
        reads=OrdersUnitOfWork(sessions, readonly=True),
    )


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
