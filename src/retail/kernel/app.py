"""`create_service_app`: what every service's `create_app` builds on.

It gives each service the same middleware, error format, token codec, /health and /ready.
The service passes its routers, its storage adapters (opened here, before its own lifespan
runs: `app.state.unit_of_work` is the factory of its units of work) and a lifespan that
creates its clients and registers further readiness checks on `app.state.readiness`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

from retail.kernel.cache import ReadCacheMiddleware
from retail.kernel.edges import JsonErrorCORSMiddleware, method_not_allowed
from retail.kernel.errors import ServiceUnavailable, install_error_handlers
from retail.kernel.middleware import RequestContextMiddleware
from retail.kernel.observability import configure_logging
from retail.kernel.openapi import install_openapi
from retail.kernel.security import TokenCodec
from retail.kernel.settings import Settings
from retail.kernel.storage import Adapters, open_storage
from retail.kernel.storage import ReadinessCheck as ReadinessCheck  # re-exported

ServiceLifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
READY_TIMEOUT_SECONDS = 2.0
DOCS_ASSETS = "/docs-assets"


class Health(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    status: str
    service: str
    checks: dict[str, str]


def create_service_app(
    settings: Settings,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    lifespan: ServiceLifespan,
    adapters: Adapters[Any] | None = None,
    openapi_tags: list[dict[str, Any]] | None = None,
    cached_reads: tuple[str, ...] = (),
) -> FastAPI:
    """`cached_reads`: path prefixes whose GET answers are the same for every caller, kept
    in memory until the database changes (kernel/cache.py; the lifespan sets
    `app.state.data_version`)."""
    configure_logging(settings.service_name, settings.log_level, settings.log_format)

    @asynccontextmanager
    async def kernel_lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.tokens = TokenCodec.from_settings(settings)
        app.state.readiness = {}
        async with AsyncExitStack() as stack:
            if adapters is not None:
                storage = await stack.enter_async_context(open_storage(settings, adapters))
                app.state.unit_of_work = storage.units
                app.state.readiness["database"] = storage.ping
                app.state.data_version = storage.data_version
            await stack.enter_async_context(lifespan(app))
            yield

    # FastAPIOffline: /docs and /redoc load their scripts from this service, not a CDN.
    # No trailing-slash redirects: Starlette's echo the Host header into Location; the
    # request middleware serves `/api/products/` as `/api/products` instead.
    app = FastAPIOffline(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=kernel_lifespan,
        openapi_tags=openapi_tags,
        redirect_slashes=False,
        static_url=DOCS_ASSETS,
    )
    install_error_handlers(app)
    app.add_exception_handler(405, method_not_allowed)
    if cached_reads and settings.read_cache_bytes:
        # Innermost: CORS and request-context headers are added to kept answers per request.
        app.add_middleware(
            ReadCacheMiddleware, prefixes=cached_reads, max_bytes=settings.read_cache_bytes
        )
    if settings.cors_origins:
        app.add_middleware(
            JsonErrorCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    # Added last, so it is outermost: it sees every response, CORS ones included.
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        access_log=settings.access_log,
    )
    app.include_router(_probe_router(settings.service_name))
    for router in routers:
        app.include_router(router)
    install_openapi(app)
    return app


def _probe_router(service: str) -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/health", response_model=Health)
    async def health() -> Health:
        return Health(status="ok", service=service)

    @router.get("/ready", response_model=Readiness, responses={503: {"description": "Not ready"}})
    async def ready_check(request: Request) -> Readiness:
        checks: dict[str, ReadinessCheck] = request.app.state.readiness
        results = await asyncio.gather(*(_run_check(c) for c in checks.values()))
        outcome = dict(zip(checks, results, strict=True))
        if any(r != "ok" for r in results):
            raise ServiceUnavailable(f"{service} is not ready", details={"checks": outcome})
        return Readiness(status="ready", service=service, checks=outcome)

    return router


async def _run_check(check: ReadinessCheck) -> str:
    try:
        await asyncio.wait_for(check(), READY_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"failed: {type(exc).__name__}"
    return "ok"
