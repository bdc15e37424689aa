"""The products service through its real app, with the real categories app as its peer:
the wire shape, auth, validation, 404s, pagination, filters and sorts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from tests.products.shop import ADMIN, Shop, open_shop
from tests.support import assert_error, bearer, service_headers

WIRE_FIELDS = {
    "id",
    "title",
    "description",
    "price",
    "tax_percent",
    "image_url",
    "category_id",
    "stock",
    "add_ons",
    "combos",
    "is_active",
    "sku",
    "brand",
    "created_at",
}
LIST_FIELDS = {"products", "total", "page", "limit", "total_pages"}


async def test_create_returns_the_wire_shape(shop: Shop) -> None:
    category = await shop.category("Shoes")
    made = await shop.product(
        "  Trail Boot  ",
        description="Waterproof",
        price=129.5,
        tax_percent=7.25,
        category_id=category,
        stock=12,
        add_ons=[{"name": "Gift wrap", "price": 2.50}, {"name": "Laces", "price": 0}],
        combos=[{"product_id": "11111111-2222-4333-8444-555555555555", "quantity": 2}],
    )
    assert set(made) == WIRE_FIELDS
    assert made["title"] == "Trail Boot"
    assert (made["price"], made["tax_percent"]) == (129.5, 7.25)
    assert (made["category_id"], made["stock"], made["image_url"]) == (category, 12, None)
    assert made["add_ons"] == [{"name": "Gift wrap", "price": 2.5}, {"name": "Laces", "price": 0}]
    assert made["combos"][0]["quantity"] == 2
    assert await shop.get(made["id"]) == made


async def test_prices_keep_exactly_two_decimals(shop: Shop) -> None:
    made = await shop.product(price=0.10, tax_percent=0.05)
    raw = (await shop.client.get(f"/api/products/{made['id']}")).text
    assert '"price":0.1' in raw
    assert '"tax_percent":0.05' in raw
    assert (await shop.product(price=19.99))["price"] == 19.99


async def test_defaults(shop: Shop) -> None:
    response = await shop.client.post(
        "/api/products", json={"title": "Plain", "price": 1}, headers=ADMIN
    )
    made = response.json()
    assert (made["stock"], made["tax_percent"], made["description"]) == (0, 0, "")
    assert (made["add_ons"], made["combos"], made["category_id"]) == ([], [], None)


async def test_writes_need_an_admin(shop: Shop) -> None:
    made = await shop.product()
    url = f"/api/products/{made['id']}"
    body = {"title": "x", "price": 1}
    customer = bearer("c1", "customer")
    assert_error(await shop.client.post("/api/products", json=body), 401, "UNAUTHORIZED")
    assert_error(await shop.client.post("/api/products", json=body, headers=customer), 403)
    assert_error(await shop.client.patch(url, json={"title": "y"}), 401)
    assert_error(await shop.client.patch(url, json={"title": "y"}, headers=customer), 403)
    assert_error(await shop.client.delete(url), 401)
    assert_error(await shop.client.delete(url, headers=customer), 403)
    assert_error(await shop.client.delete(url, headers=service_headers()), 401)
    forged = {"Authorization": "Bearer not.a.token"}
    assert_error(await shop.client.patch(url, json={"title": "y"}, headers=forged), 401)
    assert await shop.get(made["id"]) == made


@pytest.mark.parametrize(
    "body",
    [
        {"title": "x", "price": 0},
        {"title": "x", "price": -1},
        {"title": "x", "price": "1.999"},
        {"title": "x", "price": 1.001},
        {"title": "x", "price": "NaN"},
        {"title": "x", "price": 1, "tax_percent": 101},
        {"title": "x", "price": 1, "tax_percent": -1},
        {"title": "x", "price": 1, "tax_percent": "7.255"},
        {"title": "x", "price": 1, "colour": "red"},
        {"title": "x", "price": 1, "id": "mine"},
        {"title": "   ", "price": 1},
        {"title": "x" * 201, "price": 1},
        {"title": "x", "price": 1, "description": "d" * 10_001},
        {"title": "x", "price": 1, "stock": -1},
        {"title": "x", "price": 1, "stock": 1.5},
        {"title": "x", "price": 1, "category_id": "../../admin"},
        {"title": "x", "price": 1, "add_ons": [{"name": "a", "price": 1, "x": 1}]},
        {"title": "x", "price": 1, "add_ons": [{"name": "a", "price": 1}] * 2},
        {"title": "x", "price": 1, "add_ons": [{"name": f"a{i}", "price": 1} for i in range(21)]},
        {"title": "x", "price": 1, "combos": [{"product_id": "p", "quantity": 0}]},
        {"title": "x", "price": 1, "combos": ["free text"]},
        {"price": 1},
        {"title": "x"},
    ],
)
async def test_bad_creates_are_422_and_store_nothing(shop: Shop, body: dict[str, Any]) -> None:
    assert_error(await shop.client.post("/api/products", json=body, headers=ADMIN), 422)
    assert (await shop.client.get("/api/products")).json()["total"] == 0


async def test_titles_are_measured_after_trimming(shop: Shop) -> None:
    made = await shop.product("  " + "t" * 200 + "  ")
    assert made["title"] == "t" * 200


async def test_unknown_category_is_422(shop: Shop) -> None:
    for body in (
        {"title": "x", "price": 1, "category_id": "00000000-0000-4000-8000-000000000000"},
    ):
        response = await shop.client.post("/api/products", json=body, headers=ADMIN)
        assert_error(response, 422, "UNKNOWN_CATEGORY")
    made = await shop.product()
    patch = await shop.client.patch(
        f"/api/products/{made['id']}", json={"category_id": "nope"}, headers=ADMIN
    )
    assert_error(patch, 422, "UNKNOWN_CATEGORY")
    assert (await shop.get(made["id"]))["category_id"] is None


async def test_categories_down_is_503(tmp_path: Path, categories_app: ASGIApp) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    down = {"categories": httpx.MockTransport(refuse)}
    async with open_shop(tmp_path, categories_app, transports=down) as shop:
        body = {"title": "x", "price": 1, "category_id": "c1"}
        response = await shop.client.post("/api/products", json=body, headers=ADMIN)
        assert_error(response, 503, "SERVICE_UNAVAILABLE")
        assert (await shop.product())["category_id"] is None  # no category: no call


async def test_patch_is_partial_and_may_clear_the_category(shop: Shop) -> None:
    category = await shop.category("Hats")
    made = await shop.product(category_id=category, description="Warm")
    url = f"/api/products/{made['id']}"
    patched = (await shop.client.patch(url, json={"price": 25.00}, headers=ADMIN)).json()
    assert patched == made | {"price": 25.0}
    cleared = await shop.client.patch(url, json={"category_id": None}, headers=ADMIN)
    assert cleared.json()["category_id"] is None
    emptied = await shop.client.patch(url, json={"description": None}, headers=ADMIN)
    assert emptied.json()["description"] == ""
    moved = await shop.client.patch(url, json={"category_id": category, "stock": 3}, headers=ADMIN)
    assert (moved.json()["category_id"], moved.json()["stock"]) == (category, 3)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": None},
        {"price": None},
        {"price": 0},
        {"price": "1.001"},
        {"tax_percent": 101},
        {"stock": None},
        {"add_ons": None},
        {"colour": "red"},
        {"title": ""},
    ],
)
async def test_bad_patches_are_422_and_change_nothing(shop: Shop, body: dict[str, Any]) -> None:
    made = await shop.product()
    response = await shop.client.patch(f"/api/products/{made['id']}", json=body, headers=ADMIN)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert await shop.get(made["id"]) == made


async def test_a_combo_of_the_product_itself_is_422(shop: Shop) -> None:
    made = await shop.product()
    combos = [{"product_id": made["id"], "quantity": 1}]
    response = await shop.client.patch(
        f"/api/products/{made['id']}", json={"combos": combos}, headers=ADMIN
    )
    assert_error(response, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "product_id", ["nope", "00000000-0000-0000-0000-000000000000", "' OR 1=1", "%2e%2e"]
)
async def test_unknown_or_malformed_ids_are_404(shop: Shop, product_id: str) -> None:
    url = f"/api/products/{product_id}"
    assert_error(await shop.client.get(url), 404, "PRODUCT_NOT_FOUND")
    assert_error(await shop.client.patch(url, json={"title": "z"}, headers=ADMIN), 404)
    assert_error(await shop.client.delete(url, headers=ADMIN), 404, "PRODUCT_NOT_FOUND")


async def test_a_deleted_product_is_gone(shop: Shop) -> None:
    made = await shop.product()
    kept = await shop.product("Kept")
    url = f"/api/products/{made['id']}"
    assert (await shop.client.delete(url, headers=ADMIN)).status_code == 204
    assert_error(await shop.client.get(url), 404, "PRODUCT_NOT_FOUND")
    listed = (await shop.client.get("/api/products")).json()
    assert [p["id"] for p in listed["products"]] == [kept["id"]]
    assert_error(await shop.client.delete(url, headers=ADMIN), 404)


# ---- listing ---------------------------------------------------------------------------


async def test_page_arithmetic(shop: Shop) -> None:
    for n in range(45):
        await shop.product(f"P{n:02d}")
    first = (await shop.client.get("/api/products?limit=20")).json()
    assert set(first) == LIST_FIELDS
    assert (first["total"], first["page"], first["limit"], first["total_pages"]) == (45, 1, 20, 3)
    third = (await shop.client.get("/api/products?page=3&limit=20")).json()
    assert len(third["products"]) == 5
    fourth = (await shop.client.get("/api/products?page=4&limit=20")).json()
    assert (fourth["products"], fourth["total"], fourth["total_pages"]) == ([], 45, 3)
    pages = [first, (await shop.client.get("/api/products?page=2&limit=20")).json(), third]
    ids = [p["id"] for page in pages for p in page["products"]]
    assert len(set(ids)) == 45  # stable pages: nothing twice, nothing missed
    default = (await shop.client.get("/api/products")).json()
    assert (default["page"], default["limit"]) == (1, 20)


async def test_an_empty_catalogue(shop: Shop) -> None:
    body = (await shop.client.get("/api/products")).json()
    assert body == {"products": [], "total": 0, "page": 1, "limit": 20, "total_pages": 0}


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "limit=0",
        "limit=101",
        "page=x",
        "sort=cheapest",
        "min_price=-1",
        "min_price=1.001",
        "max_price=abc",
        "min_price=5&max_price=4.99",
    ],
)
async def test_bad_list_queries_are_422(shop: Shop, query: str) -> None:
    assert_error(await shop.client.get(f"/api/products?{query}"), 422, "VALIDATION_ERROR")


async def test_newest_first_by_default(shop: Shop) -> None:
    titles = ["first", "second", "third"]
    for title in titles:
        await shop.product(title)
    listed = (await shop.client.get("/api/products")).json()["products"]
    assert [p["title"] for p in listed] == titles[::-1]


async def test_filter_by_category(shop: Shop) -> None:
    hats, shoes = await shop.category("Hats"), await shop.category("Shoes")
    await shop.product("Cap", category_id=hats)
    await shop.product("Boot", category_id=shoes)
    await shop.product("Beanie", category_id=hats)
    listed = (await shop.client.get(f"/api/products?category_id={hats}")).json()
    assert sorted(p["title"] for p in listed["products"]) == ["Beanie", "Cap"]
    assert listed["total"] == 2
    none = (await shop.client.get("/api/products?category_id=nothing")).json()
    assert none["total"] == 0
    # An empty value counts as absent, as for every filter: a select's "All" option.
    every = (await shop.client.get("/api/products?category_id=")).json()
    assert (every["total"], len(every["products"])) == (3, 3)


async def test_sorts_and_price_range(shop: Shop) -> None:
    for title, price in [("b", 5.00), ("C", 1.50), ("a", 9.99), ("d", 5.00)]:
        await shop.product(title, price=price)

    async def titles(query: str) -> list[str]:
        response = await shop.client.get(f"/api/products?{query}")
        assert response.status_code == 200, response.text
        return [p["title"] for p in response.json()["products"]]

    assert await titles("sort=title") == ["a", "b", "C", "d"]
    assert (await titles("sort=price_asc"))[::3] == ["C", "a"]
    assert (await titles("sort=price_desc"))[::3] == ["a", "C"]
    assert sorted(await titles("min_price=5&max_price=5")) == ["b", "d"]
    assert await titles("min_price=1.5&max_price=5&sort=price_asc") in (
        ["C", "b", "d"],
        ["C", "d", "b"],
    )
    assert await titles("min_price=10") == []
    assert await titles("max_price=1.49") == []
    body = (await shop.client.get("/api/products?min_price=5&sort=price_desc")).json()
    assert body["total"] == 3


async def test_docs_show_the_upload_as_multipart(shop: Shop) -> None:
    assert (await shop.client.get("/docs")).status_code == 200
    spec = (await shop.client.get("/openapi.json")).json()
    upload = spec["paths"]["/api/products/{product_id}/upload-image"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][form.rsplit("/", 1)[1]]
    file = schema["properties"]["file"]
    # OpenAPI 3.1 spells a file part as contentMediaType (3.0 said format: binary); Swagger
    # UI renders either as a file picker.
    assert (
        file.get("contentMediaType") == "application/octet-stream" or file.get("format") == "binary"
    )
    assert schema["required"] == ["file"]


# ---- what the RetailHub storefront and console send (docs/storefront-compatibility.md) ----


async def test_sort_names_and_orders(shop: Shop) -> None:
    for title, price in [("b", 5), ("C", 1.5), ("a", 9.99)]:
        await shop.product(title, price=price)

    async def titles(query: str) -> list[str]:
        response = await shop.client.get(f"/api/products?{query}")
        assert response.status_code == 200, response.text
        return [p["title"] for p in response.json()["products"]]

    made_order = ["b", "C", "a"]
    for query, expected in [
        ("sort=name&order=asc", ["a", "b", "C"]),
        ("sort=name&order=desc", ["C", "b", "a"]),
        ("sort=name", ["a", "b", "C"]),
        ("sort=title&order=desc", ["C", "b", "a"]),
        ("sort=price&order=asc", ["C", "b", "a"]),
        ("sort=price&order=desc", ["a", "b", "C"]),
        ("sort=price", ["C", "b", "a"]),
        ("sort=price_desc&order=desc", ["a", "b", "C"]),
        ("sort=newest", made_order[::-1]),
        ("sort=newest&order=asc", made_order),
        ("sort=created_at", made_order[::-1]),
        ("sort=created_at&order=asc", made_order),
        ("order=asc", made_order),  # the default key, newest, in the order asked
        ("sort=NAME&order=DESC", ["C", "b", "a"]),
        ("sort=&order=", made_order[::-1]),  # empty counts as absent
    ]:
        assert await titles(query) == expected, query


@pytest.mark.parametrize(
    "query",
    ["sort=popularity", "order=up", "sort=price_asc&order=desc", "sort=price_desc&order=asc"],
)
async def test_unknown_or_contradicting_sorts_are_422(shop: Shop, query: str) -> None:
    response = await shop.client.get(f"/api/products?{query}")
    assert_error(response, 422, "VALIDATION_ERROR")
    [field] = response.json()["details"]["fields"]
    assert field["field"] in ("query.sort", "query.order")


async def test_unknown_query_parameters_are_ignored(shop: Shop) -> None:
    await shop.product("Cap")
    response = await shop.client.get("/api/products?page=1&limit=12&search=cap&view=grid")
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 1


@pytest.mark.parametrize("description", [None, ""])
async def test_a_null_description_means_none(shop: Shop, description: str | None) -> None:
    made = await shop.product("Cap", description=description)
    assert made["description"] == ""
    described = await shop.product("Hat", description="Warm")
    patched = await shop.client.patch(
        f"/api/products/{described['id']}", json={"description": None}, headers=ADMIN
    )
    assert patched.json()["description"] == ""


EXTERNAL = "https://cdn.example.com/img/cap.jpg?size=640"


async def test_an_external_image_url_is_kept_and_can_be_cleared(shop: Shop) -> None:
    made = await shop.product("Cap", image_url=EXTERNAL)
    assert made["image_url"] == EXTERNAL
    assert (await shop.get(made["id"]))["image_url"] == EXTERNAL
    other = "http://images.example.org/hat.png"
    for sent, kept in [(other, other), ("", None), (EXTERNAL, EXTERNAL), (None, None)]:
        patched = await shop.client.patch(
            f"/api/products/{made['id']}", json={"image_url": sent}, headers=ADMIN
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["image_url"] == kept
    assert (await shop.product("Hat", image_url=""))["image_url"] is None
    assert (await shop.product("Boot", image_url=None))["image_url"] is None


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "/media/products/a.png",
        "cap.jpg",
        "https://",
        "https://exa mple.com/a.png",
        "https://user:secret@example.com/a.png",
        "https://example.com/" + "a" * 2048,
        7,
    ],
)
async def test_other_image_urls_are_422_and_change_nothing(shop: Shop, url: object) -> None:
    assert_error(
        await shop.client.post(
            "/api/products", json={"title": "Cap", "price": 5, "image_url": url}, headers=ADMIN
        ),
        422,
        "VALIDATION_ERROR",
    )
    made = await shop.product("Hat", image_url=EXTERNAL)
    patched = await shop.client.patch(
        f"/api/products/{made['id']}", json={"image_url": url}, headers=ADMIN
    )
    assert_error(patched, 422, "VALIDATION_ERROR")
    assert (await shop.get(made["id"]))["image_url"] == EXTERNAL
    assert (await shop.client.get("/api/products")).json()["total"] == 1


async def test_the_consoles_extra_fields_are_accepted(shop: Shop) -> None:
    body = {
        "name": "Classic Burger",
        "description": "",
        "price": 9.99,
        "tax_percent": 8,
        "stock": 50,
        "image_url": "",
        "is_combo": False,
        "is_active": True,
    }
    made = await shop.client.post("/api/products", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert (made.json()["title"], made.json()["is_active"]) == ("Classic Burger", True)
    product_id = made.json()["id"]
    again = await shop.client.patch(
        f"/api/products/{product_id}", json={**body, "name": "Cheese Burger"}, headers=ADMIN
    )
    assert again.json()["title"] == "Cheese Burger"
    both = {**body, "title": "Classic", "name": "Other"}
    assert_error(
        await shop.client.post("/api/products", json=both, headers=ADMIN), 422, "VALIDATION_ERROR"
    )
    unknown = {**body, "is_featured": True}
    assert_error(
        await shop.client.post("/api/products", json=unknown, headers=ADMIN),
        422,
        "VALIDATION_ERROR",
    )


async def test_an_inactive_product_is_hidden_but_from_admins(shop: Shop) -> None:
    hats = await shop.category("Hats")
    shown = await shop.product("Cap", category_id=hats)
    hidden = await shop.product("Beret", category_id=hats, is_active=False)
    assert hidden["is_active"] is False
    customer = bearer("customer-1")

    async def ids(query: str, headers: dict[str, str] | None = None) -> list[str]:
        response = await shop.client.get(f"/api/products?{query}", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["total"] == len(response.json()["products"])
        return [p["id"] for p in response.json()["products"]]

    for query in ["", f"category_id={hats}", "sort=name&order=asc", "sort=price&order=desc"]:
        assert await ids(query) == [shown["id"]], query
        assert await ids(query, ADMIN) == [shown["id"]], query  # unless asked for
        everything = await ids(f"{query}&include_inactive=true", ADMIN)
        assert sorted(everything) == sorted([shown["id"], hidden["id"]]), query
    for headers in [None, customer, {"Authorization": "Bearer expired-or-garbage"}]:
        assert_error(await shop.client.get(f"/api/products/{hidden['id']}", headers=headers), 404)
    as_admin = await shop.client.get(f"/api/products/{hidden['id']}", headers=ADMIN)
    assert as_admin.json()["is_active"] is False
    assert "private" in as_admin.headers["cache-control"]
    assert_error(await shop.client.get("/api/products?include_inactive=true"), 401)
    assert_error(
        await shop.client.get("/api/products?include_inactive=true", headers=customer), 403
    )


async def test_the_read_cache_never_hands_an_admins_view_to_the_public(shop: Shop) -> None:
    hidden = await shop.product("Beret", is_active=False)
    path = f"/api/products/{hidden['id']}"
    everything = "/api/products?include_inactive=true"
    for _ in range(2):  # a second round would be served from memory if it had been kept
        assert (await shop.client.get(path, headers=ADMIN)).status_code == 200
        assert (await shop.client.get(everything, headers=ADMIN)).json()["total"] == 1
        assert_error(await shop.client.get(path), 404)
        assert_error(await shop.client.get(everything, headers=bearer("customer-1")), 403)
        assert (await shop.client.get("/api/products")).json()["total"] == 0


async def test_activating_and_deactivating(shop: Shop) -> None:
    made = await shop.product("Cap")
    path = f"/api/products/{made['id']}"
    assert (await shop.client.get(path)).status_code == 200  # now kept by the read cache
    off = await shop.client.patch(path, json={"is_active": False}, headers=ADMIN)
    assert off.json()["is_active"] is False
    assert_error(await shop.client.get(path), 404)
    assert (await shop.client.get("/api/products")).json()["total"] == 0
    assert_error(await shop.client.patch(path, json={"is_active": None}, headers=ADMIN), 422)
    on = await shop.client.patch(path, json={"is_active": True}, headers=ADMIN)
    assert on.json()["is_active"] is True
    assert (await shop.client.get(path)).status_code == 200


async def test_the_lookup_tells_an_inactive_product(shop: Shop) -> None:
    hidden = await shop.product("Beret", is_active=False)
    response = await shop.client.post(
        "/internal/products/lookup", json={"ids": [hidden["id"]]}, headers=service_headers()
    )
    [item] = response.json()["products"]
    assert (item["id"], item["is_active"]) == (hidden["id"], False)
