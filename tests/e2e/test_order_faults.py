"""Crashes in the middle of the order saga, with real processes: stock is never lost or
double-counted, and no order stays pending once recovery has run.

The invariant checked after each fault: stock left + units of confirmed orders = the
stock we started with (failed and cancelled orders hold nothing).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.orders.faulty_app import FAULTY_APP
from tests.orders.processes import Processes, Shop, customer

pytestmark = pytest.mark.e2e

FAST_RECOVERY = {
    "FEED_POLL_SECONDS": "0.1",
    "PENDING_GRACE_SECONDS": "1",
    "RECOVERY_INTERVAL_SECONDS": "0.2",
    "RECOVERY_BATCH_SIZE": "200",
    "HTTP_TIMEOUT_SECONDS": "3",
}
# A customer whose order failed for an outage waits this long before trying again.
BACK_OFF_SECONDS = 0.5


async def settled(shop: Shop, product_id: str, initial: int) -> bool:
    """No order pending, and every unit is either in stock or in a confirmed order."""
    if await shop.orders("pending"):
        return False
    return await shop.stock(product_id) + await shop.confirmed_units(product_id) == initial


async def test_inventory_killed_during_a_burst_of_orders(tmp_path: Path) -> None:
    with Processes(tmp_path, FAST_RECOVERY) as processes:
        processes.start("products")
        processes.start("inventory")
        processes.start("orders", workers=2)
        shop = Shop(processes)
        product = await shop.product("Burst", stock=1000)
        answers: Counter[int] = Counter()
        done = asyncio.Event()

        async def keep_ordering(n: int) -> None:
            while not done.is_set():
                status = (await shop.place(customer(n), (product, 1))).status_code
                answers[status] += 1
                if status == 503:
                    await asyncio.sleep(BACK_OFF_SECONDS)

        burst = asyncio.gather(*(keep_ordering(n) for n in range(8)))
        await shop.eventually(lambda: _at_least(answers, 201, 20), "orders before the kill")
        processes.kill("inventory")
        await shop.eventually(lambda: _at_least(answers, 503, 8), "orders failing meanwhile")
        await asyncio.to_thread(processes.start, "inventory")
        confirmed_before = answers[201]
        await shop.eventually(
            lambda: _at_least(answers, 201, confirmed_before + 20), "orders after the restart"
        )
        done.set()
        await burst
        assert set(answers) <= {201, 503}, answers
        await shop.eventually(lambda: settled(shop, product, 1000), "recovery")
        assert min(m["after"] for m in await shop.history(product)) >= 0
        await shop.aclose()


async def _at_least(answers: Counter[int], status: int, count: int) -> bool:
    return answers[status] >= count


async def test_orders_killed_right_after_reserving(tmp_path: Path) -> None:
    with Processes(tmp_path, FAST_RECOVERY) as processes:
        processes.start("products")
        processes.start("inventory")
        processes.start("orders", app=FAULTY_APP)  # dies right after reserving
        shop = Shop(processes)
        product = await shop.product("Fragile", stock=5)
        with pytest.raises(httpx.TransportError):
            await shop.place(customer(1), (product, 2), key="checkout-1")
        assert processes.wait_exited("orders") == 1
        assert await shop.stock(product) == 3  # reserved, never confirmed
        [reservation] = [m for m in await shop.history(product) if m["type"] == "reservation"]

        processes.start("orders")
        await shop.eventually(lambda: settled(shop, product, 5), "recovery")
        [confirmed] = await shop.orders("confirmed")
        assert confirmed["id"] == reservation["order_id"]
        assert await shop.stock(product) == 3
        retry = await shop.place(customer(1), (product, 2), key="checkout-1")
        assert (retry.status_code, retry.json()["id"]) == (201, confirmed["id"])
        assert retry.json()["status"] == "confirmed"
        await shop.aclose()
