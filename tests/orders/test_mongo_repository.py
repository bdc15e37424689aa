"""What only the MongoDB adapter has: the documents as stored, and the indexes. Everything
the back ends share is in test_repository_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from retail.kernel.mongo import Database, MongoStore
from retail.orders.adapters.mongo import INDEXES, OrdersMongoUnitOfWork
from retail.orders.config import OrdersSettings
from retail.orders.domain import Failure
from retail.orders.exceptions import OrderNumberTaken
from retail.orders.ports import Units
from tests.orders.test_repository_contract import T0, a_key, add_keys, an_order, store
from tests.support import make_settings, mongodb_requested, nx_defect

pytestmark = pytest.mark.skipif(not mongodb_requested(), reason="set TEST_MONGODB_URI")


@pytest.fixture
async def mongo(tmp_path: Path) -> AsyncIterator[MongoStore]:
    settings = make_settings(OrdersSettings, tmp_path, backend="mongodb")
    store = await MongoStore.open(settings, INDEXES)
    yield store
    await store.close()


@pytest.fixture
def units(mongo: MongoStore) -> Units:
    return partial(OrdersMongoUnitOfWork, mongo)


@pytest.fixture
async def shop(mongo: MongoStore, units: Units) -> Database:
    """Order 1 placed with key k1, moved to failed with a release due, its refusal stored."""
    await add_keys(units, a_key(1))
    await store(units, an_order(1, status="pending"))
    async with units() as uow:
        lease = T0 + timedelta(minutes=5)
        await uow.orders.transition(
            an_order(1).id, "pending", "failed", T0, release_due=True, lease_until=lease
        )
        await uow.idempotency.complete(an_order(1).id, Failure(409, "INSUFFICIENT_STOCK", "No"))
        await uow.commit()
    return mongo.database


async def test_an_order_is_one_document_of_ints_with_its_lines(shop: Database) -> None:
    order = await shop.orders.find_one({"_id": an_order(1).id})
    assert order is not None
    assert order["lines"] == [
        {
            "product_id": "lamp",
            "title": "Desk lamp",
            "unit_price_cents": 2490,
            "quantity": 2,
            "tax_bp": 2000,
        },
        {
            "product_id": "yacht",
            "title": "Yacht",
            "unit_price_cents": 9_999_999_999,
            "quantity": 1,
            "tax_bp": 0,
        },
    ]
    assert all(isinstance(line["unit_price_cents"], int) for line in order["lines"])
    assert (order["status"], order["release_due"], order["order_number"]) == (
        "failed",
        True,
        "RP-0000-0001",
    )
    # Epoch milliseconds: compared in queries, and integers compare exactly everywhere.
    lease = T0 + timedelta(minutes=5)
    assert order["recovery_lease_until_ms"] == int(lease.timestamp() * 1000)
    assert order["shipping_address"] == an_order(1).shipping_address
    assert order["skipped_items"] == []
    # Nothing of the units of work is left behind.
    assert await shop.units.count_documents({}) == 0
    assert await shop.unit_journal.count_documents({}) == 0


async def test_a_key_is_named_by_its_user_and_key(shop: Database) -> None:
    key = await shop.idempotency_keys.find_one({"order_id": an_order(1).id})
    assert key is not None
    assert {k: v for k, v in key.items() if k != "created_at"} == {
        "_id": '["alice","k1"]',
        "user_id": "alice",
        "key": "k1",
        "request_hash": "h" * 64,
        "order_id": an_order(1).id,
        "outcome": {
            "kind": "failure",
            "status_code": 409,
            "error_code": "INSUFFICIENT_STOCK",
            "message": "No",
            "details": None,
        },
    }


async def test_a_duplicate_order_id_is_not_a_taken_number(units: Units) -> None:
    await store(units, an_order(1))
    with pytest.raises(DuplicateKeyError):
        await store(units, replace(an_order(1), order_number="RP-0000-9999"))
    with pytest.raises(OrderNumberTaken):
        await store(units, replace(an_order(2), order_number="RP-0000-0001"))


@nx_defect("a datetime written by $set is stored as a naive ISO string")
async def test_timestamps_are_stored_as_dates(shop: Database) -> None:
    order = await shop.orders.find_one({"_id": an_order(1).id})  # its status was $set since
    key = await shop.idempotency_keys.find_one({"order_id": an_order(1).id})
    assert order is not None
    assert key is not None
    for stored in (order["created_at"], order["updated_at"], key["created_at"]):
        assert isinstance(stored, datetime)
        assert stored.utcoffset() is not None


async def test_the_indexes_are_created(mongo: MongoStore) -> None:
    async def indexes(collection: str) -> dict[tuple[tuple[str, Any], ...], dict[str, Any]]:
        found = await mongo.database[collection].list_indexes()
        return {tuple(i["key"].items()): dict(i) async for i in found}

    orders = await indexes("orders")
    assert orders[(("order_number", 1),)].get("unique") is True
    for keys in [
        (("user_id", 1), ("created_at", 1)),
        (("created_at", 1),),
        (("status", 1), ("created_at", 1)),
        (("status", 1), ("recovery_lease_until_ms", 1)),
        (("release_due", 1), ("recovery_lease_until_ms", 1)),
    ]:
        assert not orders[keys].get("unique")
    idempotency = await indexes("idempotency_keys")
    assert {(("order_id", 1),), (("created_at", 1),)} <= set(idempotency)
    # Keys go only by the recovery pass's purge, the rule the SQL side keeps too; a TTL
    # index would delete them outside any unit of work, on the server's own schedule.
    everything = [*orders.values(), *idempotency.values()]
    assert not any("expireAfterSeconds" in index for index in everything)
