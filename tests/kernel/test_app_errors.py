"""The kernel's app: the wire error format for every failure, headers, probes, body cap."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict

from retail.categories.config import CategoriesSettings
from retail.categories.main import create_app
from retail.categories.router import router
from retail.kernel.app import create_service_app
from retail.kernel.errors import Conflict, TooManyRequests
from retail.kernel.settings import Settings
from tests.support import assert_error, make_settings, serve


class DemoSettings(Settings):
    service_name: ClassVar[str] = "demo"


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str
    password: str


def demo_app(tmp_path: Path, ready: bool = True) -> FastAPI:
    router = APIRouter()

    @router.post("/api/login")
    async def login(body: Login) -> dict[str, str]:
        return {"ok": body.email}

    @router.get("/api/conflict")
    async def conflict() -> None:
        raise Conflict("taken", details={"field": "email"})

    @router.get("/api/slow-down")
    async def slow_down() -> None:
        raise TooManyRequests(retry_after=7)

    @router.get("/api/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def check() -> None:
            if not ready:
                raise ConnectionError("db down")

        app.state.readiness["database"] = check
        yield

    settings = make_settings(DemoSettings, tmp_path, max_body_bytes=2048)
    return create_service_app(
        settings, title="demo", description="", routers=[router], lifespan=lifespan
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(demo_app(tmp_path)) as client:
        yield client


async def test_validation_lists_fields_but_never_echoes_values(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/login", json={"email": "a@b.c", "password": 12345678, "role": "admin"}
    )
    assert_error(response, 422, "VALIDATION_ERROR")
    fields = {f["field"] for f in response.json()["details"]["fields"]}
    assert fields == {"body.password", "body.role"}
    assert "12345678" not in response.text
    assert "admin" not in response.text


async def test_malformed_json_is_a_422_in_the_format(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "VALIDATION_ERROR")


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/nowhere"), 404, "NOT_FOUND")
    assert_error(await client.delete("/api/login"), 405, "METHOD_NOT_ALLOWED")


async def test_app_errors_carry_code_details_and_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/conflict")
    assert_error(response, 409, "CONFLICT")
    assert response.json()["details"] == {"field": "email"}
    limited = await client.get("/api/slow-down")
    assert_error(limited, 429, "TOO_MANY_REQUESTS")
    assert limited.headers["retry-after"] == "7"


async def test_unexpected_errors_are_generic_500s_with_a_logged_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.get("/api/boom", headers={"x-request-id": "req-42"})
    assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret" not in response.text
    assert "passwd" not in response.text
    assert response.json()["details"]["request_id"] == "req-42"
    assert response.headers["x-request-id"] == "req-42"
    assert any(r.exc_info for r in caplog.records)


async def test_body_cap_by_declared_length_and_by_stream(client: httpx.AsyncClient) -> None:
    big = b'{"email": "' + b"a" * 4096 + b'", "password": "x"}'
    declared = await client.post(
        "/api/login", content=big, headers={"content-type": "application/json"}
    )
    assert_error(declared, 413, "PAYLOAD_TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    streamed = await client.post(
        "/api/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(streamed, 413, "PAYLOAD_TOO_LARGE")


async def test_security_headers_and_no_store_on_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nowhere")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert len(response.headers["x-request-id"]) == 32
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "cache-control" not in docs.headers


async def test_hostile_request_ids_are_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"x-request-id": "x" * 65})
    assert response.headers["x-request-id"] != "x" * 65


async def test_health_and_ready(client: httpx.AsyncClient, tmp_path: Path) -> None:
    assert (await client.get("/health")).json() == {"status": "ok", "service": "demo"}
    ready = await client.get("/ready")
    assert ready.json() == {"status": "ready", "service": "demo", "checks": {"database": "ok"}}
    async with serve(demo_app(tmp_path, ready=False)) as down:
        response = await down.get("/ready")
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response.json()["details"]["checks"]["database"].startswith("failed")


async def test_openapi_is_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/login" in spec["paths"]
    assert "/health" in spec["paths"]


def test_the_services_routes_are_matched_first_and_once(tmp_path: Path) -> None:
    """Routing tries routes in order: the service's own come before the probes and the
    documentation's, and sit in the app's own list (an included router is matched twice
    in FastAPI 0.165: kernel/app.py, `_add_routes`)."""
    app = create_app(make_settings(CategoriesSettings, tmp_path))
    routes = app.router.routes
    assert routes[: len(router.routes)] == router.routes
    paths = [getattr(route, "path", None) for route in routes]
    assert paths.index("/health") > len(router.routes) - 1
    assert paths.index("/openapi.json") > paths.index("/health")
