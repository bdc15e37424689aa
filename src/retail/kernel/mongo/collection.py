"""What repositories use: a collection as a unit of work sees it, and counters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.results import UpdateResult

from retail.kernel.mongo.client import COUNTERS, Document

if TYPE_CHECKING:
    from retail.kernel.mongo.units import Unit


def _target(document: Mapping[str, Any]) -> Any:
    doc_id = document.get("_id")
    if doc_id is None or isinstance(doc_id, dict):
        raise ValueError("a unit of work writes one document at a time, named by its _id")
    return doc_id


class UnitCollection:
    """One collection as a unit of work sees it. Every write names one document by `_id`
    (the journal keeps that document's before-image)."""

    def __init__(self, unit: Unit, name: str) -> None:
        self._unit = unit
        self._name = name
        self._collection: AsyncCollection[Document] = unit.store.database[name]

    async def find_one(self, query: Document) -> Document | None:
        return await self._collection.find_one(query, session=self._unit.session)

    async def find(
        self,
        query: Document,
        *,
        sort: Sequence[tuple[str, int]] = (),
        skip: int = 0,
        limit: int = 0,
    ) -> list[Document]:
        cursor = self._collection.find(
            query, sort=list(sort) or None, skip=skip, limit=limit, session=self._unit.session
        )
        return await cursor.to_list()

    async def count(self, query: Document) -> int:
        return await self._collection.count_documents(query, session=self._unit.session)

    async def insert_one(self, document: Document) -> None:
        await self._unit.before_write(self._name, _target(document))
        await self._collection.insert_one(document, session=self._unit.session)

    async def update_one(
        self, query: Document, update: Document, *, upsert: bool = False
    ) -> UpdateResult:
        await self._unit.before_write(self._name, _target(query))
        return await self._collection.update_one(
            query, update, upsert=upsert, session=self._unit.session
        )

    async def find_one_and_update(
        self, query: Document, update: Document, *, upsert: bool = False
    ) -> Document | None:
        """The document as the update left it; None if nothing matched."""
        await self._unit.before_write(self._name, _target(query))
        return await self._collection.find_one_and_update(
            query,
            update,
            upsert=upsert,
            return_document=ReturnDocument.AFTER,
            session=self._unit.session,
        )

    async def delete_one(self, query: Document) -> bool:
        await self._unit.before_write(self._name, _target(query))
        result = await self._collection.delete_one(query, session=self._unit.session)
        return result.deleted_count == 1


async def next_value(unit: Unit, counter: str) -> int:
    """The next number of a counter (outbox seqs, movement numbers): one atomic `$inc`."""
    document = await unit.collection(COUNTERS).find_one_and_update(
        {"_id": counter}, {"$inc": {"value": 1}}, upsert=True
    )
    assert document is not None  # an upsert always leaves a document
    return int(document["value"])
