"""The cart through the real auth app (/api/auth/me/cart), with products served by a fake peer
over `httpx.MockTransport`: the wire shape, money, the stock and quantity rules, vanished
products, products being down, concurrent adds, and the error format throughout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from retail.auth.config import AuthSettings
from retail.auth.main import create_app
from tests.auth.fakes import FakeCatalog
from tests.auth.peers import ProductsPeer
from tests.support import assert_error, bearer, make_settings, serve, service_headers

CART = "/api/auth/me/cart"
PASSWORD = "correct horse"
Json = dict[str, Any]


@dataclass
class Shop:
    client: httpx.AsyncClient
    catalog: FakeCatalog
    peer: ProductsPeer

    async def customer(self, email: str = "ada@shop.test") -> dict[str, str]:
        """Register and sign in; the headers of the new session."""
        body = {"email": email, "name": "Ada", "password": PASSWORD}
        assert (await self.client.post("/api/auth/register", json=body)).status_code == 201
        login = await self.client.post(
            "/api/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        return {"Authorization": f"Bearer {login.json()['access_token']}"}

    async def add(self, who: dict[str, str], product_id: str, quantity: int = 1) -> httpx.Response:
        return await self.client.post(
            CART, json={"product_id": product_id, "quantity": quantity}, headers=who
        )

    async def cart(self, who: dict[str, str]) -> Json:
        response = await self.client.get(CART, headers=who)
        assert response.status_code == 200, response.text
        body: Json = response.json()
        return body


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    catalog = FakeCatalog()
    catalog.add("lamp", 2490, 2000, stock=5, title="Desk lamp", image_url="http://img/lamp.png")
    catalog.add("rug", 8000, 0, stock=1000, title="Rug")
    peer = ProductsPeer(catalog)
    settings = make_settings(AuthSettings, tmp_path, bcrypt_rounds=4)
    async with serve(create_app(settings, transports=peer.transports())) as client:
        yield Shop(client, catalog, peer)


@pytest.fixture
async def ada(shop: Shop) -> dict[str, str]:
    return await shop.customer()


def quantities(cart: Json) -> dict[str, int]:
    return {item["product_id"]: item["quantity"] for item in cart["items"]}


async def test_the_cart_needs_a_signed_in_customer(shop: Shop) -> None:
    calls = [
        ("GET", CART, None),
        ("POST", CART, {"product_id": "lamp", "quantity": 1}),
        ("PATCH", f"{CART}/lamp", {"quantity": 1}),
        ("DELETE", f"{CART}/lamp", None),
        ("DELETE", CART, None),
    ]
    for headers in ({}, service_headers(), {"Authorization": "Bearer nonsense"}):
        for method, path, body in calls:
            response = await shop.client.request(method, path, json=body, headers=headers)
            assert_error(response, 401)
    assert shop.catalog.asked == []


async def test_an_empty_cart(shop: Shop, ada: dict[str, str]) -> None:
    assert await shop.cart(ada) == {
        "items": [],
        "total_items": 0,
        "subtotal": 0,
        "tax": 0,
        "total": 0,
        "unavailable_items": [],
    }


async def test_adding_answers_the_cart_priced_by_products(shop: Shop, ada: dict[str, str]) -> None:
    response = await shop.add(ada, "lamp", 2)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "items": [
            {
                "product_id": "lamp",
                "name": "Desk lamp",
                "price": 24.9,
                "tax_percent": 20.0,
                "quantity": 2,
                "image_url": "http://img/lamp.png",
                "line_total": 59.76,
            }
        ],
        "total_items": 2,
        "subtotal": 49.8,
        "tax": 9.96,
        "total": 59.76,
        "unavailable_items": [],
    }
    assert shop.peer.callers == {"auth"}  # with auth's own service token
    assert await shop.cart(ada) == response.json()


async def test_a_customers_cart_is_theirs_alone(shop: Shop, ada: dict[str, str]) -> None:
    bob = await shop.customer("bob@shop.test")
    await shop.add(ada, "lamp")
    await shop.add(bob, "rug", 3)
    assert quantities(await shop.cart(ada)) == {"lamp": 1}
    assert quantities(await shop.cart(bob)) == {"rug": 3}


async def test_add_change_remove_and_empty(shop: Shop, ada: dict[str, str]) -> None:
    await shop.add(ada, "lamp")
    added = await shop.add(ada, "lamp", 2)
    await shop.add(ada, "rug")
    assert quantities(added.json()) == {"lamp": 3}
    changed = await shop.client.patch(f"{CART}/lamp", json={"quantity": 5}, headers=ada)
    assert changed.status_code == 200, changed.text
    assert quantities(changed.json()) == {"lamp": 5, "rug": 1}
    removed = await shop.client.delete(f"{CART}/lamp", headers=ada)
    assert removed.status_code == 200, removed.text
    assert quantities(removed.json()) == {"rug": 1}
    assert removed.json()["total"] == 80
    emptied = await shop.client.delete(CART, headers=ada)
    assert emptied.status_code == 200
    assert emptied.json()["items"] == []
    assert (await shop.cart(ada))["total_items"] == 0


async def test_more_than_the_stock_is_409_and_changes_nothing(
    shop: Shop, ada: dict[str, str]
) -> None:
    await shop.add(ada, "lamp", 4)
    refused = await shop.add(ada, "lamp", 2)
    assert_error(refused, 409, "INSUFFICIENT_STOCK")
    assert refused.json()["details"] == {"product_id": "lamp", "requested": 6, "available": 5}
    too_many = await shop.client.patch(f"{CART}/lamp", json={"quantity": 6}, headers=ada)
    assert_error(too_many, 409, "INSUFFICIENT_STOCK")
    assert too_many.json()["details"] == {"product_id": "lamp", "requested": 6, "available": 5}
    assert quantities(await shop.cart(ada)) == {"lamp": 4}


async def test_a_line_holds_at_most_an_order_lines_quantity(
    shop: Shop, ada: dict[str, str]
) -> None:
    assert (await shop.add(ada, "rug", 100)).status_code == 200
    refused = await shop.add(ada, "rug", 1)
    assert_error(refused, 409, "CART_QUANTITY_LIMIT")
    assert refused.json()["details"] == {"product_id": "rug", "requested": 101, "limit": 100}


async def test_an_unknown_product_is_422(shop: Shop, ada: dict[str, str]) -> None:
    refused = await shop.add(ada, "ghost")
    assert_error(refused, 422, "UNKNOWN_PRODUCT")
    assert refused.json()["details"] == {"product_id": "ghost"}
    assert (await shop.cart(ada))["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"product_id": "lamp", "quantity": 0},
        {"product_id": "lamp", "quantity": 101},
        {"product_id": "lamp", "quantity": "many"},
        {"product_id": "", "quantity": 1},
        {"product_id": "x" * 65, "quantity": 1},
        {"quantity": 1},
        {"product_id": "lamp", "quantity": 1, "price": 0.01},
    ],
)
async def test_bad_additions_are_422_and_ask_products_nothing(
    shop: Shop, ada: dict[str, str], body: Json
) -> None:
    assert_error(await shop.client.post(CART, json=body, headers=ada), 422, "VALIDATION_ERROR")
    assert shop.catalog.asked == []


async def test_quantity_defaults_to_one(shop: Shop, ada: dict[str, str]) -> None:
    response = await shop.client.post(CART, json={"product_id": "rug"}, headers=ada)
    assert quantities(response.json()) == {"rug": 1}


@pytest.mark.parametrize("quantity", [0, 101, -1])
async def test_bad_quantity_changes_are_422(shop: Shop, ada: dict[str, str], quantity: int) -> None:
    await shop.add(ada, "lamp")
    response = await shop.client.patch(f"{CART}/lamp", json={"quantity": quantity}, headers=ada)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert quantities(await shop.cart(ada)) == {"lamp": 1}


@pytest.mark.parametrize("product_id", ["rug", "ghost", "x" * 300])
async def test_changing_or_removing_what_is_not_in_the_cart_is_404(
    shop: Shop, ada: dict[str, str], product_id: str
) -> None:
    await shop.add(ada, "lamp")
    patch = await shop.client.patch(f"{CART}/{product_id}", json={"quantity": 1}, headers=ada)
    assert_error(patch, 404, "CART_ITEM_NOT_FOUND")
    assert_error(await shop.client.delete(f"{CART}/{product_id}", headers=ada), 404)
    assert quantities(await shop.cart(ada)) == {"lamp": 1}


async def test_products_down_is_503_and_changes_nothing(shop: Shop, ada: dict[str, str]) -> None:
    await shop.add(ada, "lamp", 2)
    await shop.add(ada, "rug")
    shop.catalog.down = True
    for response in (
        await shop.client.get(CART, headers=ada),
        await shop.add(ada, "rug"),
        await shop.client.patch(f"{CART}/lamp", json={"quantity": 1}, headers=ada),
        await shop.client.delete(f"{CART}/lamp", headers=ada),
    ):
        assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert (await shop.client.get("/ready")).status_code == 200  # sign-in still works
    shop.catalog.down = False
    assert quantities(await shop.cart(ada)) == {"lamp": 2, "rug": 1}


async def test_a_product_gone_from_the_catalogue_is_reported_and_dropped(
    shop: Shop, ada: dict[str, str]
) -> None:
    await shop.add(ada, "lamp", 2)
    await shop.add(ada, "rug")
    del shop.catalog.products["lamp"]
    cart = await shop.cart(ada)
    assert quantities(cart) == {"rug": 1}
    assert cart["unavailable_items"] == [
        {"product_id": "lamp", "quantity": 2, "reason": "product_removed"}
    ]
    assert (cart["total_items"], cart["subtotal"], cart["total"]) == (1, 80, 80)
    assert (await shop.cart(ada))["unavailable_items"] == []


async def test_money_is_exact_and_rounded_once_per_line(shop: Shop, ada: dict[str, str]) -> None:
    # 0.05 at 10 %: half a cent of tax per line, rounded up to 0.01 on each line.
    shop.catalog.add("pin", 5, 1000)
    shop.catalog.add("clip", 5, 1000)
    # 0.10 + 0.20 is 0.30000000000000004 in floating point; cents keep it 0.3.
    shop.catalog.add("a", 10, 0)
    shop.catalog.add("b", 20, 0)
    for product_id in ("pin", "clip", "a", "b"):
        await shop.add(ada, product_id)
    cart = await shop.cart(ada)
    assert (cart["subtotal"], cart["tax"], cart["total"]) == (0.4, 0.02, 0.42)
    assert {i["product_id"]: i["line_total"] for i in cart["items"]} == {
        "pin": 0.06,
        "clip": 0.06,
        "a": 0.1,
        "b": 0.2,
    }


async def test_concurrent_adds_of_one_product_all_count(shop: Shop, ada: dict[str, str]) -> None:
    answers = await asyncio.gather(*(shop.add(ada, "rug") for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    assert quantities(await shop.cart(ada)) == {"rug": 10}


async def test_a_token_whose_account_is_gone_cannot_add(shop: Shop) -> None:
    response = await shop.add(bearer("33333333-3333-4333-8333-333333333333"), "rug")
    assert_error(response, 401, "ACCOUNT_NOT_FOUND")
