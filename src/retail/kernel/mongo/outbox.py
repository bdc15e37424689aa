"""The outbox and feed cursors, written and read in the caller's unit of work."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import takewhile
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING

from retail.kernel.events import Event
from retail.kernel.mongo.client import CURSORS, OUTBOX, PENDING, VISIBLE, Document
from retail.kernel.mongo.collection import next_value
from retail.kernel.mongo.errors import as_utc
from retail.kernel.mongo.units import Unit


class MongoEventLog:
    """The outbox: `seq` from a counter document, written in the caller's unit of work."""

    def __init__(self, unit: Unit) -> None:
        self._unit = unit
        self._events = unit.collection(OUTBOX)

    async def append(self, event_type: str, key: str, data: dict[str, Any]) -> None:
        seq = await next_value(self._unit, OUTBOX)
        document: Document = {
            "_id": ObjectId(),
            "seq": seq,
            "type": event_type,
            "key": key,
            "data": data,
            "occurred_at": datetime.now(UTC),
            "state": VISIBLE,
        }
        if self._unit.pending_events:
            document |= {"state": PENDING, "unit": self._unit.id}
        await self._events.insert_one(document)
        self._unit.wrote_events = True

    async def read_after(self, after: int, limit: int) -> list[Event]:
        """Events in seq order, up to the first still pending: passing it could skip it for
        good. A pending event of a writer that died is settled first."""
        visible, stopped = await self._visible_after(after, limit)
        if stopped and await self._unit.store.abandoned():
            await self._unit.store.sweep()
            visible, _ = await self._visible_after(after, limit)
        return [_event(document) for document in visible]

    async def _visible_after(self, after: int, limit: int) -> tuple[list[Document], bool]:
        """The visible events after `after`, and whether a pending one stopped the list."""
        found = await self._events.find(
            {"seq": {"$gt": after}}, sort=[("seq", ASCENDING)], limit=limit
        )
        visible = list(takewhile(lambda d: d["state"] == VISIBLE, found))
        return visible, len(visible) < len(found)


def _event(document: Document) -> Event:
    return Event(
        seq=document["seq"],
        type=document["type"],
        key=document["key"],
        data=document["data"],
        occurred_at=as_utc(document["occurred_at"]),
    )


class MongoCursorStore:
    """Read and advance a feed cursor inside the caller's unit of work."""

    def __init__(self, unit: Unit) -> None:
        self._cursors = unit.collection(CURSORS)

    async def get(self, feed: str) -> int:
        document = await self._cursors.find_one({"_id": feed})
        return int(document["seq"]) if document else 0

    async def advance_from(self, feed: str, expected: int, seq: int) -> bool:
        """Move the cursor from `expected` to `seq`; False if another process moved it first."""
        moved = await self._cursors.update_one(
            {"_id": feed, "seq": expected}, {"$set": {"seq": seq}}
        )
        if moved.matched_count == 1:
            return True
        if expected != 0:
            return False
        # The feed's first batch: the upsert creates the cursor for one process only.
        created = await self._cursors.update_one(
            {"_id": feed}, {"$setOnInsert": {"seq": seq}}, upsert=True
        )
        return created.upserted_id is not None
