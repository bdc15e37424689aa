"""MongoDB adapter: collections and indexes, the repositories (domain objects in and out),
the unit of work.

An order is one document with its lines embedded, set whole (at insert, or replaced whole
while pending; never `$push`ed). Status changes and recovery claims are single conditional
writes (`find_one_and_update` with the expected status in the filter), decided by the
server; nothing reads an order's status and writes it back. The unique guards of the SQL
schema are an `_id` here (the order id; the (user_id, key) pair of an idempotency key) or a
unique index (the order number), and their duplicate-key errors become the domain's signals.
Money is integer cents, as on SQL.
"""

from __future__ import annotations

import json
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from retail.kernel.mongo import Document, IndexPlan, MongoUnitOfWork, Unit, as_utc, duplicate_key_as
from retail.orders.adapters.documents import (
    LEASE,
    ORDER_NUMBER,
    line_documents,
    order_document,
    order_of,
    skipped_documents,
    to_ms,
)
from retail.orders.adapters.records import outcome_from_json, outcome_to_json
from retail.orders.domain import IdempotencyRecord, Order, OrderQuery, OrderStatus, Outcome, Page
from retail.orders.exceptions import IdempotencyKeyTaken, OrderNumberTaken

ORDERS = "orders"
IDEMPOTENCY_KEYS = "idempotency_keys"

INDEXES: IndexPlan = {
    # Lists sort by (created_at, _id), newest first: these are walked backwards under the
    # user_id or status equality. No index names _id: nx-27017 fails every write to a
    # collection with a compound index over it, and ties on a creation time are few, so
    # MongoDB orders them in memory cheaply.
    ORDERS: [
        IndexModel([(ORDER_NUMBER, ASCENDING)], name=ORDER_NUMBER, unique=True),
        IndexModel([("user_id", ASCENDING), ("created_at", ASCENDING)], name="user_created"),
        IndexModel([("created_at", ASCENDING)], name="created"),
        IndexModel([("status", ASCENDING), ("created_at", ASCENDING)], name="status_created"),
        # What recovery scans: pending orders, and orders with a release due, by lease.
        IndexModel([("status", ASCENDING), (LEASE, ASCENDING)], name="status_lease"),
        IndexModel([("release_due", ASCENDING), (LEASE, ASCENDING)], name="release_lease"),
    ],
    IDEMPOTENCY_KEYS: [
        IndexModel([("order_id", ASCENDING)], name="order_id"),
        IndexModel([("created_at", ASCENDING)], name="created_at"),
    ],
}


def _query_filter(query: OrderQuery) -> Document:
    found: Document = {}
    if query.user_id is not None:
        found["user_id"] = query.user_id
    if query.status is not None:
        found["status"] = query.status
    elif query.hide_failed:
        found["status"] = {"$ne": "failed"}
    return found


def _names_order_number(exc: DuplicateKeyError) -> bool:
    """Whether the duplicate is the order number (not the order id): MongoDB names the key
    pattern; other servers (nx-27017) only the index, in the message."""
    details = exc.details or {}
    pattern = details.get("keyPattern")
    if isinstance(pattern, dict):
        return ORDER_NUMBER in pattern
    return ORDER_NUMBER in str(details.get("errmsg", exc))


class MongoOrderRepository:
    def __init__(self, unit: Unit) -> None:
        self._orders = unit.collection(ORDERS)

    async def add(self, order: Order) -> None:
        try:
            await self._orders.insert_one(order_document(order))
        except DuplicateKeyError as exc:
            if _names_order_number(exc):
                raise OrderNumberTaken() from None
            raise

    async def get(self, order_id: str) -> Order | None:
        document = await self._orders.find_one({"_id": order_id})
        return order_of(document) if document else None

    async def page(self, query: OrderQuery, *, offset: int, limit: int) -> Page[Order]:
        condition = _query_filter(query)
        total = await self._orders.count(condition)
        found = await self._orders.find(
            condition,
            sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
            skip=offset,
            limit=limit,
        )
        return Page([order_of(document) for document in found], total)

    async def transition(
        self,
        order_id: str,
        expected: OrderStatus,
        new: OrderStatus,
        now: datetime,
        *,
        release_due: bool = False,
        lease_until: datetime | None = None,
    ) -> bool:
        changes: Document = {"status": new, "updated_at": now}
        if release_due:
            changes["release_due"] = True
        if lease_until is not None:
            changes[LEASE] = to_ms(lease_until)
        moved = await self._orders.find_one_and_update(
            {"_id": order_id, "status": expected}, {"$set": changes}
        )
        return moved is not None

    async def replace_lines(self, order: Order) -> bool:
        replaced = await self._orders.update_one(
            {"_id": order.id, "status": "pending"},
            {
                "$set": {
                    "lines": line_documents(order),
                    "skipped_items": skipped_documents(order),
                    "reservation_id": order.reservation_id,
                    "updated_at": order.updated_at,
                }
            },
        )
        return replaced.matched_count == 1

    async def claim_pending(self, now: datetime, until: datetime, limit: int) -> list[Order]:
        return await self._claim({"status": "pending"}, now, until, limit)

    async def claim_releases(self, now: datetime, until: datetime, limit: int) -> list[Order]:
        return await self._claim({"release_due": True}, now, until, limit)

    async def release_done(self, order_id: str, now: datetime) -> None:
        await self._orders.update_one({"_id": order_id}, {"$set": {"release_due": False}})

    async def _claim(
        self, due: Document, now: datetime, until: datetime, limit: int
    ) -> list[Order]:
        expired = {**due, LEASE: {"$lte": to_ms(now)}}
        candidates = await self._orders.find(expired, sort=[(LEASE, ASCENDING)], limit=limit)
        claimed: list[Order] = []
        for candidate in candidates:
            # Conditional on the lease still being expired: another process may have just
            # claimed it.
            document = await self._orders.find_one_and_update(
                {"_id": candidate["_id"], **expired}, {"$set": {LEASE: to_ms(until)}}
            )
            if document is not None:
                claimed.append(order_of(document))
        return claimed


def _key_id(user_id: str, key: str) -> str:
    """The (user_id, key) pair as one `_id` (a unit of work writes documents named by a
    plain `_id`): JSON, so no user id or key can make two pairs read the same."""
    return json.dumps([user_id, key], ensure_ascii=False, separators=(",", ":"))


class MongoIdempotencyRepository:
    def __init__(self, unit: Unit) -> None:
        self._keys = unit.collection(IDEMPOTENCY_KEYS)

    async def get(self, user_id: str, key: str) -> IdempotencyRecord | None:
        document = await self._keys.find_one({"_id": _key_id(user_id, key)})
        if document is None:
            return None
        outcome = document["outcome"]
        return IdempotencyRecord(
            user_id=document["user_id"],
            key=document["key"],
            request_hash=document["request_hash"],
            order_id=document["order_id"],
            created_at=as_utc(document["created_at"]),
            outcome=None if outcome is None else outcome_from_json(outcome),
        )

    async def add(self, record: IdempotencyRecord) -> None:
        document = {
            "_id": _key_id(record.user_id, record.key),
            "user_id": record.user_id,
            "key": record.key,
            "request_hash": record.request_hash,
            "order_id": record.order_id,
            "outcome": None,
            "created_at": record.created_at,
        }
        # No look first: the use case abandons its unit of work when it loses this race.
        with duplicate_key_as(IdempotencyKeyTaken):
            await self._keys.insert_one(document)

    async def complete(self, order_id: str, outcome: Outcome) -> None:
        stored = outcome_to_json(outcome)
        for document in await self._keys.find({"order_id": order_id}):
            await self._keys.update_one(
                {"_id": document["_id"], "outcome": None}, {"$set": {"outcome": stored}}
            )

    async def discard(self, user_id: str, key: str) -> None:
        await self._keys.delete_one({"_id": _key_id(user_id, key)})

    async def discard_for_order(self, order_id: str) -> None:
        for document in await self._keys.find({"order_id": order_id}):
            await self._keys.delete_one({"_id": document["_id"]})

    async def purge(self, before: datetime, limit: int) -> int:
        doomed = await self._keys.find({"created_at": {"$lt": before}}, limit=limit)
        for document in doomed:
            await self._keys.delete_one({"_id": document["_id"]})
        return len(doomed)


class OrdersMongoUnitOfWork(MongoUnitOfWork):
    """Writers of the service take turns (the kernel's writer lock or lease), so a look
    followed by a write by `_id` (finding a key by its order) sees no other writer between."""

    orders: MongoOrderRepository
    idempotency: MongoIdempotencyRepository

    def _bind(self, unit: Unit) -> None:
        self.orders = MongoOrderRepository(unit)
        self.idempotency = MongoIdempotencyRepository(unit)
