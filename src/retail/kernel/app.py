"""`create_service_app`: what every service's `create_app` builds on.

It gives each service the same middleware, error format, token codec, /health and /ready.
The service passes its routers, its storage adapters (opened here, before its own lifespan
runs: `app.state.unit_of_work` is the factory of its units of work) and a lifespan that
creates its clients and registers further readiness checks on `app.state.readiness`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.routing import BaseRoute

from retail.kernel.cache import ReadCacheMiddleware
from retail.kernel.db import backend_of
from retail.kernel.edges import JsonErrorCORSMiddleware, method_not_allowed
from retail.kernel.errors import ServiceUnavailable, Unauthorized, install_error_handlers
from retail.kernel.health import StorageFault
from retail.kernel.metrics import (
    PROCESS_TALLY,
    MetricsEndpoint,
    observed_units,
    process_stopped,
    scraped_gauge,
)
from retail.kernel.middleware import RequestContextMiddleware
from retail.kernel.observability import configure_logging
from retail.kernel.openapi import install_openapi
from retail.kernel.security import TokenCodec
from retail.kernel.settings import Settings
from retail.kernel.storage import Adapters, open_storage
from retail.kernel.storage import ReadinessCheck as ReadinessCheck  # re-exported
from retail.kernel.tracing import Tracing, tracing_from_env

ServiceLifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
READY_TIMEOUT_SECONDS = 2.0
# FastAPI's own OpenTelemetry layer stays off: the request middleware holds the request's
# span (one layer, per-app tracer; kernel/tracing.py), so it would only add a second one.
_NO_FASTAPI_TELEMETRY = {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}
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
    cache_tag_param: str | None = None,
) -> FastAPI:
    """`cached_reads`: path prefixes whose GET answers are the same for every caller, kept
    in memory until the database changes (kernel/cache.py; the lifespan sets
    `app.state.cache_version`). `cache_tag_param`: the path parameter that tags a kept
    answer, so that an own commit naming other keys (`changes_only`) keeps it."""
    tracing = tracing_from_env(settings.service_name)
    trace_ids = tracing.log_ids if tracing is not None else None
    configure_logging(settings.service_name, settings.log_level, settings.log_format, trace_ids)
    metrics = _metrics_endpoint(settings)

    @asynccontextmanager
    async def kernel_lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.tokens = TokenCodec.from_settings(settings)
        app.state.readiness = {}
        app.state.metrics = metrics  # a service's lifespan may add gauges read when scraped
        app.state.tracing = tracing
        async with AsyncExitStack() as stack:
            stack.callback(_stop_observing, tracing)
            if adapters is not None:
                storage = await stack.enter_async_context(open_storage(settings, adapters))
                app.state.unit_of_work = _observed(settings, storage.units, tracing)
                app.state.readiness["database"] = storage.ping
                app.state.data_version = storage.data_version
                app.state.cache_version = storage.cache_version
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
        telemetry=_NO_FASTAPI_TELEMETRY,
    )
    install_error_handlers(app)
    app.add_exception_handler(405, method_not_allowed)
    if cached_reads and settings.read_cache_bytes:
        # Innermost: CORS and request-context headers are added to kept answers per request.
        app.add_middleware(
            ReadCacheMiddleware,
            prefixes=cached_reads,
            max_bytes=settings.read_cache_bytes,
            tag_param=cache_tag_param,
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
        access_log_sample_rate=settings.access_log_sample_rate,
        metrics=PROCESS_TALLY if metrics is not None else None,
        tracing=tracing,
    )
    ours = [*routers, _probe_router(settings.service_name)]
    if metrics is not None:
        ours.append(_metrics_router(metrics))
    _add_routes(app, ours)
    install_openapi(app)
    return app


def _add_routes(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """The service's routes, tried first and in order, put in the app's own route list.

    Routing tries routes one by one: first the service's, then the probes', /metrics and
    the documentation's, which FastAPI added when the app was made. And FastAPI 0.165
    includes a router lazily: a request is matched against the included router, then
    again against each of its routes. Added flat, a route is matched once; an uncached
    product read cost 13% fewer instructions (callgrind, docs/performance.md). A router
    route keeps its prefix, tags, responses and dependencies, which FastAPI gave it when
    it was declared. A router with a lifespan of its own (the feed's) is included as
    FastAPI intends, so that the lifespan runs with the app's."""
    default_lifespan = type(APIRouter().lifespan_context)
    flat: list[BaseRoute] = []
    for router in routers:
        if type(router.lifespan_context) is default_lifespan:
            flat.extend(router.routes)
        else:
            app.include_router(router)
    app.router.routes[:0] = flat


def gauge_read_when_scraped(
    app: FastAPI, name: str, documentation: str, read: Callable[[], Awaitable[float]]
) -> None:
    """A gauge of `app`'s /metrics that `read` (a count in the database, say) sets each time
    it is scraped, instead of being kept up to date on every change. From a lifespan."""
    endpoint: MetricsEndpoint | None = app.state.metrics
    if endpoint is not None:
        endpoint.scraped.append(scraped_gauge(name, documentation, read))


def _metrics_endpoint(settings: Settings) -> MetricsEndpoint | None:
    if not settings.metrics_enabled:
        return None
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    return MetricsEndpoint(token=token or None)  # METRICS_TOKEN= (empty) is no token


def _observed(settings: Settings, units: Any, tracing: Tracing | None) -> Any:
    """The units of work, counted while open for /metrics and spanned when tracing."""
    if not settings.metrics_enabled and tracing is None:
        return units
    system = backend_of(settings.resolved_database_url())
    return observed_units(units, tracing=tracing, system=system)


def _stop_observing(tracing: Tracing | None) -> None:
    if tracing is not None:
        tracing.shutdown()  # exports the spans still buffered
    process_stopped()


def _metrics_router(endpoint: MetricsEndpoint) -> APIRouter:
    """`/metrics` in Prometheus' text format; out of the OpenAPI document, which describes
    the API that clients call."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not endpoint.allows(request.headers.get("authorization")):
            raise Unauthorized("/metrics needs the METRICS_TOKEN as a bearer token")
        body, content_type = await endpoint.exposition()
        return Response(body, media_type=content_type)

    return router


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
    except StorageFault as exc:  # what the storage reported, e.g. "failed: disk full"
        return f"failed: {exc}"
    except Exception as exc:
        return f"failed: {type(exc).__name__}"
    return "ok"
