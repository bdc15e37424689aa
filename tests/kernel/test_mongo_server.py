"""The MongoDB behaviours our adapters rely on or steer around, checked on the run's server.

Every test here holds on MongoDB itself. Those that nx-27017 (CI's stand-in) gets wrong are
strict xfails there, so this file is the map for whoever writes a Mongo adapter: what the
stand-in cannot be trusted with, and so what an adapter must not depend on it to test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from bson import Decimal128
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, WriteError

from retail.kernel.mongo import database_name, mongo_client, offers_transactions
from retail.kernel.settings import Settings
from tests.support import make_settings, mongodb_requested, nx_defect, on_nx

pytestmark = pytest.mark.skipif(not mongodb_requested(), reason="set TEST_MONGODB_URI")
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
Database = AsyncDatabase[dict[str, Any]]


class ConformanceSettings(Settings):
    service_name: ClassVar[str] = "conformance"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[AsyncMongoClient[dict[str, Any]], str]]:
    settings = make_settings(ConformanceSettings, tmp_path, backend="mongodb")
    client = mongo_client(settings.resolved_database_url())
    yield client, database_name(client, settings)
    await client.close()


@pytest.fixture
def db(client: tuple[AsyncMongoClient[dict[str, Any]], str]) -> Database:
    return client[0][client[1]]


async def test_conditional_updates_and_duplicate_keys(db: Database) -> None:
    await db.s.insert_one({"_id": "a", "stock": 3})
    taken = {"$inc": {"stock": -2}}
    after = await db.s.find_one_and_update(
        {"_id": "a", "stock": {"$gte": 2}}, taken, return_document=ReturnDocument.AFTER
    )
    assert after == {"_id": "a", "stock": 1}
    assert await db.s.find_one_and_update({"_id": "a", "stock": {"$gte": 2}}, taken) is None
    with pytest.raises(DuplicateKeyError):
        await db.s.insert_one({"_id": "a"})


@nx_defect("$push of a sub-document turns every element of the array into a JSON string")
async def test_push_keeps_sub_documents(db: Database) -> None:
    await db.s.insert_one({"_id": "o", "lines": [{"p": "x", "q": 1}]})
    await db.s.update_one({"_id": "o"}, {"$push": {"lines": {"p": "y", "q": 2}}})
    found = await db.s.find_one({"_id": "o"})
    assert found is not None
    assert found["lines"] == [{"p": "x", "q": 1}, {"p": "y", "q": 2}]


@nx_defect("Decimal128 is refused ('not JSON serializable'): keep money in integer cents")
async def test_decimal128_round_trips(db: Database) -> None:
    await db.s.insert_one({"_id": "p", "price": Decimal128(Decimal("9.99"))})
    found = await db.s.find_one({"_id": "p"})
    assert found is not None
    assert found["price"].to_decimal() == Decimal("9.99")


@nx_defect("a datetime written by $set (not by an insert) is stored as a naive ISO string")
async def test_set_keeps_a_date(db: Database) -> None:
    await db.s.insert_one({"_id": "a", "created_at": NOW})
    await db.s.update_one({"_id": "a"}, {"$set": {"updated_at": NOW}})
    found = await db.s.find_one({"_id": "a"})
    assert found is not None
    assert found["updated_at"] == NOW


@nx_defect("dates compare as text, so a bound with sub-second digits misses (hence the "
           "writer lease's expiry in epoch milliseconds)")  # fmt: skip
async def test_dates_compare(db: Database) -> None:
    await db.s.insert_one({"_id": "a", "at": NOW + timedelta(milliseconds=437)})
    bound = NOW + timedelta(milliseconds=438, microseconds=500)
    assert [d["_id"] async for d in db.s.find({"at": {"$lt": bound}})] == ["a"]


@nx_defect("an upsert by find_one_and_update whose filter misses an existing _id neither "
           "raises DuplicateKeyError nor writes: it returns None")  # fmt: skip
async def test_an_upsert_onto_a_taken_id_is_a_duplicate(db: Database) -> None:
    await db.s.insert_one({"_id": "lock", "holder": "one"})
    with pytest.raises(DuplicateKeyError):
        await db.s.find_one_and_update(
            {"_id": "lock", "holder": "nobody"}, {"$set": {"holder": "two"}}, upsert=True
        )


@nx_defect("a compound index over _id is refused, or, on an empty collection, accepted and "
           "then fails every write ('JSON path error near _id')")  # fmt: skip
async def test_a_compound_index_may_include_id(db: Database) -> None:
    await db.s.create_indexes([IndexModel([("title", ASCENDING), ("_id", ASCENDING)])])
    await db.s.insert_one({"_id": "a", "title": "A"})
    assert await db.s.count_documents({}) == 1


@nx_defect("integer _id values sort as text (1, 10, 2): order by an indexed field instead")
async def test_integer_ids_sort_as_numbers(db: Database) -> None:
    await db.s.insert_many([{"_id": n} for n in (1, 2, 10)])
    assert [d["_id"] async for d in db.s.find({}).sort("_id", -1)] == [10, 2, 1]


@nx_defect("null in a query: count_documents and $or miss documents that find matches")
async def test_null_matches_null_and_missing(db: Database) -> None:
    await db.s.insert_many([{"_id": 1, "x": None}, {"_id": 2}, {"_id": 3, "x": 1}])
    assert await db.s.count_documents({"x": None}) == 2
    assert [d["_id"] async for d in db.s.find({"$or": [{"x": None}, {"x": 5}]})] == [1, 2]


@nx_defect("collection validators ($jsonSchema) are accepted but not enforced")
async def test_a_validator_refuses_bad_documents(db: Database) -> None:
    schema = {"bsonType": "object", "properties": {"stock": {"bsonType": "int", "minimum": 0}}}
    await db.create_collection("v", validator={"$jsonSchema": schema})
    with pytest.raises(WriteError):
        await db.v.insert_one({"_id": 1, "stock": -1})


@nx_defect("a transaction is a savepoint on a connection shared by every client: what it "
           "writes is visible outside it before it commits")  # fmt: skip
async def test_a_transaction_is_isolated_until_it_commits(
    client: tuple[AsyncMongoClient[dict[str, Any]], str], db: Database
) -> None:
    # nx-27017 says it is a standalone yet takes transactions: try them there anyway.
    if not on_nx() and not offers_transactions(await client[0].admin.command("hello")):
        pytest.skip("this server runs no transactions (a standalone)")
    await db.s.insert_one({"_id": "a", "n": 1})
    async with client[0].start_session() as session:
        await session.start_transaction()
        await db.s.update_one({"_id": "a"}, {"$set": {"n": 2}}, session=session)
        outside = await db.s.find_one({"_id": "a"})
        await session.abort_transaction()
    assert outside == {"_id": "a", "n": 1}
