"""The orders service through its real app (HTTP, validation, auth, and the run's database:
SQLite, PostgreSQL or MongoDB), with products and inventory faked behind
httpx.MockTransport at their internal contracts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from retail.orders.config import OrdersSettings
from retail.orders.domain import TRANSITIONS, CatalogEntry
from retail.orders.main import create_app
from tests.orders.fakes import FakeCatalog, FakeInventory
from tests.orders.peers import Peers
from tests.support import (
    FreshHeaders,
    admin_headers,
    assert_error,
    bearer,
    make_settings,
    serve,
    service_headers,
)

ADMIN = FreshHeaders(admin_headers)
ALICE = FreshHeaders(lambda: bearer("alice"))
BOB = FreshHeaders(lambda: bearer("bob"))
Json = dict[str, Any]

PEN = CatalogEntry("pen", "Gel pen", 35, 725)
LAMP = CatalogEntry("lamp", "Desk lamp", 2490, 2000)
ADDRESS = "1 Main St, Springfield"


@pytest.fixture
def peers() -> Peers:
    return Peers(FakeCatalog(PEN, LAMP), FakeInventory(pen=100, lamp=5))


@pytest.fixture
async def client(tmp_path: Path, peers: Peers) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(OrdersSettings, tmp_path, recover_pending=False)
    async with serve(create_app(settings, transports=peers.transports())) as client:
        yield client


def body(*lines: tuple[str, int], address: object = ADDRESS) -> Json:
    items = [{"product_id": p, "quantity": q} for p, q in lines]
    return {"items": items, "shipping_address": address}


async def place(
    client: httpx.AsyncClient, *lines: tuple[str, int], headers: dict[str, str] = ALICE
) -> Json:
    response = await client.post("/api/orders", json=body(*lines), headers=headers)
    assert response.status_code == 201, response.text
    made: Json = response.json()
    return made


# --- placing ---------------------------------------------------------------------------


async def test_every_route_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    oid = "00000000-0000-0000-0000-000000000000"
    for method, path in [
        ("POST", "/api/orders"),
        ("GET", "/api/orders"),
        ("GET", f"/api/orders/{oid}"),
        ("POST", f"/api/orders/{oid}/reorder"),
        ("POST", f"/api/orders/{oid}/cancel"),
        ("PATCH", f"/api/orders/{oid}/status"),
    ]:
        response = await client.request(method, path, json=body(("pen", 1)))
        assert_error(response, 401, "UNAUTHORIZED")
        forged = await client.request(method, path, headers=service_headers())
        assert_error(forged, 401)


async def test_an_order_has_the_wire_shape_and_exact_totals(
    client: httpx.AsyncClient, peers: Peers
) -> None:
    order = await place(client, ("pen", 2), ("lamp", 1), ("pen", 1))
    assert set(order) == {
        "id",
        "order_number",
        "user_id",
        "items",
        "subtotal",
        "tax_total",
        "total",
        "status",
        "shipping_address",
        "created_at",
        "updated_at",
    }
    assert re.fullmatch(r"RP-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", order["order_number"])
    assert (order["user_id"], order["status"], order["shipping_address"]) == (
        "alice",
        "confirmed",
        ADDRESS,
    )
    assert order["items"] == [
        {
            "product_id": "pen",
            "title": "Gel pen",
            "price": 0.35,
            "quantity": 3,
            "tax_percent": 7.25,
            "line_total": 1.13,  # 1.05 + 0.076125 rounded half-up once: 0.08
        },
        {
            "product_id": "lamp",
            "title": "Desk lamp",
            "price": 24.9,
            "quantity": 1,
            "tax_percent": 20.0,
            "line_total": 29.88,
        },
    ]
    assert (order["subtotal"], order["tax_total"], order["total"]) == (25.95, 5.06, 31.01)
    assert peers.inventory.stock == {"pen": 97, "lamp": 4}
    assert peers.callers == {"orders"}
    assert (await client.get(f"/api/orders/{order['id']}", headers=ALICE)).json() == order


@pytest.mark.parametrize(
    "address",
    [
        "x",
        "a" * 500,
        {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"},
        {"street": "Rue 3", "zip": 75001, "line2": None},
    ],
)
async def test_a_shipping_address_is_kept_as_sent(client: httpx.AsyncClient, address: Any) -> None:
    response = await client.post(
        "/api/orders", json=body(("pen", 1), address=address), headers=ALICE
    )
    assert response.status_code == 201, response.text
    expected = (
        address | {"zip": "75001"} if isinstance(address, dict) and "zip" in address else address
    )
    assert response.json()["shipping_address"] == expected


@pytest.mark.parametrize(
    "sent",
    [
        {},
        body(),
        body(("pen", 0)),
        body(("pen", 101)),
        body(("pen", 60), ("pen", 41)),
        body(*((f"p{n}", 1) for n in range(51))),
        body(("", 1)),
        body(("pen", 1), address=""),
        body(("pen", 1), address="   "),
        body(("pen", 1), address="a" * 501),
        body(("pen", 1), address={}),
        body(("pen", 1), address={"line1": {"nested": "no"}}),
        body(("pen", 1), address={"line1": " "}),
        body(("pen", 1), address=None),
        body(("pen", 1)) | {"user_id": "mallory"},
        {"items": [{"product_id": "pen", "quantity": 1, "price": 0.01}], "shipping_address": "x"},
    ],
)
async def test_bad_orders_are_422_and_store_nothing(
    client: httpx.AsyncClient, peers: Peers, sent: Json
) -> None:
    assert_error(
        await client.post("/api/orders", json=sent, headers=ALICE), 422, "VALIDATION_ERROR"
    )
    assert (await client.get("/api/orders", headers=ADMIN)).json()["total"] == 0
    assert peers.inventory.reserve_calls == []


async def test_an_unknown_product_is_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/orders", json=body(("ghost", 1)), headers=ALICE)
    assert_error(response, 422, "UNKNOWN_PRODUCT")
    assert response.json()["details"]["product_id"] == "ghost"
    assert "ghost" in response.json()["message"]


async def test_insufficient_stock_is_a_409_naming_the_product(
    client: httpx.AsyncClient, peers: Peers
) -> None:
    response = await client.post("/api/orders", json=body(("pen", 1), ("lamp", 6)), headers=ALICE)
    assert_error(response, 409, "INSUFFICIENT_STOCK")
    assert response.json()["details"] == {"product_id": "lamp", "requested": 6, "available": 5}
    assert "Desk lamp" in response.json()["message"]
    assert peers.inventory.stock == {"pen": 100, "lamp": 5}
    assert (await client.get("/api/orders", headers=ALICE)).json()["total"] == 0
    failed = (await client.get("/api/orders?status=failed", headers=ALICE)).json()
    assert [o["status"] for o in failed["orders"]] == ["failed"]


async def test_peers_down_are_a_503_and_hold_nothing(
    client: httpx.AsyncClient, peers: Peers
) -> None:
    peers.catalog.down = True
    assert_error(await client.post("/api/orders", json=body(("pen", 1)), headers=ALICE), 503)
    assert (await client.get("/api/orders", headers=ADMIN)).json()["total"] == 0
    peers.catalog.down = False
    peers.inventory.lose_answers = True  # reserved, but the answer never came back
    response = await client.post("/api/orders", json=body(("lamp", 2)), headers=ALICE)
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert peers.inventory.stock["lamp"] == 5
    [order] = (await client.get("/api/orders", headers=ADMIN)).json()["orders"]
    assert order["status"] == "failed"
    assert peers.inventory.release_calls == [order["id"]]


async def test_ready_checks_the_peers(client: httpx.AsyncClient, peers: Peers) -> None:
    assert (await client.get("/ready")).status_code == 200
    peers.inventory.down = True
    response = await client.get("/ready")
    assert_error(response, 503)
    assert response.json()["details"]["checks"]["inventory"].startswith("failed")


# --- reading ---------------------------------------------------------------------------


async def test_another_customers_order_is_a_404(client: httpx.AsyncClient) -> None:
    order = await place(client, ("pen", 1))
    assert_error(
        await client.get(f"/api/orders/{order['id']}", headers=BOB), 404, "ORDER_NOT_FOUND"
    )
    assert (await client.get(f"/api/orders/{order['id']}", headers=ADMIN)).json() == order
    for missing in ["nope", "00000000-0000-0000-0000-000000000000"]:
        assert_error(await client.get(f"/api/orders/{missing}", headers=ALICE), 404)


async def test_lists_are_own_or_all_newest_first_paged_and_filtered(
    client: httpx.AsyncClient,
) -> None:
    mine = [await place(client, ("pen", 1)) for _ in range(3)]
    bobs = await place(client, ("pen", 1), headers=BOB)
    listed = (await client.get("/api/orders", headers=ALICE)).json()
    assert [o["id"] for o in listed["orders"]] == [o["id"] for o in reversed(mine)]
    assert (listed["total"], listed["page"], listed["limit"], listed["total_pages"]) == (
        3,
        1,
        20,
        1,
    )
    every = (await client.get("/api/orders?limit=3&page=2", headers=ADMIN)).json()
    assert (every["total"], every["total_pages"], len(every["orders"])) == (4, 2, 1)
    assert every["orders"][0]["id"] == mine[0]["id"]
    shipped = await client.patch(
        f"/api/orders/{bobs['id']}/status", json={"status": "processing"}, headers=ADMIN
    )
    assert shipped.status_code == 200
    processing = (await client.get("/api/orders?status=processing", headers=ADMIN)).json()
    assert [o["id"] for o in processing["orders"]] == [bobs["id"]]
    assert (await client.get("/api/orders?status=processing", headers=ALICE)).json()["total"] == 0
    for bad in ["status=lost", "page=0", "limit=101", "page=2&status=lost", "limit=x"]:
        answer = await client.get(f"/api/orders?{bad}", headers=ALICE)
        assert_error(answer, 422, "VALIDATION_ERROR")
        field = bad.rsplit("&", 1)[-1].split("=")[0]
        assert f"query.{field}" in answer.json()["message"], answer.json()
    # The page and the filter are read together: the second page of the processing orders.
    paged = await client.get("/api/orders?status=processing&page=2&limit=1", headers=ADMIN)
    page = paged.json()
    assert (page["page"], page["limit"], page["total"], page["orders"]) == (2, 1, 1, [])


# --- idempotency -----------------------------------------------------------------------


def keyed(key: str, headers: dict[str, str] = ALICE) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def test_a_replay_answers_the_same_status_and_body(
    client: httpx.AsyncClient, peers: Peers
) -> None:
    first = await client.post("/api/orders", json=body(("pen", 2)), headers=keyed("k-1"))
    again = await client.post("/api/orders", json=body(("pen", 2)), headers=keyed("k-1"))
    assert (again.status_code, again.json()) == (201, first.json())
    assert first.status_code == 201
    assert len(peers.inventory.reserve_calls) == 1
    other_user = await client.post("/api/orders", json=body(("pen", 2)), headers=keyed("k-1", BOB))
    assert other_user.json()["id"] != first.json()["id"]


async def test_a_key_reused_for_another_body_is_a_422(client: httpx.AsyncClient) -> None:
    await client.post("/api/orders", json=body(("pen", 2)), headers=keyed("k-1"))
    reused = await client.post("/api/orders", json=body(("pen", 3)), headers=keyed("k-1"))
    assert_error(reused, 422, "IDEMPOTENCY_KEY_REUSED")
    assert (await client.get("/api/orders", headers=ALICE)).json()["total"] == 1


async def test_a_refusal_is_replayed_too(client: httpx.AsyncClient, peers: Peers) -> None:
    first = await client.post("/api/orders", json=body(("lamp", 9)), headers=keyed("k-1"))
    peers.inventory.stock["lamp"] = 100
    again = await client.post("/api/orders", json=body(("lamp", 9)), headers=keyed("k-1"))
    assert (again.status_code, again.json()) == (409, first.json())


async def test_concurrent_requests_with_one_key_create_one_order(
    client: httpx.AsyncClient, peers: Peers
) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/orders", json=body(("pen", 1)), headers=keyed("k-1")) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert (await client.get("/api/orders", headers=ADMIN)).json()["total"] == 1
    assert peers.inventory.stock["pen"] == 99


@pytest.mark.parametrize("key", [b"", b"x" * 256, b"tab\there", "naïve".encode()])
async def test_malformed_keys_are_422(client: httpx.AsyncClient, key: bytes) -> None:
    headers = [(b"authorization", ALICE["Authorization"].encode()), (b"idempotency-key", key)]
    response = await client.post("/api/orders", json=body(("pen", 1)), headers=headers)
    assert_error(response, 422, "VALIDATION_ERROR")


# --- lifecycle -------------------------------------------------------------------------


async def move(client: httpx.AsyncClient, order_id: str, status: str) -> httpx.Response:
    return await client.patch(
        f"/api/orders/{order_id}/status", json={"status": status}, headers=ADMIN
    )


async def test_an_admin_walks_the_status_table(client: httpx.AsyncClient) -> None:
    order = await place(client, ("pen", 1))
    for status in ["processing", "shipped", "delivered"]:
        response = await move(client, order["id"], status)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        assert response.json()["updated_at"] > order["updated_at"]
    refused = await move(client, order["id"], "cancelled")
    assert_error(refused, 409, "INVALID_STATUS_TRANSITION")
    assert refused.json()["details"] == {"from": "delivered", "to": "cancelled", "allowed": []}


@pytest.mark.parametrize("status", sorted(set(TRANSITIONS) - {"processing", "cancelled"}))
async def test_a_confirmed_order_moves_only_along_the_table(
    client: httpx.AsyncClient, status: str
) -> None:
    order = await place(client, ("pen", 1))
    assert_error(await move(client, order["id"], status), 409, "INVALID_STATUS_TRANSITION")


async def test_status_changes_are_for_admins_with_a_known_status(
    client: httpx.AsyncClient,
) -> None:
    order = await place(client, ("pen", 1))
    url = f"/api/orders/{order['id']}/status"
    assert_error(await client.patch(url, json={"status": "shipped"}, headers=ALICE), 403)
    assert_error(await client.patch(url, json={"status": "lost"}, headers=ADMIN), 422)
    missing = "/api/orders/nope/status"
    assert_error(await client.patch(missing, json={"status": "shipped"}, headers=ADMIN), 404)


async def test_two_admins_racing_cannot_both_win(client: httpx.AsyncClient) -> None:
    order = await place(client, ("pen", 1))
    answers = await asyncio.gather(*(move(client, order["id"], "processing") for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]


async def test_cancelling_releases_the_stock(client: httpx.AsyncClient, peers: Peers) -> None:
    order = await place(client, ("lamp", 2))
    assert_error(await client.post(f"/api/orders/{order['id']}/cancel", headers=BOB), 404)
    response = await client.post(f"/api/orders/{order['id']}/cancel", headers=ALICE)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert peers.inventory.release_calls == [order["id"]]
    assert peers.inventory.stock["lamp"] == 5
    again = await client.post(f"/api/orders/{order['id']}/cancel", headers=ALICE)
    assert_error(again, 409, "INVALID_STATUS_TRANSITION")


async def test_only_an_admin_cancels_an_order_in_processing(
    client: httpx.AsyncClient, peers: Peers
) -> None:
    order = await place(client, ("lamp", 1))
    await move(client, order["id"], "processing")
    customer = await client.post(f"/api/orders/{order['id']}/cancel", headers=ALICE)
    assert_error(customer, 409, "INVALID_STATUS_TRANSITION")
    admin = await move(client, order["id"], "cancelled")
    assert admin.json()["status"] == "cancelled"
    assert peers.inventory.stock["lamp"] == 5


# --- reorder ---------------------------------------------------------------------------


async def test_a_reorder_lists_what_it_skipped(client: httpx.AsyncClient, peers: Peers) -> None:
    peers.catalog.entries["mug"] = CatalogEntry("mug", "Mug", 500, 0)
    peers.inventory.stock["mug"] = 1
    past = await place(client, ("pen", 2), ("lamp", 3), ("mug", 1))
    del peers.catalog.entries["mug"]
    peers.inventory.stock["lamp"] = 1
    response = await client.post(f"/api/orders/{past['id']}/reorder", headers=keyed("r-1"))
    assert response.status_code == 201, response.text
    again = response.json()
    assert [i["product_id"] for i in again["items"]] == ["pen"]
    assert again["skipped_items"] == [
        {"product_id": "mug", "title": "Mug", "quantity": 1, "reason": "unavailable"},
        {
            "product_id": "lamp",
            "title": "Desk lamp",
            "quantity": 3,
            "reason": "insufficient_stock",
            "available": 1,
        },
    ]
    replay = await client.post(f"/api/orders/{past['id']}/reorder", headers=keyed("r-1"))
    assert (replay.status_code, replay.json()) == (201, again)
    assert_error(await client.post(f"/api/orders/{past['id']}/reorder", headers=BOB), 404)


async def test_a_reorder_can_ship_elsewhere_or_find_nothing(
    client: httpx.AsyncClient, peers: Peers
) -> None:
    past = await place(client, ("lamp", 1))
    url = f"/api/orders/{past['id']}/reorder"
    elsewhere = await client.post(url, json={"shipping_address": {"line1": "2 Elm"}}, headers=ADMIN)
    assert (elsewhere.json()["user_id"], elsewhere.json()["shipping_address"]) == (
        "alice",
        {"line1": "2 Elm"},
    )
    del peers.catalog.entries["lamp"]
    nothing = await client.post(url, headers=ALICE)
    assert_error(nothing, 409, "NOTHING_TO_REORDER")
    assert nothing.json()["details"]["skipped_items"][0]["reason"] == "unavailable"
