"""Orders racing for stock across real processes: products (1 process), inventory and
orders (2 workers each), talking over HTTP on free ports, with SQLite underneath.

Overselling must be impossible however requests interleave across processes: inventory's
conditional decrement decides, and the orders saga never confirms what it did not reserve.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.orders.processes import Processes, Shop, customer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    data_dir: Path = tmp_path_factory.mktemp("order-race")
    with Processes(data_dir, {"FEED_POLL_SECONDS": "0.1"}) as processes:
        processes.start("products")
        processes.start("inventory", workers=2)
        processes.start("orders", workers=2)
        yield processes


@pytest.fixture
async def shop(processes: Processes) -> AsyncIterator[Shop]:
    shop = Shop(processes)
    yield shop
    await shop.aclose()


async def test_fifty_customers_racing_for_ten_units(shop: Shop) -> None:
    product = await shop.product("Limited print", stock=10)
    answers = await asyncio.gather(*(shop.place(customer(n), (product, 1)) for n in range(50)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 10 + [409] * 40, [a.text for a in answers if a.status_code >= 500]
    assert {a.json()["error_code"] for a in answers if a.status_code == 409} == {
        "INSUFFICIENT_STOCK"
    }
    assert await shop.stock(product) == 0
    history = await shop.history(product)
    assert sum(m["type"] == "reservation" for m in history) == 10
    assert all(m["after"] >= 0 for m in history)
    assert await shop.confirmed_units(product) == 10
    confirmed = {a.json()["id"] for a in answers if a.status_code == 201}
    assert {m["order_id"] for m in history if m["type"] == "reservation"} == confirmed


async def test_an_order_is_all_or_nothing(shop: Shop) -> None:
    plenty = await shop.product("Plenty", stock=5)
    scarce = await shop.product("Scarce", stock=1)
    refused = await shop.place(customer(1), (plenty, 2), (scarce, 2))
    assert refused.status_code == 409, refused.text
    assert refused.json()["details"] == {"product_id": scarce, "requested": 2, "available": 1}
    assert (await shop.stock(plenty), await shop.stock(scarce)) == (5, 1)
    assert [m["type"] for m in await shop.history(plenty)] == ["initial"]


async def test_opposite_line_orders_at_once_do_not_deadlock(shop: Shop) -> None:
    first = await shop.product("Left", stock=100)
    second = await shop.product("Right", stock=100)
    answers = await asyncio.gather(
        *(
            shop.place(customer(n), *([(first, 1), (second, 2)][:: 1 if n % 2 else -1]))
            for n in range(30)
        )
    )
    assert {a.status_code for a in answers} == {201}
    assert (await shop.stock(first), await shop.stock(second)) == (70, 40)


async def test_idempotency_over_real_http(shop: Shop) -> None:
    product = await shop.product("Keyed", stock=10)
    buyer = customer(7)
    answers = await asyncio.gather(
        *(shop.place(buyer, (product, 1), key="checkout-42") for _ in range(10))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert await shop.stock(product) == 9
    replay = await shop.place(buyer, (product, 1), key="checkout-42")
    assert (replay.status_code, replay.json()) == (201, answers[0].json())
    reused = await shop.place(buyer, (product, 2), key="checkout-42")
    assert (reused.status_code, reused.json()["error_code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    other = await shop.place(customer(8), (product, 1), key="checkout-42")
    assert other.status_code == 201
    assert other.json()["id"] != answers[0].json()["id"]
    assert await shop.stock(product) == 8
