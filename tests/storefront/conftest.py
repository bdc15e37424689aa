"""The six services' five with a database (search is not called by the storefront), wired
together in this process as the RetailHub storefront sees them, and a client that sends
what the storefront's axios instances send (frontend/src/api/axios.js of the original
repository): JSON bodies, and the stored access token on every request once signed in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from retail.auth.config import AuthSettings
from retail.auth.main import create_app as create_auth_app
from retail.categories.config import CategoriesSettings
from retail.categories.main import create_app as create_categories_app
from retail.inventory.config import InventorySettings
from retail.inventory.main import create_app as create_inventory_app
from retail.orders.config import OrdersSettings
from retail.orders.main import create_app as create_orders_app
from retail.products.config import ProductsSettings
from retail.products.main import create_app as create_products_app
from tests.support import lifespan, make_settings

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@retailhub.test", "admin-pass-123"
Json = dict[str, Any]
# What every axios request carries (axios.create's headers, and axios' own Accept).
AXIOS_HEADERS = {"Accept": "application/json, text/plain, */*"}


@dataclass
class Browser:
    """One browser's axios instances: a base URL per service, one localStorage token."""

    services: dict[str, httpx.AsyncClient]
    token: str | None = None
    stored: Json = field(default_factory=dict)

    def _headers(self) -> dict[str, str]:
        headers = dict(AXIOS_HEADERS)
        if self.token:  # the request interceptor: the stored token, whatever the call
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def send(
        self, service: str, method: str, path: str, body: object = None
    ) -> httpx.Response:
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
            return await self.services[service].request(method, path, json=body, headers=headers)
        return await self.services[service].request(method, path, headers=headers)

    async def login(self, email: str, password: str) -> Json:
        """AuthContext.login: keeps access_token, refresh_token and user."""
        response = await self.send(
            "auth", "POST", "/api/auth/login", {"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        body: Json = response.json()
        self.token = body["access_token"]
        self.stored = {"refreshToken": body["refresh_token"], "user": body["user"]}
        return body


@dataclass
class System:
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]

    def browser(self) -> Browser:
        return Browser(self.clients)

    async def follow(self, service: str, feed: str) -> None:
        await self.apps[service].state.followers[feed].catch_up()

    async def settle_stock(self) -> None:
        """Inventory takes the stock admins gave products; products then shows inventory's."""
        await self.follow("inventory", "products")
        await self.follow("products", "inventory")


def _asgi(app: FastAPI) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app)


def _apps(data: Path) -> dict[str, FastAPI]:
    quiet: dict[str, Any] = {"follow_feeds": False}
    categories = create_categories_app(make_settings(CategoriesSettings, data / "categories"))
    # Products and inventory follow each other: the map is read in products' lifespan, so
    # inventory's transport can join it once inventory exists.
    products_peers: dict[str, httpx.AsyncBaseTransport] = {"categories": _asgi(categories)}
    products = create_products_app(
        make_settings(ProductsSettings, data / "products", **quiet), transports=products_peers
    )
    inventory = create_inventory_app(
        make_settings(InventorySettings, data / "inventory", **quiet),
        transports={"products": _asgi(products)},
    )
    products_peers["inventory"] = _asgi(inventory)
    orders = create_orders_app(
        # Its catalogue view is fed by hand (`follow("orders", "products")`): until then
        # products answers every lookup.
        make_settings(OrdersSettings, data / "orders", recover_pending=False, **quiet),
        transports={"products": _asgi(products), "inventory": _asgi(inventory)},
    )
    auth_settings = make_settings(
        AuthSettings,
        data / "auth",
        bcrypt_rounds=4,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
    )
    auth = create_auth_app(auth_settings, transports={"products": _asgi(products)})
    return {
        "auth": auth,
        "categories": categories,
        "products": products,
        "inventory": inventory,
        "orders": orders,
    }


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    apps = _apps(tmp_path)
    async with AsyncExitStack() as stack:
        clients = {}
        for name, app in apps.items():
            await stack.enter_async_context(lifespan(app))
            client = httpx.AsyncClient(transport=_asgi(app), base_url=f"http://{name}")
            clients[name] = await stack.enter_async_context(client)
        yield System(apps, clients)
