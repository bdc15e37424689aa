"""The orders app wired to the real products and inventory apps in this process (ASGI
transports): the internal contracts as the peers actually implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from retail.inventory.config import InventorySettings
from retail.inventory.main import create_app as create_inventory_app
from retail.orders.config import OrdersSettings
from retail.orders.main import create_app as create_orders_app
from retail.products.config import ProductsSettings
from retail.products.main import create_app as create_products_app
from tests.support import FreshHeaders, admin_headers, assert_error, bearer, lifespan, make_settings

ADMIN = FreshHeaders(admin_headers)
ALICE = FreshHeaders(lambda: bearer("alice"))
Json = dict[str, Any]


@dataclass
class System:
    orders: httpx.AsyncClient
    products: httpx.AsyncClient
    inventory: httpx.AsyncClient
    inventory_app: FastAPI
    orders_app: FastAPI

    async def product(self, title: str, price: str, tax: str, stock: int) -> str:
        # Money is a JSON number on the wire (a string is refused).
        body = {"title": title, "price": float(price), "tax_percent": float(tax), "stock": stock}
        response = await self.products.post("/api/products", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        await self.inventory_app.state.followers["products"].catch_up()
        return str(response.json()["id"])

    async def reprice(self, product_id: str, price: str) -> None:
        path = f"/api/products/{product_id}"
        response = await self.products.patch(path, json={"price": float(price)}, headers=ADMIN)
        assert response.status_code == 200, response.text

    async def catalogue_catch_up(self) -> None:
        await self.orders_app.state.followers["products"].catch_up()

    async def stock(self, product_id: str) -> int:
        response = await self.inventory.get(f"/api/inventory/{product_id}", headers=ADMIN)
        assert response.status_code == 200, response.text
        return int(response.json()["stock"])

    async def order(self, *lines: tuple[str, int]) -> httpx.Response:
        items = [{"product_id": p, "quantity": q} for p, q in lines]
        body = {"items": items, "shipping_address": {"line1": "1 Main St", "city": "Springfield"}}
        return await self.orders.post("/api/orders", json=body, headers=ALICE)


def _client(app: FastAPI, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[System]:
    async with _system(tmp_path) as built:
        yield built


@pytest.fixture
async def hand_fed(tmp_path: Path) -> AsyncIterator[System]:
    """Orders' catalogue view fed by hand (`System.catalogue_catch_up`), with a bound no
    test outlasts: what it answers is the view's, not a race with its follower."""
    async with _system(tmp_path, follow_feeds=False, catalogue_max_age_seconds=60) as built:
        yield built


@asynccontextmanager
async def _system(tmp_path: Path, **orders_settings: Any) -> AsyncIterator[System]:
    quiet: dict[str, Any] = {"follow_feeds": False}
    products_app = create_products_app(
        make_settings(ProductsSettings, tmp_path / "products", **quiet)
    )
    inventory_app = create_inventory_app(
        make_settings(InventorySettings, tmp_path / "inventory", **quiet),
        transports={"products": httpx.ASGITransport(app=products_app)},
    )
    orders_app = create_orders_app(
        make_settings(
            OrdersSettings, tmp_path / "orders", recover_pending=False, **orders_settings
        ),
        transports={
            "products": httpx.ASGITransport(app=products_app),
            "inventory": httpx.ASGITransport(app=inventory_app),
        },
    )
    async with AsyncExitStack() as stack:
        for app in (products_app, inventory_app, orders_app):
            await stack.enter_async_context(lifespan(app))
        yield System(
            orders=await stack.enter_async_context(_client(orders_app, "orders")),
            products=await stack.enter_async_context(_client(products_app, "products")),
            inventory=await stack.enter_async_context(_client(inventory_app, "inventory")),
            inventory_app=inventory_app,
            orders_app=orders_app,
        )


async def test_placing_and_cancelling_move_stock_at_inventory(system: System) -> None:
    pen = await system.product("Gel pen", "0.35", "7.25", stock=3)
    placed = await system.order((pen, 2))
    assert placed.status_code == 201, placed.text
    assert (placed.json()["total"], placed.json()["items"][0]["line_total"]) == (0.75, 0.75)
    assert await system.stock(pen) == 1

    short = await system.order((pen, 2))
    assert_error(short, 409, "INSUFFICIENT_STOCK")
    assert short.json()["details"] == {"product_id": pen, "requested": 2, "available": 1}

    cancel = await system.orders.post(f"/api/orders/{placed.json()['id']}/cancel", headers=ALICE)
    assert cancel.json()["status"] == "cancelled"
    assert await system.stock(pen) == 3
    history = await system.inventory.get(f"/api/inventory/{pen}/history", headers=ADMIN)
    kinds = [(m["type"], m["order_id"]) for m in history.json()["items"]]
    assert kinds[:2] == [("release", placed.json()["id"]), ("reservation", placed.json()["id"])]


async def test_an_order_is_all_or_nothing_at_inventory(system: System) -> None:
    lamp = await system.product("Desk lamp", "24.90", "20", stock=5)
    rug = await system.product("Rug", "80", "0", stock=1)
    refused = await system.order((lamp, 2), (rug, 2))
    assert_error(refused, 409, "INSUFFICIENT_STOCK")
    assert (await system.stock(lamp), await system.stock(rug)) == (5, 1)
    unknown = await system.order((lamp, 1), ("no-such-product", 1))
    assert_error(unknown, 422, "UNKNOWN_PRODUCT")
    assert await system.stock(lamp) == 5


async def test_new_orders_are_priced_from_the_catalogue_view_once_it_is_current(
    hand_fed: System,
) -> None:
    """Products' real feed through orders' real follower. The view answers while current (an
    order placed right after a change may carry the old price: the documented trade, bounded
    in test_catalogue_view.py); a product it has not heard of is asked for at products."""
    system = hand_fed
    pen = await system.product("Gel pen", "0.35", "0", stock=9)
    first = await system.order((pen, 1))  # not heard yet: products answers
    assert first.json()["items"][0]["price"] == 0.35
    await system.catalogue_catch_up()
    await system.reprice(pen, "0.40")
    from_view = await system.order((pen, 1))
    assert from_view.json()["items"][0]["price"] == 0.35
    await system.catalogue_catch_up()
    after = await system.order((pen, 1))
    assert after.json()["items"][0]["price"] == 0.40
    ink = await system.product("Ink", "2.50", "0", stock=9)  # new to the view
    assert (await system.order((ink, 1))).json()["items"][0]["price"] == 2.50


async def test_a_product_withdrawn_from_sale_is_refused_from_the_view(hand_fed: System) -> None:
    system = hand_fed
    pen = await system.product("Gel pen", "0.35", "0", stock=9)
    response = await system.products.patch(
        f"/api/products/{pen}", json={"is_active": False}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    await system.catalogue_catch_up()
    assert_error(await system.order((pen, 1)), 422, "UNKNOWN_PRODUCT")
    assert await system.stock(pen) == 9
