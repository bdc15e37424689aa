"""What only the MongoDB adapter has: the documents as stored, and the indexes. Everything
the back ends share is in test_repository_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from retail.inventory import service
from retail.inventory.adapters.mongo import INDEXES, InventoryMongoUnitOfWork
from retail.inventory.config import InventorySettings
from retail.inventory.dependencies import Units
from retail.inventory.domain import ProductCreated, ReservationLine
from retail.inventory.ports import InventoryDeps
from retail.kernel.mongo import Database, MongoStore
from tests.support import make_settings, mongodb_requested, nx_defect

pytestmark = pytest.mark.skipif(not mongodb_requested(), reason="set TEST_MONGODB_URI")
ORDERS = "service:orders"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MongoStore]:
    settings = make_settings(InventorySettings, tmp_path, backend="mongodb")
    store = await MongoStore.open(settings, INDEXES)
    yield store
    await store.close()


@pytest.fixture
async def shop(store: MongoStore) -> Database:
    """Levels a (5) and b (2), order o1 reserving 2 of a and 1 of b, then released."""
    units: Units = partial(InventoryMongoUnitOfWork, store)
    batch = [(1, ProductCreated("a", "A", "c1", 5)), (2, ProductCreated("b", "B", None, 2))]
    await service.apply_product_changes(units(), batch)
    lines = [ReservationLine("a", 2), ReservationLine("b", 1)]
    await service.reserve_stock(InventoryDeps(units), order_id="o1", lines=lines, actor=ORDERS)
    await service.release_reservation(InventoryDeps(units), order_id="o1", actor=ORDERS)
    return store.database


async def documents(database: Database, collection: str) -> list[dict[str, Any]]:
    return await database[collection].find({}, {"_id": 0}).sort("seq", 1).to_list()


async def test_documents_hold_ints_and_whole_lines(shop: Database) -> None:
    level = await shop.stock_levels.find_one({"_id": "a"})
    assert level is not None
    assert {k: v for k, v in level.items() if k != "updated_at"} == {
        "_id": "a",
        "title": "A",
        "category_id": "c1",
        "stock": 5,
        "low_stock_threshold": None,
    }
    assert type(level["stock"]) is int
    reservation = await shop.reservations.find_one({"_id": "o1"})
    assert reservation is not None
    assert reservation["status"] == "released"
    assert reservation["lines"] == [
        {"product_id": "a", "quantity": 2},
        {"product_id": "b", "quantity": 1},
    ]
    movements = await documents(shop, "stock_movements")
    assert [(m["seq"], m["kind"], m["change"]) for m in movements] == [
        (1, "initial", 5),
        (2, "initial", 2),
        (3, "reservation", -2),
        (4, "reservation", -1),
        (5, "release", 2),
        (6, "release", 1),
    ]
    events = await documents(shop, "outbox_events")
    assert [(e["seq"], e["state"], "unit" in e) for e in events] == [
        (n, "visible", False) for n in range(1, 7)
    ]
    # Nothing of the units of work is left behind.
    assert await shop.units.count_documents({}) == 0
    assert await shop.unit_journal.count_documents({}) == 0


@nx_defect("a datetime written by $set is stored as a naive ISO string")
async def test_timestamps_are_stored_as_dates(shop: Database) -> None:
    level = await shop.stock_levels.find_one({"_id": "a"})  # its stock was $set since
    reservation = await shop.reservations.find_one({"_id": "o1"})
    assert level is not None
    assert reservation is not None
    for stored in (level["updated_at"], reservation["created_at"], reservation["released_at"]):
        assert isinstance(stored, datetime)
        assert stored.utcoffset() is not None


async def test_the_indexes_are_created(store: MongoStore) -> None:
    async def keys(collection: str) -> dict[tuple[tuple[str, Any], ...], bool]:
        found = await store.database[collection].list_indexes()
        return {tuple(i["key"].items()): bool(i.get("unique")) async for i in found}

    assert (await keys("stock_levels"))[(("title", 1),)] is False
    movements = await keys("stock_movements")
    assert movements[(("seq", 1),)] is True
    assert movements[(("product_id", 1), ("seq", 1))] is False
    assert (await keys("outbox_events"))[(("seq", 1),)] is True
