"""`retail up` as real processes on free ports, driven over HTTP like a storefront would."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from retail.cli import available_services
from tests.e2e.harness import all_ports, stop, system_env, wait_until_ready

pytestmark = pytest.mark.e2e
T = TypeVar("T")
Json = dict[str, Any]
# Feeds are polled (every 0.5 s by default): what follows one is there within a few polls.
SETTLE_SECONDS = 20.0


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir: Path = tmp_path_factory.mktemp("system")
    ports = all_ports()
    env = system_env(data_dir, ports, ADMIN_EMAIL="boss@shop.test", ADMIN_PASSWORD="boss-pass-123")
    process = subprocess.Popen([sys.executable, "-m", "retail", "up"], env=env)
    urls = {s: f"http://127.0.0.1:{ports[s]}" for s in available_services()}
    try:
        wait_until_ready(list(urls.values()), process)
        yield urls
    finally:
        assert stop(process, signal.SIGINT) == 0  # Ctrl-C stops them all, cleanly
        for url in urls.values():
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{url}/health", timeout=1.0)


def test_every_service_serves_docs_health_and_ready(system: dict[str, str]) -> None:
    for service, url in system.items():
        assert httpx.get(f"{url}/health").json()["service"] == service
        assert httpx.get(f"{url}/ready").status_code == 200, service
        assert httpx.get(f"{url}/docs").status_code == 200
        assert httpx.get(f"{url}/openapi.json").json()["info"]["title"]


def test_account_lifecycle(system: dict[str, str]) -> None:
    auth = httpx.Client(base_url=system["auth"])
    registered = auth.post(
        "/api/auth/register",
        json={"email": "Ada@Shop.test", "name": "Ada", "password": "correct horse"},
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["email"] == "ada@shop.test"
    assert registered.json()["role"] == "customer"

    login = auth.post(
        "/api/auth/login", json={"email": "ada@shop.test", "password": "correct horse"}
    ).json()
    assert login["token_type"] == "bearer"
    me = auth.get("/api/auth/me", headers={"Authorization": f"Bearer {login['access_token']}"})
    assert me.json()["id"] == registered.json()["id"]

    rotated = auth.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert rotated.status_code == 200
    newest = rotated.json()["refresh_token"]
    assert newest != login["refresh_token"]

    reuse = auth.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json()["error_code"]
    family_gone = auth.post("/api/auth/refresh", json={"refresh_token": newest})
    assert family_gone.status_code == 401

    again = auth.post(
        "/api/auth/login", json={"email": "ada@shop.test", "password": "correct horse"}
    ).json()
    assert (
        auth.post("/api/auth/logout", json={"refresh_token": again["refresh_token"]}).status_code
        == 204
    )
    after = auth.post("/api/auth/refresh", json={"refresh_token": again["refresh_token"]})
    assert after.status_code == 401


def test_first_admin_comes_from_the_settings(system: dict[str, str]) -> None:
    auth = httpx.Client(base_url=system["auth"])
    login = auth.post(
        "/api/auth/login", json={"email": "boss@shop.test", "password": "boss-pass-123"}
    )
    assert login.json()["user"]["role"] == "admin"
    users = auth.get(
        "/api/auth/users", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert users.status_code == 200
    assert users.json()["total"] >= 1


# --- a customer's cart, orders from it, a reorder, a cancellation ---------------------------


def eventually(check: Callable[[], T | None], what: str) -> T:
    """Poll `check` until it answers something, for at most SETTLE_SECONDS."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (found := check()) is None:
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
    return found


def signed_in(auth: httpx.Client, email: str, password: str) -> dict[str, str]:
    login = auth.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def new_product(system: dict[str, str], admin: dict[str, str], **fields: Any) -> str:
    products = httpx.Client(base_url=system["products"], timeout=10.0)
    made = products.post("/api/products", json=fields, headers=admin)
    assert made.status_code == 201, made.text
    product_id = str(made.json()["id"])
    inventory = httpx.Client(base_url=system["inventory"], timeout=10.0)
    eventually(  # inventory learns of new products from the products feed
        lambda: (
            inventory.get(f"/api/inventory/{product_id}", headers=admin).status_code == 200 or None
        ),
        f"inventory to stock {fields['title']}",
    )
    return product_id


@pytest.fixture(scope="module")
def shop(system: dict[str, str]) -> Json:
    """Two products, a signed-in customer and an admin."""
    auth = httpx.Client(base_url=system["auth"], timeout=10.0)
    admin = signed_in(auth, "boss@shop.test", "boss-pass-123")
    lamp = new_product(system, admin, title="Desk lamp", price=24.90, tax_percent=20, stock=10)
    rug = new_product(system, admin, title="Rug", price=80.00, stock=3)
    body = {"email": "carla@shop.test", "name": "Carla", "password": "correct horse"}
    assert auth.post("/api/auth/register", json=body).status_code == 201
    customer = signed_in(auth, "carla@shop.test", "correct horse")
    return {"admin": admin, "customer": customer, "lamp": lamp, "rug": rug}


def test_a_customer_orders_from_the_cart_reorders_and_cancels(
    system: dict[str, str], shop: Json
) -> None:
    """One customer's journey, in order: each step needs what the one before it did."""
    first = order_from_the_cart(system, shop)
    reorder_and_cancel(system, shop, first)
    the_cart_sees_stock_that_orders_took(system, shop)


def order_from_the_cart(system: dict[str, str], shop: Json) -> Json:
    auth = httpx.Client(base_url=system["auth"], headers=shop["customer"], timeout=10.0)
    orders = httpx.Client(base_url=system["orders"], headers=shop["customer"], timeout=10.0)
    lamp, rug = shop["lamp"], shop["rug"]
    for product_id, quantity in ((lamp, 2), (rug, 1), (lamp, 1)):
        added = auth.post(
            "/api/auth/me/cart", json={"product_id": product_id, "quantity": quantity}
        )
        assert added.status_code == 200, added.text
    short = auth.post("/api/auth/me/cart", json={"product_id": rug, "quantity": 3})
    assert short.status_code == 409
    assert short.json()["details"] == {"product_id": rug, "requested": 4, "available": 3}
    cart = auth.get("/api/auth/me/cart").json()
    assert [(i["name"], i["price"], i["quantity"]) for i in cart["items"]] == [
        ("Desk lamp", 24.9, 3),
        ("Rug", 80.0, 1),
    ]
    # 3 x 24.90 + 80.00; 20 % of the lamps' 74.70
    assert (cart["total_items"], cart["subtotal"], cart["tax"], cart["total"]) == (
        4,
        154.7,
        14.94,
        169.64,
    )

    items = [{"product_id": i["product_id"], "quantity": i["quantity"]} for i in cart["items"]]
    address = {"line1": "1 Main St", "city": "Springfield"}
    placed = orders.post("/api/orders", json={"items": items, "shipping_address": address})
    assert placed.status_code == 201, placed.text
    order: Json = placed.json()
    assert (order["status"], order["subtotal"], order["tax_total"], order["total"]) == (
        "confirmed",
        cart["subtotal"],
        cart["tax"],
        cart["total"],
    )
    assert auth.delete("/api/auth/me/cart").json()["items"] == []

    seen = orders.get(f"/api/orders/{order['id']}")
    assert seen.status_code == 200
    assert seen.json()["items"] == order["items"]
    assert [o["id"] for o in orders.get("/api/orders").json()["orders"]] == [order["id"]]
    return order


def reorder_and_cancel(system: dict[str, str], shop: Json, first: Json) -> None:
    """The admin sees the stock move in the lamp's history."""
    orders = httpx.Client(base_url=system["orders"], headers=shop["customer"], timeout=10.0)
    again = orders.post(f"/api/orders/{first['id']}/reorder")
    assert again.status_code == 201, again.text
    reorder = again.json()
    assert reorder["id"] != first["id"]
    assert reorder["skipped_items"] == []
    assert reorder["total"] == first["total"]
    cancelled = orders.post(f"/api/orders/{reorder['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    statuses = {o["id"]: o["status"] for o in orders.get("/api/orders").json()["orders"]}
    assert statuses == {first["id"]: "confirmed", reorder["id"]: "cancelled"}

    inventory = httpx.Client(base_url=system["inventory"], headers=shop["admin"], timeout=10.0)
    lamp = shop["lamp"]

    def history() -> list[tuple[str, int, str | None]] | None:
        moves = inventory.get(f"/api/inventory/{lamp}/history").json()["items"]
        found = [(m["type"], m["change"], m["order_id"]) for m in moves]
        return found if len(found) == 4 else None

    assert eventually(history, "the release in the lamp's history") == [  # newest first
        ("release", 3, reorder["id"]),
        ("reservation", -3, reorder["id"]),
        ("reservation", -3, first["id"]),
        ("initial", 10, None),
    ]
    assert inventory.get(f"/api/inventory/{lamp}").json()["stock"] == 7


def the_cart_sees_stock_that_orders_took(system: dict[str, str], shop: Json) -> None:
    """Inventory's stock reaches products through its feed, and the cart checks against it."""
    products = httpx.Client(base_url=system["products"], timeout=10.0)
    rug = shop["rug"]
    eventually(
        lambda: products.get(f"/api/products/{rug}").json()["stock"] == 2 or None,
        "products to show the rug's stock after the order",
    )
    auth = httpx.Client(base_url=system["auth"], headers=shop["customer"], timeout=10.0)
    refused = auth.post("/api/auth/me/cart", json={"product_id": rug, "quantity": 3})
    assert refused.status_code == 409
    assert refused.json()["details"] == {"product_id": rug, "requested": 3, "available": 2}
