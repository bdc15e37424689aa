"""Products' change feed and lookup (internal contracts), and the feeds products follows:
inventory's (the stock read model) and categories' (deleted categories are cleared)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.types import ASGIApp

from retail.kernel.cache import ReadCache, ReadCacheMiddleware
from retail.kernel.events import Event, EventFeed
from retail.kernel.security import TokenCodec
from retail.products import feeds
from tests.products.shop import ADMIN, Shop, open_shop
from tests.support import SECRET, FreshHeaders, assert_error, service_headers

SERVICE = FreshHeaders(lambda: service_headers("orders"))


async def feed(shop: Shop, query: str = "") -> dict[str, Any]:
    response = await shop.client.get(f"/internal/events{query}", headers=SERVICE)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_change_is_in_the_feed_in_order(shop: Shop) -> None:
    made = await shop.product(stock=5)
    url = f"/api/products/{made['id']}"
    await shop.client.patch(url, json={"title": "Renamed"}, headers=ADMIN)
    await shop.client.patch(url, json={"stock": 9}, headers=ADMIN)
    await shop.client.patch(url, json={"price": 0}, headers=ADMIN)  # 422: no event
    await shop.client.post("/api/products", json={"title": "x"}, headers=ADMIN)  # 422
    await shop.client.delete(url, headers=ADMIN)
    body = await feed(shop)
    events = body["events"]
    assert [(e["seq"], e["type"]) for e in events] == [
        (1, "product.created"),
        (2, "product.updated"),
        (3, "product.updated"),
        (4, "product.deleted"),
    ]
    assert body["last_seq"] == 4
    assert {e["key"] for e in events} == {made["id"]}
    created, renamed, restocked, deleted = (e["data"] for e in events)
    assert created == made | {"price_cents": 1999, "tax_bp": 2000, "initial_stock": 5}
    assert renamed["title"] == "Renamed"
    assert "stock_set" not in renamed
    assert "initial_stock" not in renamed
    assert restocked["stock_set"] == 9
    assert deleted == {"id": made["id"]}


async def test_feed_resumes_after_a_cursor_and_pages(shop: Shop) -> None:
    for n in range(5):
        await shop.product(f"P{n}")
    page = await feed(shop, "?after=1&limit=2")
    assert [e["seq"] for e in page["events"]] == [2, 3]
    assert page["last_seq"] == 3
    rest = await feed(shop, "?after=3")
    assert [e["seq"] for e in rest["events"]] == [4, 5]
    assert await feed(shop, "?after=5") == {"events": [], "last_seq": 5}


async def test_feed_is_for_services_only(shop: Shop) -> None:
    assert_error(await shop.client.get("/internal/events"), 401)
    assert_error(await shop.client.get("/internal/events", headers=ADMIN), 401)
    assert_error(await shop.client.get("/internal/events?after=-1", headers=SERVICE), 422)


# ---- lookup ----------------------------------------------------------------------------


async def test_lookup_answers_the_ids_that_exist(shop: Shop) -> None:
    a = await shop.product("A", price=2.50, tax_percent=7.5, stock=3)
    b = await shop.product("B")
    response = await shop.client.post(
        "/internal/products/lookup", json={"ids": [b["id"], "ghost", a["id"]]}, headers=SERVICE
    )
    assert response.status_code == 200, response.text
    found = response.json()["products"]
    assert [p["id"] for p in found] == [b["id"], a["id"]]
    assert found[1] == {
        "id": a["id"],
        "title": "A",
        "price_cents": 250,
        "tax_bp": 750,
        "stock": 3,
        "image_url": None,
        "category_id": None,
        "is_active": True,
    }


async def test_lookup_is_for_services_and_bounded(shop: Shop) -> None:
    url = "/internal/products/lookup"
    assert_error(await shop.client.post(url, json={"ids": []}), 401)
    assert_error(await shop.client.post(url, json={"ids": []}, headers=ADMIN), 401)
    many = {"ids": [f"id-{n}" for n in range(101)]}
    assert_error(await shop.client.post(url, json=many, headers=SERVICE), 422)
    assert_error(await shop.client.post(url, json={"ids": "x"}, headers=SERVICE), 422)
    assert_error(await shop.client.post(url, json={"ids": [], "x": 1}, headers=SERVICE), 422)
    empty = await shop.client.post(url, json={"ids": []}, headers=SERVICE)
    assert empty.json() == {"products": []}


# ---- following inventory ---------------------------------------------------------------


class FakeInventory:
    """Inventory's feed as an httpx transport: it checks the service token like the real
    one, and can be down for a number of calls."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.down_for = 0
        self._tokens = TokenCodec(SECRET)

    def add(self, event_type: str, data: dict[str, Any]) -> None:
        seq = len(self.events) + 1
        key = str(data.get("product_id", ""))
        now = datetime.now(UTC)
        self.events.append(Event(seq=seq, type=event_type, key=key, data=data, occurred_at=now))

    def stock(self, product_id: str, stock: int) -> None:
        data = {"product_id": product_id, "stock": stock, "change": 0, "reason": "t"}
        self.add("stock.changed", data | {"order_id": None})

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down_for:
            self.down_for -= 1
            raise httpx.ConnectError("inventory is starting", request=request)
        assert request.url.path == "/internal/events"
        self._tokens.verify_service(request.headers["authorization"].removeprefix("Bearer "))
        after, limit = int(request.url.params["after"]), int(request.url.params["limit"])
        events = [e for e in self.events if e.seq > after][:limit]
        body = EventFeed(events=events, last_seq=events[-1].seq if events else after)
        return httpx.Response(200, json=body.model_dump(mode="json"))

    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        return {"inventory": httpx.MockTransport(self.handle)}


@pytest.fixture
def inventory() -> FakeInventory:
    return FakeInventory()


async def test_stock_follows_inventory_idempotently(
    tmp_path: Path, categories_app: ASGIApp, inventory: FakeInventory
) -> None:
    async with open_shop(tmp_path, categories_app, transports=inventory.transports()) as shop:
        a, b = await shop.product("A", stock=5), await shop.product("B", stock=1)
        inventory.stock(a["id"], 4)
        inventory.add("stock.removed", {"product_id": "gone"})
        inventory.stock("unknown-product", 7)
        inventory.stock(a["id"], 2)
        inventory.stock(b["id"], 0)
        assert await shop.follow("inventory") == 5
        assert (await shop.get(a["id"]))["stock"] == 2
        assert (await shop.get(b["id"]))["stock"] == 0
        assert await shop.follow("inventory") == 0
        events = (await feed(shop))["events"]
        assert [e["type"] for e in events] == ["product.created"] * 2  # a read model only
    # The cursor is in products' database: a restart resumes, it does not re-apply.
    async with open_shop(tmp_path, categories_app, transports=inventory.transports()) as shop:
        assert await shop.follow("inventory") == 0
        inventory.stock(a["id"], 11)
        assert await shop.follow("inventory") == 1
        assert (await shop.get(a["id"]))["stock"] == 11


def _read_cache(shop: Shop) -> ReadCache:
    layer = shop.app.middleware_stack  # built by the first request
    while not isinstance(layer, ReadCacheMiddleware):
        layer = layer.app  # type: ignore[union-attr]
    return layer.cache


async def test_a_stock_change_keeps_the_other_products_pages_in_the_read_cache(
    tmp_path: Path, categories_app: ASGIApp, inventory: FakeInventory
) -> None:
    # Every order moves stock: were each change to drop every kept page, a shop taking
    # orders would serve none of its product pages from memory (kernel/cache.py).
    async with open_shop(tmp_path, categories_app, transports=inventory.transports()) as shop:
        if shop.app.state.cache_version is None:
            pytest.skip("answers are kept on SQLite only (kernel/db.py: cache_version)")
        a, b = await shop.product("A", stock=5), await shop.product("B", stock=1)
        page_a, page_b = (f"/api/products/{p['id']}" for p in (a, b))
        for _ in range(2):  # kept on the second miss
            for path in (page_a, page_b, "/api/products"):
                assert (await shop.client.get(path)).status_code == 200
        entries = _read_cache(shop).entries
        kept_a, kept_b = entries[(page_a, b"")][0], entries[(page_b, b"")][0]
        inventory.stock(a["id"], 4)
        assert await shop.follow("inventory") == 1
        assert (await shop.get(b["id"]))["stock"] == 1
        assert entries[(page_b, b"")][0] is kept_b  # served from memory, not read again
        assert (await shop.get(a["id"]))["stock"] == 4  # its own page is read afresh
        listed = (await shop.client.get("/api/products")).json()["products"]
        assert {p["title"]: p["stock"] for p in listed} == {"A": 4, "B": 1}  # lists too
        assert entries[(page_a, b"")][0] is not kept_a  # kept again at once: it is in use
        # Any other write names nothing, so it drops every kept page.
        await shop.client.patch(page_a, json={"title": "A2"}, headers=ADMIN)
        assert (await shop.get(b["id"]))["title"] == "B"
        assert entries[(page_b, b"")][0] is not kept_b
        assert (await shop.get(a["id"]))["title"] == "A2"
        kept_b = entries[(page_b, b"")][0]
        assert (await shop.get(b["id"]))["title"] == "B"
        assert entries[(page_b, b"")][0] is kept_b
        # A commit of another connection (another process, `retail import`) is seen too.
        with sqlite3.connect(tmp_path / "products.db") as other:
            other.execute("UPDATE products SET title = 'B3' WHERE id = ?", (b["id"],))
        assert (await shop.get(b["id"]))["title"] == "B3"


async def test_a_malformed_stock_event_stops_the_feed_instead_of_skipping_it(
    tmp_path: Path, categories_app: ASGIApp, inventory: FakeInventory
) -> None:
    inventory.add("stock.changed", {"product_id": "p", "stock": -3})
    inventory.stock("p", 1)
    async with open_shop(tmp_path, categories_app, transports=inventory.transports()) as shop:
        with pytest.raises(ValidationError):
            await shop.follow("inventory")
        uow = shop.app.state.unit_of_work(readonly=True)
        assert await feeds.feed_cursor(uow, feeds.INVENTORY_FEED) == 0


async def test_followers_run_in_the_background_and_wait_for_inventory(
    tmp_path: Path, categories_app: ASGIApp, inventory: FakeInventory
) -> None:
    inventory.down_for = 2  # not running yet: the follower retries
    async with open_shop(
        tmp_path,
        categories_app,
        transports=inventory.transports(),
        follow_feeds=True,
        feed_poll_seconds=0.02,
    ) as shop:
        made = await shop.product(stock=5)
        inventory.stock(made["id"], 3)
        for _ in range(250):
            if (await shop.get(made["id"]))["stock"] == 3:
                break
            await asyncio.sleep(0.02)
        assert (await shop.get(made["id"]))["stock"] == 3
        assert inventory.down_for == 0


# ---- following categories --------------------------------------------------------------


async def test_deleting_a_category_clears_it_from_its_products(shop: Shop) -> None:
    hats, shoes = await shop.category("Hats"), await shop.category("Shoes")
    cap = await shop.product("Cap", category_id=hats)
    beanie = await shop.product("Beanie", category_id=hats)
    boot = await shop.product("Boot", category_id=shoes)
    await shop.delete_category(hats)
    assert await shop.follow("categories") == 3  # two created, one deleted
    assert (await shop.get(cap["id"]))["category_id"] is None
    assert (await shop.get(beanie["id"]))["category_id"] is None
    assert (await shop.get(boot["id"]))["category_id"] == shoes
    listed = (await shop.client.get(f"/api/products?category_id={hats}")).json()
    assert listed["total"] == 0
    updates = [e for e in (await feed(shop))["events"] if e["type"] == "product.updated"]
    assert sorted(e["key"] for e in updates) == sorted([cap["id"], beanie["id"]])
    assert all(e["data"]["category_id"] is None for e in updates)
    assert await shop.follow("categories") == 0
    again = await shop.client.post(
        "/api/products", json={"title": "x", "price": 1, "category_id": hats}, headers=ADMIN
    )
    assert_error(again, 422, "UNKNOWN_CATEGORY")
