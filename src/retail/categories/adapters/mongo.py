"""MongoDB adapter: the collection and its index, the repository (domain objects in and out),
the unit of work.

A category's id is its `_id`. Names are unique case-insensitively, as on SQL: a unique index
on `name_key`, the casefolded name, which also serves the list's sort by name.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel

from retail.categories.domain import Category
from retail.categories.exceptions import CategoryNameTaken
from retail.kernel.mongo import (
    Document,
    IndexPlan,
    MongoEventLog,
    MongoUnitOfWork,
    Unit,
    as_utc,
    duplicate_key_as,
)

CATEGORIES = "categories"

INDEXES: IndexPlan = {
    CATEGORIES: [IndexModel([("name_key", ASCENDING)], name="name_key", unique=True)],
}


def _category(document: Document) -> Category:
    return Category(
        id=document["_id"],
        name=document["name"],
        logo=document.get("logo"),
        description=document["description"],
        created_at=as_utc(document["created_at"]),
        updated_at=as_utc(document["updated_at"]),
    )


def _fields(category: Category) -> dict[str, Any]:
    return {
        "name": category.name,
        "name_key": category.name.casefold(),
        "logo": category.logo,
        "description": category.description,
        "updated_at": category.updated_at,
    }


class MongoCategoryRepository:
    def __init__(self, unit: Unit) -> None:
        self._categories = unit.collection(CATEGORIES)

    async def add(self, category: Category) -> None:
        document = {"_id": category.id, "created_at": category.created_at, **_fields(category)}
        with duplicate_key_as(CategoryNameTaken):
            await self._categories.insert_one(document)

    async def get(self, category_id: str) -> Category | None:
        document = await self._categories.find_one({"_id": category_id})
        return _category(document) if document else None

    async def list_all(self) -> list[Category]:
        found = await self._categories.find({}, sort=[("name_key", ASCENDING)])
        return [_category(document) for document in found]

    async def update(self, category: Category) -> None:
        with duplicate_key_as(CategoryNameTaken):
            await self._categories.update_one({"_id": category.id}, {"$set": _fields(category)})

    async def delete(self, category_id: str) -> bool:
        return await self._categories.delete_one({"_id": category_id})


class CategoriesMongoUnitOfWork(MongoUnitOfWork):
    categories: MongoCategoryRepository
    events: MongoEventLog

    def _bind(self, unit: Unit) -> None:
        self.categories = MongoCategoryRepository(unit)
        self.events = MongoEventLog(unit)
