"""`POST /api/products/bulk` and `GET /api/products/export`, through the real app with a real
categories service: upsert by sku, per-item results, atomic requests, categories by name,
events in the feed, the export's CSV and its round trip, and the sku and brand filters."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.products.shop import Shop
from tests.support import admin_headers, assert_error, bearer, service_headers

Json = dict[str, Any]


def item(sku: str | None, title: str = "Tea", **fields: Any) -> Json:
    body: Json = {"title": title, "price": 4.5, **fields}
    if sku is not None:
        body["sku"] = sku
    return body


async def bulk(shop: Shop, items: list[Json], query: str = "", status: int = 200) -> Json:
    response = await shop.client.post(
        f"/api/products/bulk{query}", json={"products": items}, headers=admin_headers()
    )
    assert response.status_code == status, response.text
    answer: Json = response.json()
    return answer


async def listed(shop: Shop, query: str) -> list[Json]:
    response = await shop.client.get(
        f"/api/products?{query}&include_inactive=true", headers=admin_headers()
    )
    assert response.status_code == 200, response.text
    products: list[Json] = response.json()["products"]
    return products


async def feed_types(shop: Shop) -> list[str]:
    response = await shop.client.get("/internal/events?limit=1000", headers=service_headers())
    return [event["type"] for event in response.json()["events"]]


async def test_creates_then_updates_then_leaves_unchanged(shop: Shop) -> None:
    first = await bulk(shop, [item("T-1", brand="Tetley", stock=7), item("T-2", price=3)])
    assert (first["created"], first["updated"], first["unchanged"], first["failed"]) == (2, 0, 0, 0)
    assert [r["status"] for r in first["results"]] == ["created", "created"]
    assert [r["index"] for r in first["results"]] == [0, 1]
    one = await shop.get(first["results"][0]["id"])
    assert (one["sku"], one["brand"], one["stock"], one["price"]) == ("T-1", "Tetley", 7, 4.5)

    again = await bulk(shop, [item("T-1", brand="Tetley", stock=7), item("T-2", price=3.25)])
    assert [r["status"] for r in again["results"]] == ["unchanged", "updated"]
    assert again["results"][1]["id"] == first["results"][1]["id"]
    assert (await shop.get(first["results"][1]["id"]))["price"] == 3.25
    created = [e for e in await feed_types(shop) if e == "product.created"]
    assert len(created) == 2  # an unchanged item writes no event


async def test_stock_travels_in_the_feed_on_create_and_on_change(shop: Shop) -> None:
    made = await bulk(shop, [item("S-1", stock=5), item("S-2")])
    await bulk(shop, [item("S-1", stock=9), item("S-2")])
    response = await shop.client.get("/internal/events", headers=service_headers())
    events = response.json()["events"]
    assert [
        (e["type"], e["data"].get("initial_stock"), e["data"].get("stock_set")) for e in events
    ] == [
        ("product.created", 5, None),
        ("product.created", 0, None),
        ("product.updated", None, 9),
    ]
    assert events[0]["key"] == made["results"][0]["id"]
    assert events[0]["data"]["sku"] == "S-1"


async def test_invalid_items_fail_alone_with_their_reasons(shop: Shop) -> None:
    answer = await bulk(
        shop,
        [
            item("OK-1"),
            item("BAD-1", price=-1),
            item("bad sku!"),
            {"title": "No price", "sku": "BAD-3"},
            item("BAD-4", colour="red"),
            item("OK-2", category="Nowhere"),
        ],
    )
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == ["created", "failed", "failed", "failed", "failed", "failed"]
    fields = [[e["field"] for e in r["errors"]] for r in answer["results"]]
    assert fields[1:] == [["price"], ["sku"], ["price"], ["colour"], ["category"]]
    assert answer["results"][5]["errors"][0]["type"] == "unknown_category"
    assert answer["results"][1]["sku"] == "BAD-1"
    assert [p["sku"] for p in await listed(shop, "limit=100")] == ["OK-1"]


async def test_duplicate_skus_in_one_request_fail_both(shop: Shop) -> None:
    answer = await bulk(shop, [item("D-1"), item("D-1", title="Other"), item("D-2")])
    assert [r["status"] for r in answer["results"]] == ["failed", "failed", "created"]
    assert answer["results"][0]["errors"][0]["type"] == "duplicate_sku"


async def test_atomic_stores_nothing_when_one_item_fails(shop: Shop) -> None:
    answer = await bulk(
        shop,
        [item("A-1"), item("A-2", category="Teas"), item("A-3", price=0)],
        "?atomic=true&create_categories=true",
    )
    assert (answer["failed"], answer["created"]) == (3, 0)
    assert answer["results"][0]["errors"][0]["type"] == "atomic"
    assert await listed(shop, "limit=100") == []
    categories = await shop.categories.get("/api/categories")
    assert categories.json()["total"] == 0  # no category made for a request that failed
    assert await feed_types(shop) == []


async def test_categories_by_name_and_created_on_request(shop: Shop) -> None:
    teas = await shop.category("Teas")
    answer = await bulk(shop, [item("C-1", category="teas"), item("C-2", category="Coffees")])
    assert [r["status"] for r in answer["results"]] == ["created", "failed"]
    answer = await bulk(
        shop,
        [item("C-1", category="TEAS"), item("C-2", category="Coffees")],
        "?create_categories=true",
    )
    assert [r["status"] for r in answer["results"]] == ["unchanged", "created"]
    names = {
        c["name"]: c["id"]
        for c in (await shop.categories.get("/api/categories")).json()["categories"]
    }
    assert set(names) == {"Teas", "Coffees"}
    coffee = await shop.get(answer["results"][1]["id"])
    assert coffee["category_id"] == names["Coffees"] != teas


async def test_over_a_thousand_items_is_refused(shop: Shop) -> None:
    response = await shop.client.post(
        "/api/products/bulk",
        json={"products": [item(f"X-{n}") for n in range(1001)]},
        headers=admin_headers(),
    )
    assert_error(response, 422)


async def test_only_admins_import_and_export(shop: Shop) -> None:
    customer = bearer()
    response = await shop.client.post("/api/products/bulk", json={"products": []}, headers=customer)
    assert_error(response, 403)
    response = await shop.client.get("/api/products/export?format=csv", headers=customer)
    assert_error(response, 403)
    assert_error(await shop.client.get("/api/products/export?format=csv"), 401)
    response = await shop.client.get("/api/products/export?format=xml", headers=admin_headers())
    assert_error(response, 422)


async def test_sku_is_unique_and_the_filters_find_sku_and_brand(shop: Shop) -> None:
    await shop.product("Green", sku="G-1", brand="Twinings")
    await shop.product("Black", sku=" G-2 ", brand="Lipton")
    response = await shop.client.post(
        "/api/products", json={"title": "Dup", "price": 1, "sku": "G-1"}, headers=admin_headers()
    )
    assert_error(response, 409, "SKU_TAKEN")
    assert [p["title"] for p in await listed(shop, "sku=G-2")] == ["Black"]
    assert [p["title"] for p in await listed(shop, "brand=Twinings")] == ["Green"]
    assert await listed(shop, "sku=nope") == []


async def test_export_writes_the_import_columns_and_round_trips(shop: Shop) -> None:
    await shop.category("Teas")
    await bulk(
        shop,
        [
            item(
                "E-1",
                'Earl, "Grey"',
                description="Line one\nline two",
                brand="Twinings",
                stock=3,
                tax_percent=5.5,
                category="Teas",
                image_url="https://img.example/e1.jpg",
            ),
            item("E-2", "Plain", price=12),
        ],
    )
    no_sku = await shop.product("Without sku", price=2)
    response = await shop.client.get("/api/products/export?format=csv", headers=admin_headers())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == [
        "sku",
        "title",
        "description",
        "brand",
        "price",
        "tax_percent",
        "stock",
        "category",
        "image_url",
    ]
    by_sku = {row["sku"]: row for row in rows}
    assert by_sku["E-1"] == {
        "sku": "E-1",
        "title": 'Earl, "Grey"',
        "description": "Line one\nline two",
        "brand": "Twinings",
        "price": "4.50",
        "tax_percent": "5.50",
        "stock": "3",
        "category": "Teas",
        "image_url": "https://img.example/e1.jpg",
    }
    assert by_sku[no_sku["id"]]["title"] == "Without sku"  # known by its id

    # Export then import: every row unchanged, nothing in the feed.
    before = await feed_types(shop)
    items = [_as_item(row) for row in rows]
    answer = await bulk(shop, items)
    assert answer["unchanged"] == 3, answer
    assert await feed_types(shop) == before
    assert len(await listed(shop, "limit=100")) == 3


def _as_item(row: dict[str, str]) -> Json:
    """A CSV row as `retail import` sends it."""
    from retail.importing import row_item

    return row_item(row)
