"""Composition root of the auth service (port 8001)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from retail.auth import service
from retail.auth.adapters.passwords import BcryptHasher
from retail.auth.adapters.sql import AuthUnitOfWork
from retail.auth.clients import ProductsCatalog, products_client
from retail.auth.config import AuthSettings
from retail.auth.dependencies import event_reader
from retail.auth.domain import AuthPolicy, ThrottlePolicy
from retail.auth.ports import AuthDeps, ProductCatalog, UnitOfWork, Units
from retail.auth.router import router
from retail.kernel.app import create_service_app
from retail.kernel.events import Event, feed_router
from retail.kernel.following import raise_if_cancelled
from retail.kernel.http import Transports
from retail.kernel.security import TokenCodec
from retail.kernel.sessions import LocalFeed, revocations_followed
from retail.kernel.storage import Adapters, MongoAdapter, open_storage

__all__ = ["AuthSettings", "create_admin", "create_app"]

MIGRATIONS = Path(__file__).parent / "migrations"


def _mongo_adapter() -> MongoAdapter[UnitOfWork]:
    """Called only on MongoDB: a service on SQL never imports PyMongo (docs/architecture.md)."""
    from retail.auth.adapters import mongo

    return MongoAdapter(mongo.AuthMongoUnitOfWork, mongo.INDEXES)


ADAPTERS: Adapters[UnitOfWork] = Adapters(
    sql=AuthUnitOfWork,
    migrations=MIGRATIONS,
    mongo=_mongo_adapter,
)
logger = logging.getLogger("retail.auth")


def create_app(
    settings: AuthSettings | None = None,
    *,
    transports: Transports | None = None,
) -> FastAPI:
    settings = settings or AuthSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Readiness is the database's only: products being down takes the cart out, not
        # sign-in.
        products = products_client(settings, app.state.tokens, transports)
        deps = await auth_deps(
            settings, app.state.tokens, app.state.unit_of_work, ProductsCatalog(products)
        )
        app.state.deps = deps
        # Auth follows its own feed, as every service follows it, so that all its processes
        # refuse a revoked session's tokens too.
        own_feed = LocalFeed(partial(_read_events, deps), app.state.data_version)
        try:
            await _ensure_settings_admin(deps, settings)
            async with (
                revocations_followed(app, settings, source=own_feed),
                _purging(partial(_purge, deps), settings),
            ):
                yield
        finally:
            await products.aclose()

    return create_service_app(
        settings,
        title="Retail auth service",
        description="Accounts, sign-in with rotating refresh tokens, user administration, "
        "and the signed-in customer's cart.",
        routers=[router, feed_router(event_reader)],
        lifespan=lifespan,
        adapters=ADAPTERS,
    )


async def create_admin(settings: AuthSettings, email: str, password: str) -> None:
    """`retail create-admin`: create the admin, or promote the user with this email."""
    async with open_storage(settings, ADAPTERS) as storage:
        tokens = TokenCodec.from_settings(settings)
        # Never called here (no cart is touched), but every use case takes the one bundle.
        products = products_client(settings, tokens)
        try:
            deps = await auth_deps(settings, tokens, storage.units, ProductsCatalog(products))
            await service.ensure_admin(
                deps, email=email, password=password, name=settings.admin_name
            )
        finally:
            await products.aclose()


async def _ensure_settings_admin(deps: AuthDeps, settings: AuthSettings) -> None:
    if settings.admin_email and settings.admin_password:
        await service.ensure_admin(
            deps,
            email=settings.admin_email,
            password=settings.admin_password.get_secret_value(),
            name=settings.admin_name,
        )


async def auth_deps(
    settings: AuthSettings, tokens: TokenCodec, units: Units, catalog: ProductCatalog
) -> AuthDeps:
    window = timedelta(seconds=settings.login_window_seconds)
    max_lock = timedelta(seconds=settings.login_max_lock_seconds)
    policy = AuthPolicy(
        refresh_ttl=timedelta(days=settings.refresh_token_expire_days),
        account=ThrottlePolicy(settings.login_free_failures_per_account, window, max_lock),
        address=ThrottlePolicy(settings.login_free_failures_per_address, window, max_lock),
    )
    hasher = await BcryptHasher.create(settings.bcrypt_rounds)
    return AuthDeps(units, hasher, tokens, policy, catalog)


async def _read_events(deps: AuthDeps, after: int, limit: int) -> list[Event]:
    return await service.read_events(deps, after=after, limit=limit)


async def _purge(deps: AuthDeps) -> None:
    keys, families, events = await service.purge_stale(deps)
    if keys or families or events:
        logger.info(
            "purged %d throttle keys, %d token families, %d feed events", keys, families, events
        )


@asynccontextmanager
async def _purging(
    purge: Callable[[], Awaitable[None]], settings: AuthSettings
) -> AsyncIterator[None]:
    """Forget quiet throttle keys and dead token families now and then, so that guessing
    at random emails or never signing out cannot grow the tables without end."""

    async def loop() -> None:
        while True:
            try:
                await purge()
            except Exception as exc:  # a busy database now is no reason to stop purging
                logger.warning("purge failed: %s", exc)
            raise_if_cancelled()
            await asyncio.sleep(settings.login_window_seconds)

    task = asyncio.create_task(loop(), name="auth:purge")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
