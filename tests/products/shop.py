"""The products app wired to a real categories app in-process, and helpers to drive both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp

from retail.products.config import ProductsSettings
from retail.products.main import create_app
from tests.support import FreshHeaders, admin_headers, make_settings, serve

ADMIN = FreshHeaders(admin_headers)
Json = dict[str, Any]


@dataclass
class Shop:
    """Products (the app under test) and categories (a real peer), both in this process."""

    client: httpx.AsyncClient
    app: FastAPI
    categories: httpx.AsyncClient
    media_root: Path

    async def category(self, name: str) -> str:
        response = await self.categories.post("/api/categories", json={"name": name}, headers=ADMIN)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def delete_category(self, category_id: str) -> None:
        response = await self.categories.delete(f"/api/categories/{category_id}", headers=ADMIN)
        assert response.status_code == 204, response.text

    async def product(self, title: str = "Boot", **fields: Any) -> Json:
        body = {"title": title, "price": 19.99, "tax_percent": 20, **fields}
        response = await self.client.post("/api/products", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        made: Json = response.json()
        return made

    async def get(self, product_id: str) -> Json:
        response = await self.client.get(f"/api/products/{product_id}")
        assert response.status_code == 200, response.text
        found: Json = response.json()
        return found

    async def follow(self, feed: str) -> int:
        applied: int = await self.app.state.followers[feed].catch_up()
        return applied


@asynccontextmanager
async def open_shop(
    data_dir: Path,
    categories_app: ASGIApp,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    **overrides: Any,
) -> AsyncIterator[Shop]:
    """Followers are off unless asked for: tests drive them with `Shop.follow`."""
    settings = make_settings(ProductsSettings, data_dir, **{"follow_feeds": False, **overrides})
    categories = httpx.ASGITransport(app=categories_app)
    app = create_app(settings, transports={"categories": categories, **(transports or {})})
    async with (
        serve(app) as client,
        httpx.AsyncClient(transport=categories, base_url="http://categories") as peer,
    ):
        yield Shop(client, app, peer, settings.media_dir() / "products")
