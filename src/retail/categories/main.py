"""Composition root of the categories service (port 8003)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import NamedTuple

from fastapi import FastAPI

from retail.categories.adapters.mongo import INDEXES, CategoriesMongoUnitOfWork
from retail.categories.adapters.sql import CategoriesUnitOfWork
from retail.categories.config import CategoriesSettings
from retail.categories.dependencies import UnitOfWorkFactory, event_reader
from retail.categories.router import router
from retail.kernel.app import ReadinessCheck, create_service_app
from retail.kernel.db import backend_of, engine_for, migrate, ping, session_factory
from retail.kernel.events import feed_router
from retail.kernel.mongo import MongoStore

MIGRATIONS = Path(__file__).parent / "migrations"


class Storage(NamedTuple):
    """The configured back end, as the rest of the app sees it."""

    units: UnitOfWorkFactory
    ping: ReadinessCheck


def create_app(settings: CategoriesSettings | None = None) -> FastAPI:
    settings = settings or CategoriesSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_storage(settings) as storage:
            app.state.unit_of_work = storage.units
            app.state.readiness["database"] = storage.ping
            yield

    return create_service_app(
        settings,
        title="Retail categories service",
        description="Categories of the catalogue, and their change feed.",
        routers=[router, feed_router(event_reader)],
        lifespan=lifespan,
    )


def open_storage(settings: CategoriesSettings) -> AbstractAsyncContextManager[Storage]:
    """The back end the database URL names (DATABASE_URL, CATEGORIES_DATABASE_URL, ...)."""
    if backend_of(settings.resolved_database_url()) == "mongodb":
        return mongo_storage(settings)
    return sql_storage(settings)


@asynccontextmanager
async def sql_storage(settings: CategoriesSettings) -> AsyncIterator[Storage]:
    engine = engine_for(settings)
    try:
        await migrate(engine, MIGRATIONS)
        yield Storage(partial(CategoriesUnitOfWork, session_factory(engine)), partial(ping, engine))
    finally:
        await engine.dispose()


@asynccontextmanager
async def mongo_storage(settings: CategoriesSettings) -> AsyncIterator[Storage]:
    """Indexes are created (idempotently) and a dead writer's leftovers settled on opening."""
    store = await MongoStore.open(settings, INDEXES)
    try:
        yield Storage(partial(CategoriesMongoUnitOfWork, store), store.ping)
    finally:
        await store.close()
