"""What only the MongoDB adapter has: the documents as stored, and the indexes the list
queries walk. Everything the back ends share is in test_repository_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING

from retail.kernel.mongo import Database, MongoStore
from retail.products import feeds
from retail.products.adapters.mongo import INDEXES, ProductsMongoUnitOfWork
from retail.products.config import ProductsSettings
from retail.products.dependencies import Units
from retail.products.domain import AddOn, CategoryDeleted, Combo
from tests.products.test_repository_contract import product
from tests.support import make_settings, mongodb_requested, nx_defect

pytestmark = pytest.mark.skipif(not mongodb_requested(), reason="set TEST_MONGODB_URI")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MongoStore]:
    settings = make_settings(ProductsSettings, tmp_path, backend="mongodb")
    store = await MongoStore.open(settings, INDEXES)
    yield store
    await store.close()


@pytest.fixture
def units(store: MongoStore) -> Units:
    return partial(ProductsMongoUnitOfWork, store)


async def stored(database: Database, product_id: str) -> dict[str, Any]:
    document = await database.products.find_one({"_id": product_id})
    assert document is not None
    return document


async def test_a_product_is_one_document_of_ints_and_sub_documents(
    store: MongoStore, units: Units
) -> None:
    made = product(3, category_id="c1", add_ons=(AddOn("Wrap", 250),), combos=(Combo("o", 2),))
    async with units() as uow:
        await uow.products.add(made)
        await uow.commit()
    document = await stored(store.database, made.id)
    assert {k: v for k, v in document.items() if k not in {"created_at", "updated_at"}} == {
        "_id": made.id,
        "id": made.id,
        "title": "Product 3",
        "title_key": "product 3",
        "description": "",
        "price_cents": 300,
        "tax_bp": 2000,
        "category_id": "c1",
        "stock": 0,
        "add_ons": [{"name": "Wrap", "price_cents": 250}],
        "combos": [{"product_id": "o", "quantity": 2}],
        "image_url": None,
        "image_key": None,
        "is_active": True,
        "brand": None,  # and no `sku` at all: the sparse unique index leaves it out
    }
    assert type(document["price_cents"]) is int
    assert isinstance(document["created_at"], datetime)


async def test_an_update_writes_the_sub_documents_whole(store: MongoStore, units: Units) -> None:
    made = product(1, add_ons=(AddOn("Wrap", 250),))
    async with units() as uow:
        await uow.products.add(made)
        await uow.products.update(
            replace(made, title="Ünïcode Title", add_ons=(AddOn("A", 1), AddOn("B", 2)))
        )
        await uow.commit()
    document = await stored(store.database, made.id)
    assert document["add_ons"] == [
        {"name": "A", "price_cents": 1},
        {"name": "B", "price_cents": 2},
    ]
    assert document["title_key"] == "ünïcode title"


@nx_defect("a datetime written by $set is stored as a naive ISO string")
async def test_timestamps_are_stored_as_dates(store: MongoStore, units: Units) -> None:
    made = product(1, category_id="hats")
    async with units() as uow:
        await uow.products.add(made)
        await uow.commit()
    await feeds.apply_category_changes(units(), [(1, CategoryDeleted("hats"))])
    document = await stored(store.database, made.id)  # updated_at was $set by the clearing
    for moment in (document["created_at"], document["updated_at"]):
        assert isinstance(moment, datetime)
        assert moment.utcoffset() is not None


async def test_deleted_categories_are_kept_by_id(store: MongoStore, units: Units) -> None:
    async with units() as uow:
        await uow.deleted_categories.add("hats")
        await uow.deleted_categories.add("hats")
        await uow.commit()
    found = await store.database.deleted_categories.find({}, {"deleted_at": 0}).to_list()
    assert found == [{"_id": "hats"}]


async def test_the_indexes_are_created(store: MongoStore) -> None:
    found = await store.database.products.list_indexes()
    keys = {tuple(i["key"].items()) async for i in found}
    for expected in [
        (("created_at", 1), ("id", 1)),
        (("price_cents", 1), ("id", 1)),
        (("title_key", 1), ("id", 1)),
        (("category_id", 1), ("created_at", 1), ("id", 1)),
        (("category_id", 1), ("price_cents", 1), ("id", 1)),
        (("category_id", 1), ("title_key", 1), ("id", 1)),
    ]:
        assert expected in keys


SORTS = {
    "newest": [("created_at", DESCENDING), ("id", DESCENDING)],
    "price_asc": [("price_cents", ASCENDING), ("id", ASCENDING)],
    "price_desc": [("price_cents", DESCENDING), ("id", DESCENDING)],
    "title": [("title_key", ASCENDING), ("id", ASCENDING)],
}
LIST_QUERIES: list[tuple[str, dict[str, Any], list[tuple[str, int]]]] = [
    *((name, {}, sort) for name, sort in SORTS.items()),
    *((f"{name}-in-category", {"category_id": "c"}, sort) for name, sort in SORTS.items()),
    ("price-range", {"price_cents": {"$gte": 100, "$lte": 900}}, SORTS["price_asc"]),
    ("price-range-desc", {"price_cents": {"$gte": 100}}, SORTS["price_desc"]),
]


def stages(plan: object) -> list[str]:
    """Every stage named anywhere in an explain plan (classic or slot-based engine)."""
    if isinstance(plan, dict):
        own = [plan["stage"]] if isinstance(plan.get("stage"), str) else []
        return own + [s for value in plan.values() for s in stages(value)]
    if isinstance(plan, list):
        return [s for value in plan for s in stages(value)]
    return []


@nx_defect("explain describes the SQLite plan behind it, not a MongoDB one")
@pytest.mark.parametrize(
    ("query", "sort"), [q[1:] for q in LIST_QUERIES], ids=[q[0] for q in LIST_QUERIES]
)
async def test_list_queries_walk_an_index_without_sorting(
    store: MongoStore, query: dict[str, Any], sort: list[tuple[str, int]]
) -> None:
    products = store.database.products
    await products.insert_many([{"_id": f"p{n}", "id": f"p{n}"} for n in range(3)])
    plan = await products.find(query, sort=sort, limit=20).explain()
    found = stages(plan["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in found, found
    assert "SORT" not in found, found
