"""Products, inventory and orders wired together in this process (ASGI transports), as the
observability tests see them: an order crosses all three, as in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from retail.inventory.config import InventorySettings
from retail.inventory.main import create_app as create_inventory_app
from retail.orders.config import OrdersSettings
from retail.orders.main import create_app as create_orders_app
from retail.products.config import ProductsSettings
from retail.products.main import create_app as create_products_app
from tests.support import admin_headers, bearer, lifespan, make_settings

QUIET = {"follow_feeds": False, "follow_revocations": False}


@dataclass
class Shop:
    apps: dict[str, FastAPI]
    orders: httpx.AsyncClient
    products: httpx.AsyncClient
    inventory: httpx.AsyncClient
    alice: dict[str, str]

    async def product(self, title: str, *, stock: int) -> str:
        body = {"title": title, "price": 2.5, "tax_percent": 10, "stock": stock}
        response = await self.products.post("/api/products", json=body, headers=admin_headers())
        assert response.status_code == 201, response.text
        await self.apps["inventory"].state.followers["products"].catch_up()
        return str(response.json()["id"])

    async def order(self, product_id: str, quantity: int) -> httpx.Response:
        body = {
            "items": [{"product_id": product_id, "quantity": quantity}],
            "shipping_address": {"line1": "1 Main St", "city": "Springfield"},
        }
        return await self.orders.post("/api/orders", json=body, headers=self.alice)


def _client(app: FastAPI, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


@asynccontextmanager
async def open_shop(data_dir: Path, **overrides: Any) -> AsyncIterator[Shop]:
    """The three services; `overrides` go to the settings of each."""
    settings = {**QUIET, **overrides}
    products = create_products_app(
        make_settings(ProductsSettings, data_dir / "products", **settings)
    )
    inventory = create_inventory_app(
        make_settings(InventorySettings, data_dir / "inventory", **settings),
        transports={"products": httpx.ASGITransport(app=products)},
    )
    orders = create_orders_app(
        make_settings(OrdersSettings, data_dir / "orders", recover_pending=False, **settings),
        transports={
            "products": httpx.ASGITransport(app=products),
            "inventory": httpx.ASGITransport(app=inventory),
        },
    )
    apps = {"products": products, "inventory": inventory, "orders": orders}
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(lifespan(app))
        clients = {
            name: await stack.enter_async_context(_client(app, name)) for name, app in apps.items()
        }
        yield Shop(
            apps, clients["orders"], clients["products"], clients["inventory"], bearer("alice")
        )
