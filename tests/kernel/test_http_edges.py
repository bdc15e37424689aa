"""The HTTP edges of every service: 405 and OPTIONS name every method of a path, a body
that is not JSON is a 415, a refused CORS preflight is in the error format, and nothing
echoes the Host header (no trailing-slash redirects)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict

from retail.kernel.app import create_service_app
from retail.kernel.settings import Settings
from tests.support import assert_error, make_settings, serve

ORIGIN = "https://shop.example"


class EdgeSettings(Settings):
    service_name: ClassVar[str] = "edge"


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def edge_app(tmp_path: Path, **overrides: Any) -> FastAPI:
    # Two routers share a path, as a service's list and create routes do.
    reads, writes = APIRouter(prefix="/api/things"), APIRouter(prefix="/api/things")

    @reads.get("")
    async def list_things() -> list[str]:
        return ["a"]

    @writes.post("", status_code=201)
    async def create_thing(body: Thing) -> dict[str, str]:
        return {"name": body.name}

    @writes.delete("/{thing_id}", status_code=204)
    async def delete_thing(thing_id: str) -> None:
        return None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    settings = make_settings(EdgeSettings, tmp_path, **overrides)
    return create_service_app(
        settings, title="edge", description="", routers=[reads, writes], lifespan=lifespan
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(edge_app(tmp_path, cors_origins=ORIGIN)) as client:
        yield client


async def test_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/things")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET, OPTIONS, POST"
    only_delete = await client.get("/api/things/some-id")
    assert_error(only_delete, 405, "METHOD_NOT_ALLOWED")
    assert only_delete.headers["allow"] == "DELETE, OPTIONS"


async def test_options_answers_204_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.options("/api/things")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, OPTIONS, POST"
    assert response.content == b""
    assert_error(await client.options("/api/nothing-here"), 404, "NOT_FOUND")


async def test_a_body_that_is_not_json_is_a_415(client: httpx.AsyncClient) -> None:
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/xml"}, {}):
        response = await client.post("/api/things", content=b'{"name": "x"}', headers=headers)
        assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    sent_as_json = await client.post(
        "/api/things", content=b'{"name": "x"}', headers={"Content-Type": "application/json"}
    )
    assert sent_as_json.status_code == 201
    # JSON that is not the expected object is still the client's field error.
    assert_error(await client.post("/api/things", json=[1]), 422, "VALIDATION_ERROR")


async def test_refused_cors_preflight_is_in_the_error_format(client: httpx.AsyncClient) -> None:
    refused = await client.options(
        "/api/things",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert_error(refused, 403, "CORS_ORIGIN_NOT_ALLOWED")
    assert refused.headers["content-type"] == "application/json"
    assert "access-control-allow-origin" not in refused.headers
    assert refused.json()["details"] == {"refused": ["origin"]}

    allowed = await client.options(
        "/api/things", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN

    odd_header = await client.options(
        "/api/things",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-Not-Allowed",
        },
    )
    assert_error(odd_header, 403, "CORS_REQUEST_NOT_ALLOWED")


async def test_no_redirect_echoes_the_host_header(client: httpx.AsyncClient) -> None:
    evil = {"Host": "evil.example"}
    with_slash = await client.get("/api/things/", headers=evil)
    assert with_slash.status_code == 200
    assert with_slash.json() == ["a"]
    assert "location" not in with_slash.headers
    created = await client.post("/api/things/", json={"name": "x"}, headers=evil)
    assert created.status_code == 201
    assert "evil.example" not in created.text


async def test_image_urls_never_take_the_host_header(tmp_path: Path) -> None:
    """Uploads on products: with no PUBLIC_BASE_URL the stored URL is relative."""
    from retail.products.adapters.images import LocalImageStore

    store = LocalImageStore(tmp_path, "")
    assert await store.save("abc.png", b"x", "image/png") == "/media/products/abc.png"
    based = LocalImageStore(tmp_path, "https://shop.example/")
    assert await based.save("abd.png", b"x", "image/png") == (
        "https://shop.example/media/products/abd.png"
    )
