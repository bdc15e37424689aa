"""What only the MongoDB adapter has: the documents as stored, and the unique index on the
casefolded name. Everything the back ends share is in test_repository_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pymongo import ASCENDING

from retail.categories import service
from retail.categories.adapters.mongo import INDEXES, CategoriesMongoUnitOfWork
from retail.categories.config import CategoriesSettings
from retail.categories.dependencies import Units
from retail.categories.ports import CategoriesDeps
from retail.kernel.mongo import MongoStore
from tests.support import make_settings, mongodb_requested, nx_defect

pytestmark = pytest.mark.skipif(not mongodb_requested(), reason="set TEST_MONGODB_URI")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MongoStore]:
    settings = make_settings(CategoriesSettings, tmp_path, backend="mongodb")
    store = await MongoStore.open(settings, INDEXES)
    yield store
    await store.close()


@pytest.fixture
def units(store: MongoStore) -> Units:
    return partial(CategoriesMongoUnitOfWork, store)


async def stored(store: MongoStore, category_id: str) -> dict[str, Any]:
    document = await store.database.categories.find_one({"_id": category_id})
    assert document is not None
    return document


async def test_a_category_is_stored_with_its_casefolded_name(
    store: MongoStore, units: Units
) -> None:
    made = await service.create_category(
        CategoriesDeps(units), name="Straße", logo=None, description="d"
    )
    document = await stored(store, made.id)
    assert {k: v for k, v in document.items() if k not in {"created_at", "updated_at"}} == {
        "_id": made.id,
        "name": "Straße",
        "name_key": "strasse",
        "logo": None,
        "description": "d",
    }
    assert isinstance(document["created_at"], datetime)


@nx_defect("a datetime written by $set is stored as a naive ISO string")
async def test_timestamps_are_stored_as_dates(store: MongoStore, units: Units) -> None:
    made = await service.create_category(
        CategoriesDeps(units), name="Toys", logo=None, description=""
    )
    await service.update_category(
        CategoriesDeps(units), category_id=made.id, changes={"name": "Games"}
    )
    document = await stored(store, made.id)
    for moment in (document["created_at"], document["updated_at"]):
        assert isinstance(moment, datetime)
        assert moment.utcoffset() is not None


async def test_the_name_index_is_unique(store: MongoStore) -> None:
    found = await store.database.categories.list_indexes()
    indexes = {tuple(i["key"].items()): bool(i.get("unique")) async for i in found}
    assert indexes[(("name_key", 1),)] is True


@nx_defect("explain describes the SQLite plan behind it, not a MongoDB one")
async def test_the_list_walks_the_name_index(store: MongoStore) -> None:
    categories = store.database.categories
    plan = await categories.find({}, sort=[("name_key", ASCENDING)]).explain()
    assert "'stage': 'IXSCAN'" in str(plan["queryPlanner"]["winningPlan"])
    assert "'stage': 'SORT'" not in str(plan["queryPlanner"]["winningPlan"])
