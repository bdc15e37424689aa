"""The inventory service through its real app: the internal reservation API, the admin API,
following a (fake) products feed, and inventory's own feed."""

# No `from __future__ import annotations`: the fake products feed declares its FastAPI
# dependency inside a function.

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from retail.inventory.config import InventorySettings
from retail.inventory.main import create_app
from retail.kernel.events import EventReader, InMemoryEventLog, feed_router
from tests.support import (
    FreshHeaders,
    admin_headers,
    assert_error,
    bearer,
    make_settings,
    serve,
    service_headers,
    tokens,
)

ADMIN = FreshHeaders(admin_headers)
ORDERS = FreshHeaders(lambda: service_headers("orders"))


class FakeProducts:
    """A products service reduced to its feed: the kernel's feed route over a memory log."""

    def __init__(self) -> None:
        self.log = InMemoryEventLog()
        self.app = FastAPI()
        self.app.state.tokens = tokens

        async def reader() -> EventReader:
            return self.log.read_after

        self.app.include_router(feed_router(reader))

    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        return {"products": httpx.ASGITransport(app=self.app)}

    async def created(self, pid: str, stock: int, title: str = "", category: str = "c1") -> None:
        data = self._product(pid, title or pid.title(), category) | {"initial_stock": stock}
        await self.log.append("product.created", pid, data)

    async def updated(self, pid: str, title: str, stock_set: int | None = None) -> None:
        data = self._product(pid, title, "c2")
        if stock_set is not None:
            data["stock_set"] = stock_set
        await self.log.append("product.updated", pid, data)

    async def deleted(self, pid: str) -> None:
        await self.log.append("product.deleted", pid, {"id": pid})

    @staticmethod
    def _product(pid: str, title: str, category: str) -> dict[str, Any]:
        return {
            "id": pid,
            "title": title,
            "description": "",
            "price": 9.99,
            "price_cents": 999,
            "tax_percent": 20.0,
            "tax_bp": 2000,
            "image_url": None,
            "category_id": category,
            "stock": 0,
            "add_ons": [],
            "combos": [],
            "created_at": "2026-01-01T00:00:00+00:00",
        }


@dataclass
class Inventory:
    client: httpx.AsyncClient
    app: FastAPI
    products: FakeProducts

    async def sync(self) -> int:
        applied: int = await self.app.state.followers["products"].catch_up()
        return applied

    async def stock_up(self, **levels: int) -> None:
        for pid, stock in levels.items():
            await self.products.created(pid, stock)
        await self.sync()

    async def stock(self, pid: str) -> int:
        response = await self.client.get(f"/api/inventory/{pid}", headers=ADMIN)
        assert response.status_code == 200, response.text
        value: int = response.json()["stock"]
        return value

    async def reserve(self, order_id: str, **quantities: int) -> httpx.Response:
        lines = [{"product_id": p, "quantity": q} for p, q in quantities.items()]
        body = {"order_id": order_id, "lines": lines}
        return await self.client.post("/internal/reservations", json=body, headers=ORDERS)


@pytest.fixture
def products() -> FakeProducts:
    return FakeProducts()


@pytest.fixture
async def inv(tmp_path: Path, products: FakeProducts) -> AsyncIterator[Inventory]:
    settings = make_settings(InventorySettings, tmp_path, follow_feeds=False)
    app = create_app(settings, transports=products.transports())
    async with serve(app) as client:
        yield Inventory(client, app, products)


# --- internal reservation API ----------------------------------------------------------


async def test_reserve_repeat_release_and_status(inv: Inventory) -> None:
    await inv.stock_up(a=5, b=3)
    first = await inv.reserve("order-1", b=1, a=2)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "order_id": "order-1",
        "status": "reserved",
        "lines": [{"product_id": "a", "quantity": 2}, {"product_id": "b", "quantity": 1}],
    }
    assert (await inv.stock("a"), await inv.stock("b")) == (3, 2)
    again = await inv.reserve("order-1", b=1, a=2)
    assert (again.status_code, again.json()) == (200, first.json())
    assert await inv.stock("a") == 3
    status = await inv.client.get("/internal/reservations/order-1", headers=ORDERS)
    assert status.json() == first.json()

    for _ in range(2):
        released = await inv.client.post("/internal/reservations/order-1/release", headers=ORDERS)
        assert released.json() == {"order_id": "order-1", "status": "released"}
    assert (await inv.stock("a"), await inv.stock("b")) == (5, 3)
    status = await inv.client.get("/internal/reservations/order-1", headers=ORDERS)
    assert status.json()["status"] == "released"
    assert_error(await inv.reserve("order-1", a=1), 409, "RESERVATION_RELEASED")


async def test_refusals_change_nothing(inv: Inventory) -> None:
    await inv.stock_up(a=5, b=1)
    short = await inv.reserve("o1", a=1, b=2)
    assert_error(short, 409, "INSUFFICIENT_STOCK")
    assert short.json()["details"] == {"product_id": "b", "requested": 2, "available": 1}
    unknown = await inv.reserve("o1", a=1, nope=1)
    assert_error(unknown, 422, "UNKNOWN_PRODUCT")
    assert unknown.json()["details"] == {"product_id": "nope"}
    assert (await inv.stock("a"), await inv.stock("b")) == (5, 1)
    status = await inv.client.get("/internal/reservations/o1", headers=ORDERS)
    assert status.json() == {"order_id": "o1", "status": "none", "lines": []}


async def test_unknown_orders_release_as_none(inv: Inventory) -> None:
    released = await inv.client.post("/internal/reservations/never/release", headers=ORDERS)
    assert released.json() == {"order_id": "never", "status": "none"}
    # From then on the order is closed: a reserve call arriving late takes nothing.
    await inv.stock_up(a=5)
    assert_error(await inv.reserve("never", a=1), 409, "RESERVATION_RELEASED")
    assert await inv.stock("a") == 5


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": "o1", "lines": []},
        {"order_id": "o1", "lines": [{"product_id": "a", "quantity": 0}]},
        {"order_id": "o1", "lines": [{"product_id": "a", "quantity": 10_001}]},
        {"order_id": "o1", "lines": [{"product_id": "a", "quantity": -1}]},
        {"order_id": "o1", "lines": [{"product_id": f"p{n}", "quantity": 1} for n in range(101)]},
        {"order_id": "o1", "lines": [{"product_id": "", "quantity": 1}]},
        {"order_id": "o 1", "lines": [{"product_id": "a", "quantity": 1}]},
        {"order_id": "x" * 65, "lines": [{"product_id": "a", "quantity": 1}]},
        {"lines": [{"product_id": "a", "quantity": 1}]},
        {"order_id": "o1", "lines": [{"product_id": "a", "quantity": 1, "price": 1}]},
    ],
)
async def test_bad_reservations_are_422(inv: Inventory, body: dict[str, Any]) -> None:
    await inv.stock_up(a=5)
    response = await inv.client.post("/internal/reservations", json=body, headers=ORDERS)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert await inv.stock("a") == 5


async def test_a_hundred_lines_with_duplicates_are_merged(inv: Inventory) -> None:
    await inv.stock_up(a=500)
    lines = [{"product_id": "a", "quantity": 5}] * 100
    body = {"order_id": "big", "lines": lines}
    response = await inv.client.post("/internal/reservations", json=body, headers=ORDERS)
    assert response.json()["lines"] == [{"product_id": "a", "quantity": 500}]
    assert await inv.stock("a") == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/internal/reservations"),
        ("POST", "/internal/reservations/o1/release"),
        ("GET", "/internal/reservations/o1"),
        ("GET", "/internal/events"),
    ],
)
async def test_internal_routes_are_for_services_only(
    inv: Inventory, method: str, path: str
) -> None:
    body = {"order_id": "o1", "lines": [{"product_id": "a", "quantity": 1}]}
    for headers in [{}, ADMIN, bearer("c1", "customer"), {"Authorization": "Bearer x.y.z"}]:
        response = await inv.client.request(method, path, json=body, headers=headers)
        assert_error(response, 401, "UNAUTHORIZED")


async def test_two_apps_on_one_database_never_oversell(
    tmp_path: Path, products: FakeProducts
) -> None:
    settings = make_settings(InventorySettings, tmp_path, follow_feeds=False)
    first_app = create_app(settings, transports=products.transports())
    second_app = create_app(settings, transports=products.transports())
    async with serve(first_app) as first, serve(second_app) as second:
        await Inventory(first, first_app, products).stock_up(a=10)
        answers = await asyncio.gather(
            *(
                Inventory(second if n % 2 else first, first_app, products).reserve(f"o{n}", a=1)
                for n in range(50)
            )
        )
        assert sorted(r.status_code for r in answers) == [200] * 10 + [409] * 40
        assert await Inventory(second, second_app, products).stock("a") == 0


# --- admin API --------------------------------------------------------------------------


async def test_admin_routes_need_an_admin(inv: Inventory) -> None:
    await inv.stock_up(a=5)
    body = {"stock": 1, "reason": "count"}
    calls = [
        ("GET", "/api/inventory"),
        ("GET", "/api/inventory/a"),
        ("GET", "/api/inventory/a/history"),
        ("PATCH", "/api/inventory/a"),
    ]
    for method, path in calls:
        assert_error(await inv.client.request(method, path, json=body), 401, "UNAUTHORIZED")
        customer = bearer("c1", "customer")
        response = await inv.client.request(method, path, json=body, headers=customer)
        assert_error(response, 403, "FORBIDDEN")
        response = await inv.client.request(method, path, json=body, headers=ORDERS)
        assert_error(response, 401)
    assert await inv.stock("a") == 5


async def test_list_is_paginated_by_title(inv: Inventory) -> None:
    for n in range(7):
        await inv.products.created(f"p{n}", n, title=f"Item {6 - n}")
    await inv.sync()
    first = (await inv.client.get("/api/inventory?limit=3", headers=ADMIN)).json()
    assert first["total"] == 7
    assert (first["page"], first["limit"], first["total_pages"]) == (1, 3, 3)
    assert [i["title"] for i in first["items"]] == ["Item 0", "Item 1", "Item 2"]
    assert set(first["items"][0]) >= {"product_id", "title", "stock", "category_id"}
    assert first["items"][0] | {"updated_at": None} == {
        "product_id": "p6",
        "title": "Item 0",
        "stock": 6,
        "category_id": "c1",
        "low_stock_threshold": None,
        "updated_at": None,
    }
    last = (await inv.client.get("/api/inventory?limit=3&page=3", headers=ADMIN)).json()
    assert [i["product_id"] for i in last["items"]] == ["p0"]
    for bad in ["page=0", "limit=0", "limit=101", "low_stock=maybe"]:
        assert_error(await inv.client.get(f"/api/inventory?{bad}", headers=ADMIN), 422)


async def test_low_stock_uses_own_threshold_or_the_default(
    tmp_path: Path, products: FakeProducts
) -> None:
    settings = make_settings(InventorySettings, tmp_path, follow_feeds=False, low_stock_threshold=3)
    app = create_app(settings, transports=products.transports())
    async with serve(app) as client:
        inv = Inventory(client, app, products)
        await inv.stock_up(a=2, b=3, c=4, d=50)
        patch = {"stock": 50, "reason": "recount", "low_stock_threshold": 60}
        assert (await client.patch("/api/inventory/d", json=patch, headers=ADMIN)).is_success
        low = (await client.get("/api/inventory?low_stock=true", headers=ADMIN)).json()
        assert [i["product_id"] for i in low["items"]] == ["a", "b", "d"]
        assert low["total"] == 3
        everything = (await client.get("/api/inventory?low_stock=false", headers=ADMIN)).json()
        assert everything["total"] == 4


async def test_patch_sets_the_level(inv: Inventory) -> None:
    await inv.stock_up(a=5)
    body = {"stock": 12, "reason": "delivery", "low_stock_threshold": 2}
    response = await inv.client.patch("/api/inventory/a", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["stock"] == 12
    assert response.json()["low_stock_threshold"] == 2
    cleared = {"stock": 12, "reason": "default threshold", "low_stock_threshold": None}
    response = await inv.client.patch("/api/inventory/a", json=cleared, headers=ADMIN)
    assert response.json()["low_stock_threshold"] is None
    kept = await inv.client.patch(
        "/api/inventory/a", json={"stock": 1, "reason": "x"}, headers=ADMIN
    )
    assert (kept.json()["stock"], kept.json()["low_stock_threshold"]) == (1, None)


async def test_patch_compare_and_set(inv: Inventory) -> None:
    await inv.stock_up(a=5)
    await inv.reserve("o1", a=2)
    stale = {"stock": 10, "reason": "recount", "expected_stock": 5}
    response = await inv.client.patch("/api/inventory/a", json=stale, headers=ADMIN)
    assert_error(response, 409, "STOCK_CHANGED")
    assert response.json()["details"] == {"expected": 5, "actual": 3}
    fresh = stale | {"expected_stock": 3}
    response = await inv.client.patch("/api/inventory/a", json=fresh, headers=ADMIN)
    assert response.json()["stock"] == 10


@pytest.mark.parametrize(
    "body",
    [
        {"stock": -1, "reason": "x"},
        {"stock": 1},
        {"stock": 1, "reason": ""},
        {"stock": 1, "reason": "   "},
        {"stock": 1, "reason": "x" * 201},
        {"stock": "lots", "reason": "x"},
        {"stock": 1, "reason": "x", "expected_stock": -1},
        {"stock": 1, "reason": "x", "low_stock_threshold": -1},
        {"stock": 1, "reason": "x", "colour": "red"},
        {"reason": "x"},
    ],
)
async def test_bad_patches_are_422(inv: Inventory, body: dict[str, Any]) -> None:
    await inv.stock_up(a=5)
    response = await inv.client.patch("/api/inventory/a", json=body, headers=ADMIN)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert await inv.stock("a") == 5


async def test_unknown_products_are_404(inv: Inventory) -> None:
    body = {"stock": 1, "reason": "x"}
    for pid in ["nope", "00000000-0000-0000-0000-000000000000", "' OR 1=1"]:
        assert_error(await inv.client.get(f"/api/inventory/{pid}", headers=ADMIN), 404)
        response = await inv.client.patch(f"/api/inventory/{pid}", json=body, headers=ADMIN)
        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        history = await inv.client.get(f"/api/inventory/{pid}/history", headers=ADMIN)
        assert_error(history, 404, "PRODUCT_NOT_FOUND")


async def test_history_lists_every_movement_newest_first(inv: Inventory) -> None:
    await inv.stock_up(a=5)
    body = {"stock": 8, "reason": "delivery"}
    await inv.client.patch("/api/inventory/a", json=body, headers=ADMIN)
    await inv.reserve("o1", a=3)
    await inv.client.post("/internal/reservations/o1/release", headers=ORDERS)
    page = (await inv.client.get("/api/inventory/a/history", headers=ADMIN)).json()
    assert page["total"] == 4
    rows = [
        {k: v for k, v in row.items() if k not in {"id", "created_at"}} for row in page["items"]
    ]
    common = {"product_id": "a"}
    assert rows == [
        common | {"type": "release", "before": 5, "after": 8, "change": 3,
                  "reason": "released from order", "actor": "service:orders", "order_id": "o1"},
        common | {"type": "reservation", "before": 8, "after": 5, "change": -3,
                  "reason": "reserved for order", "actor": "service:orders", "order_id": "o1"},
        common | {"type": "admin_set", "before": 5, "after": 8, "change": 3,
                  "reason": "delivery", "actor": "admin-1", "order_id": None},
        common | {"type": "initial", "before": 0, "after": 5, "change": 5,
                  "reason": "initial stock", "actor": "service:products", "order_id": None},
    ]  # fmt: skip
    assert all(row["created_at"].endswith(("Z", "+00:00")) for row in page["items"])
    second = (await inv.client.get("/api/inventory/a/history?limit=3&page=2", headers=ADMIN)).json()
    assert [r["type"] for r in second["items"]] == ["initial"]
    assert second["total_pages"] == 2


# --- following products, and inventory's own feed -------------------------------------


async def test_levels_follow_the_products_feed(inv: Inventory) -> None:
    await inv.products.created("a", 4, title="Apple")
    await inv.products.created("b", 1)
    await inv.products.updated("a", "Green apple")
    await inv.products.updated("b", "Banana", stock_set=9)
    await inv.products.created("c", 2)
    await inv.products.deleted("c")
    await inv.products.log.append("product.image_added", "a", {"id": "a"})
    assert await inv.sync() == 7
    assert await inv.sync() == 0
    items = (await inv.client.get("/api/inventory", headers=ADMIN)).json()["items"]
    assert [(i["product_id"], i["title"], i["stock"], i["category_id"]) for i in items] == [
        ("b", "Banana", 9, "c2"),
        ("a", "Green apple", 4, "c2"),
    ]
    history = (await inv.client.get("/api/inventory/b/history", headers=ADMIN)).json()
    assert [(h["type"], h["reason"], h["before"], h["after"]) for h in history["items"]] == [
        ("admin_set", "set via products", 1, 9),
        ("initial", "initial stock", 0, 1),
    ]
    assert_error(await inv.client.get("/api/inventory/c", headers=ADMIN), 404)
    # A removed product keeps its history.
    assert (await inv.client.get("/api/inventory/c/history", headers=ADMIN)).json()["total"] == 1


async def test_the_follower_runs_in_the_background(tmp_path: Path, products: FakeProducts) -> None:
    settings = make_settings(InventorySettings, tmp_path, feed_poll_seconds=0.01)
    app = create_app(settings, transports=products.transports())
    async with serve(app) as client:
        await products.created("a", 3)
        for _ in range(300):
            if (await client.get("/api/inventory", headers=ADMIN)).json()["total"]:
                break
            await asyncio.sleep(0.01)
        assert (await client.get("/api/inventory/a", headers=ADMIN)).json()["stock"] == 3


async def test_the_stock_feed_is_ordered_and_resumable(inv: Inventory) -> None:
    await inv.stock_up(a=5)
    await inv.reserve("o1", a=2)
    await inv.client.patch("/api/inventory/a", json={"stock": 7, "reason": "count"}, headers=ADMIN)
    await inv.products.deleted("a")
    await inv.sync()
    feed = (await inv.client.get("/internal/events", headers=ORDERS)).json()
    assert [(e["seq"], e["type"], e["key"]) for e in feed["events"]] == [
        (1, "stock.changed", "a"),
        (2, "stock.changed", "a"),
        (3, "stock.changed", "a"),
        (4, "stock.removed", "a"),
    ]
    assert [e["data"] for e in feed["events"]] == [
        {"product_id": "a", "stock": 5, "change": 5, "reason": "initial stock", "order_id": None},
        {"product_id": "a", "stock": 3, "change": -2, "reason": "reserved for order",
         "order_id": "o1"},
        {"product_id": "a", "stock": 7, "change": 4, "reason": "count", "order_id": None},
        {"product_id": "a"},
    ]  # fmt: skip
    assert feed["last_seq"] == 4
    page = (await inv.client.get("/internal/events?after=1&limit=2", headers=ORDERS)).json()
    assert [e["seq"] for e in page["events"]] == [2, 3]
    assert page["last_seq"] == 3
    empty = (await inv.client.get("/internal/events?after=4", headers=ORDERS)).json()
    assert empty == {"events": [], "last_seq": 4}


async def test_probes(inv: Inventory) -> None:
    assert (await inv.client.get("/health")).json() == {"status": "ok", "service": "inventory"}
    ready = (await inv.client.get("/ready")).json()
    assert ready == {"status": "ready", "service": "inventory", "checks": {"database": "ok"}}
    paths = (await inv.client.get("/openapi.json")).json()["paths"]
    assert {
        "/api/inventory",
        "/api/inventory/{product_id}",
        "/api/inventory/{product_id}/history",
        "/internal/reservations",
        "/internal/reservations/{order_id}",
        "/internal/reservations/{order_id}/release",
        "/internal/events",
    } <= set(paths)
