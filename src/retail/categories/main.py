"""Composition root of the categories service (port 8003)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from retail.categories.config import CategoriesSettings
from retail.categories.dependencies import event_reader
from retail.categories.router import router
from retail.kernel.app import create_service_app
from retail.kernel.db import engine_for, migrate, ping, session_factory
from retail.kernel.events import feed_router

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: CategoriesSettings | None = None) -> FastAPI:
    settings = settings or CategoriesSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = engine_for(settings)
        await migrate(engine, MIGRATIONS)
        app.state.sessions = session_factory(engine)
        app.state.readiness["database"] = partial(ping, engine)
        try:
            yield
        finally:
            await engine.dispose()

    return create_service_app(
        settings,
        title="Retail categories service",
        description="Categories of the catalogue, and their change feed.",
        routers=[router, feed_router(event_reader)],
        lifespan=lifespan,
    )
