"""MongoDB adapter: collections and indexes, the repositories (domain objects in and out),
the unit of work.

Stock only moves through single conditional updates (`find_one_and_update` with
`stock: {$gte: q}`), decided by the server; nothing reads a level and writes it back.
Every unique constraint of the SQL schema is an `_id` here (product_id, order_id; a
reservation's lines are embedded, merged by product) or a unique index (movement `seq`).
Integers that order things live in their own indexed fields, not in `_id`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from retail.inventory.domain import Movement, Page, Reservation, ReservationLine, StockLevel
from retail.inventory.exceptions import ReservationExists
from retail.kernel.mongo import (
    Document,
    IndexPlan,
    MongoCursorStore,
    MongoEventLog,
    MongoUnitOfWork,
    Unit,
    as_utc,
    duplicate_key_as,
    next_value,
)

STOCK_LEVELS = "stock_levels"
MOVEMENTS = "stock_movements"
RESERVATIONS = "reservations"

INDEXES: IndexPlan = {
    # Lists sort by (title, _id). The index leaves out _id: nx-27017 (CI's stand-in) fails
    # every write to a collection with a compound index over _id, and ties on a title are
    # few, so MongoDB sorts them in memory cheaply.
    STOCK_LEVELS: [IndexModel([("title", ASCENDING)], name="title")],
    MOVEMENTS: [
        IndexModel([("seq", ASCENDING)], name="seq", unique=True),
        # Walked backwards for "newest first" under the product_id equality.
        IndexModel([("product_id", ASCENDING), ("seq", ASCENDING)], name="product_seq"),
    ],
}


def _level(document: Document) -> StockLevel:
    threshold = document.get("low_stock_threshold")
    return StockLevel(
        product_id=document["_id"],
        title=document["title"],
        category_id=document.get("category_id"),
        stock=int(document["stock"]),
        low_stock_threshold=None if threshold is None else int(threshold),
        updated_at=as_utc(document["updated_at"]),
    )


def _movement(document: Document) -> Movement:
    return Movement(
        product_id=document["product_id"],
        kind=document["kind"],
        before=int(document["before"]),
        after=int(document["after"]),
        reason=document["reason"],
        actor=document["actor"],
        order_id=document.get("order_id"),
        created_at=as_utc(document["created_at"]),
        id=int(document["seq"]),
    )


def _reservation(document: Document) -> Reservation:
    lines = sorted(
        (ReservationLine(line["product_id"], int(line["quantity"])) for line in document["lines"]),
        key=lambda line: line.product_id,
    )
    return Reservation(
        order_id=document["_id"],
        status=document["status"],
        lines=tuple(lines),
        created_at=as_utc(document["created_at"]),
    )


class MongoStockRepository:
    def __init__(self, unit: Unit) -> None:
        self._levels = unit.collection(STOCK_LEVELS)

    async def add_many(self, levels: Sequence[StockLevel]) -> list[StockLevel]:
        # One insert-only upsert per level: the unit of work journals each write by `_id`.
        return [level for level in levels if await self.add(level)]

    async def add(self, level: StockLevel) -> bool:
        # An upsert that only inserts: no duplicate-key error, which would also abort a
        # transaction that means to go on.
        fields = {
            "title": level.title,
            "category_id": level.category_id,
            "stock": level.stock,
            "low_stock_threshold": level.low_stock_threshold,
            "updated_at": level.updated_at,
        }
        result = await self._levels.update_one(
            {"_id": level.product_id}, {"$setOnInsert": fields}, upsert=True
        )
        return result.upserted_id is not None

    async def get(self, product_id: str) -> StockLevel | None:
        document = await self._levels.find_one({"_id": product_id})
        return _level(document) if document else None

    async def page(self, *, low_stock: int | None, offset: int, limit: int) -> Page[StockLevel]:
        query: Document = {}
        if low_stock is not None:
            own = {"$ifNull": ["$low_stock_threshold", low_stock]}
            query = {"$expr": {"$lte": ["$stock", own]}}
        total = await self._levels.count(query)
        found = await self._levels.find(
            query, sort=[("title", ASCENDING), ("_id", ASCENDING)], skip=offset, limit=limit
        )
        return Page([_level(document) for document in found], total)

    async def describe(
        self, product_id: str, title: str, category_id: str | None, now: datetime
    ) -> bool:
        described = {"title": title, "category_id": category_id, "updated_at": now}
        return await self._update({"_id": product_id}, {"$set": described})

    async def compare_and_set(
        self, product_id: str, expected: int, stock: int, now: datetime
    ) -> bool:
        return await self._update(
            {"_id": product_id, "stock": expected}, {"$set": {"stock": stock, "updated_at": now}}
        )

    async def set_threshold(self, product_id: str, threshold: int | None) -> None:
        await self._update({"_id": product_id}, {"$set": {"low_stock_threshold": threshold}})

    async def decrement(self, product_id: str, quantity: int, now: datetime) -> int | None:
        return await self._move({"_id": product_id, "stock": {"$gte": quantity}}, -quantity, now)

    async def increment(self, product_id: str, quantity: int, now: datetime) -> int | None:
        return await self._move({"_id": product_id}, quantity, now)

    async def remove(self, product_id: str) -> bool:
        return await self._levels.delete_one({"_id": product_id})

    async def _update(self, query: Document, update: Document) -> bool:
        """One conditional update; whether it matched the level is the answer."""
        result = await self._levels.update_one(query, update)
        return result.matched_count == 1

    async def _move(self, query: Document, change: int, now: datetime) -> int | None:
        """One conditional `$inc`: the stock it left, or None if the condition failed."""
        moved = await self._levels.find_one_and_update(
            query, {"$inc": {"stock": change}, "$set": {"updated_at": now}}
        )
        return None if moved is None else int(moved["stock"])


class MongoMovementRepository:
    def __init__(self, unit: Unit) -> None:
        self._unit = unit
        self._movements = unit.collection(MOVEMENTS)

    async def add_many(self, movements: Sequence[Movement]) -> None:
        for movement in movements:
            await self.add(movement)

    async def add(self, movement: Movement) -> None:
        # Numbered from a counter, as the SQL table's autoincrement numbers them: the order.
        seq = await next_value(self._unit, MOVEMENTS)
        document: dict[str, Any] = {
            "_id": ObjectId(),
            "seq": seq,
            "product_id": movement.product_id,
            "kind": movement.kind,
            "before": movement.before,
            "after": movement.after,
            "change": movement.change,  # for readers of the collection; the domain derives it
            "reason": movement.reason,
            "actor": movement.actor,
            "order_id": movement.order_id,
            "created_at": movement.created_at,
        }
        await self._movements.insert_one(document)

    async def page(self, product_id: str, *, offset: int, limit: int) -> Page[Movement]:
        mine = {"product_id": product_id}
        total = await self._movements.count(mine)
        found = await self._movements.find(
            mine, sort=[("seq", DESCENDING)], skip=offset, limit=limit
        )
        return Page([_movement(document) for document in found], total)


class MongoReservationRepository:
    def __init__(self, unit: Unit) -> None:
        self._reservations = unit.collection(RESERVATIONS)

    async def add(self, reservation: Reservation) -> None:
        # The lines are set whole in the insert (never `$push`ed): the order_id `_id` then
        # guards the reservation and its lines together.
        document = {
            "_id": reservation.order_id,
            "status": reservation.status,
            "lines": [
                {"product_id": line.product_id, "quantity": line.quantity}
                for line in reservation.lines
            ],
            "created_at": reservation.created_at,
        }
        with duplicate_key_as(ReservationExists):
            await self._reservations.insert_one(document)

    async def get(self, order_id: str) -> Reservation | None:
        document = await self._reservations.find_one({"_id": order_id})
        return _reservation(document) if document else None

    async def mark_released(self, order_id: str, now: datetime) -> bool:
        result = await self._reservations.update_one(
            {"_id": order_id, "status": "reserved"},
            {"$set": {"status": "released", "released_at": now}},
        )
        return result.matched_count == 1


class MongoBatchEventLog(MongoEventLog):
    async def append_many(self, events: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        for event_type, key, data in events:  # each takes its seq from the counter, in order
            await self.append(event_type, key, data)


class InventoryMongoUnitOfWork(MongoUnitOfWork):
    stock: MongoStockRepository
    movements: MongoMovementRepository
    reservations: MongoReservationRepository
    cursors: MongoCursorStore
    events: MongoBatchEventLog

    def _bind(self, unit: Unit) -> None:
        self.stock = MongoStockRepository(unit)
        self.movements = MongoMovementRepository(unit)
        self.reservations = MongoReservationRepository(unit)
        self.cursors = MongoCursorStore(unit)
        self.events = MongoBatchEventLog(unit)
