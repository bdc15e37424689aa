"""Composition root of the categories service (port 8003)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from retail.categories.adapters.sql import CategoriesUnitOfWork
from retail.categories.config import CategoriesSettings
from retail.categories.dependencies import event_reader
from retail.categories.ports import CategoriesDeps, UnitOfWork
from retail.categories.router import router
from retail.kernel.app import create_service_app
from retail.kernel.events import feed_router
from retail.kernel.sessions import revocations_followed
from retail.kernel.storage import Adapters, MongoAdapter

MIGRATIONS = Path(__file__).parent / "migrations"


def _mongo_adapter() -> MongoAdapter[UnitOfWork]:
    """Called only on MongoDB: a service on SQL never imports PyMongo (docs/architecture.md)."""
    from retail.categories.adapters import mongo

    return MongoAdapter(mongo.CategoriesMongoUnitOfWork, mongo.INDEXES)


ADAPTERS: Adapters[UnitOfWork] = Adapters(
    sql=CategoriesUnitOfWork,
    migrations=MIGRATIONS,
    mongo=_mongo_adapter,
)


def create_app(settings: CategoriesSettings | None = None) -> FastAPI:
    settings = settings or CategoriesSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.deps = CategoriesDeps(app.state.unit_of_work)
        async with revocations_followed(app, settings):  # auth's revoked sessions
            yield

    return create_service_app(
        settings,
        title="Retail categories service",
        description="Categories of the catalogue, and their change feed.",
        routers=[router, feed_router(event_reader)],
        lifespan=lifespan,
        adapters=ADAPTERS,
        cached_reads=("/api/categories",),
    )
