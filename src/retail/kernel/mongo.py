"""MongoDB storage: the client, a database per service, indexes, the unit of work, the outbox
and feed cursors (DESIGN.md decisions 2, 3 and 7; docs/architecture.md, "MongoDB").

A unit of work keeps `SqlUnitOfWork`'s contract: `async with uow: ...; await uow.commit()`,
and what was not committed is rolled back. The writers of one service take turns, like the
outbox writers on PostgreSQL, so seq order is commit order on every kind of server:

- A replica set or sharded cluster (`hello` says so, read once) runs each unit as a
  transaction whose first write takes the service's writer-lock document.
- A standalone server (and nx-27017, the CI stand-in) has no multi-document transactions.
  A writer holds a lease on the lock, journals each document's before-image before its
  first write to it, and writes its events `pending`. Its record in `units` is the commit
  point; rollback restores the before-images. What a dead process left is settled by the
  next writer, the start-up sweep, or a feed read that finds the lease expired.

Units of work do not nest: a second writer in the same task would wait for itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from itertools import takewhile
from types import TracebackType
from typing import Any, Self

from bson import ObjectId
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)
from pymongo.read_concern import ReadConcern
from pymongo.results import UpdateResult

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.events import Event, notify_outbox_commit
from retail.kernel.settings import Settings

Document = dict[str, Any]
Database = AsyncDatabase[Document]
IndexPlan = Mapping[str, Sequence[IndexModel]]

logger = logging.getLogger("retail.mongo")

DEFAULT_DATABASE = "retail"
OUTBOX, CURSORS, COUNTERS = "outbox_events", "feed_cursors", "counters"
LOCKS, UNITS, JOURNAL = "writer_lock", "units", "unit_journal"
WRITER = "writer"
VISIBLE, PENDING = "visible", "pending"
OPEN, COMMITTED, ABORTED = "open", "committed", "aborted"
# A standalone writer holds the lock this long at most; then the next one takes it over.
LEASE_MS = 10_000
# Longer than a lease, so a writer outwaits a dead holder instead of answering 503.
TURN_WAIT_SECONDS = 15.0
SERVER_SELECTION_MS = 5_000
BUSY = "The database is busy; try again shortly"

KERNEL_INDEXES: IndexPlan = {
    OUTBOX: [
        IndexModel([("seq", ASCENDING)], name="seq", unique=True),
        IndexModel([("unit", ASCENDING)], name="pending_unit", sparse=True),
    ],
    JOURNAL: [IndexModel([("unit", ASCENDING), ("n", ASCENDING)], name="unit_n")],
}


def mongo_client(url: str) -> AsyncMongoClient[Document]:
    """PyMongo's native async client; BSON dates come back aware (UTC), as on SQL."""
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=SERVER_SELECTION_MS)


def database_name(client: AsyncMongoClient[Document], settings: Settings) -> str:
    """`<URL's database, or retail>_<schema prefix><service>`: a database per service, and per
    schema prefix, as schemas are on PostgreSQL (tests get one per data dir)."""
    return f"{client.get_default_database(DEFAULT_DATABASE).name}_{settings.database_schema()}"


def offers_transactions(hello: Mapping[str, Any]) -> bool:
    """Replica-set members and mongos routers run transactions; a standalone server does not."""
    return "setName" in hello or hello.get("msg") == "isdbgrid"


async def create_indexes(database: Database, plan: IndexPlan) -> None:
    """Create the plan's indexes; idempotent, so every process runs it at start-up. A unique
    index the server refuses stops start-up, as correctness rests on it; any other only
    speeds queries up, so its refusal is logged and the service runs on."""
    for collection, models in plan.items():
        for model in models:
            try:
                await database[collection].create_indexes([model])
            except OperationFailure as exc:
                if model.document.get("unique"):
                    raise
                logger.warning("index %s not created: %s", model.document["name"], exc)


# --- errors and values --------------------------------------------------------------------


# Server errors that are the storage's state, not the request's: out of disk space, no
# writable primary (an election), shutting down, a lock not granted in time.
_UNAVAILABLE_CODES = frozenset({14031, 10107, 13435, 11600, 11602, 91, 189, 24, 46})


def is_unavailable(exc: BaseException) -> bool:
    """'Try again shortly': the server unreachable or slow, out of space or without a
    primary, or a transaction lost a conflict."""
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WTimeoutError):
        return True
    if isinstance(exc, OperationFailure) and exc.code in _UNAVAILABLE_CODES:
        return True
    return isinstance(exc, PyMongoError) and (
        exc.timeout
        or exc.has_error_label("TransientTransactionError")
        or exc.has_error_label("RetryableWriteError")
    )


@contextmanager
def unavailable_as_503() -> Iterator[None]:
    try:
        yield
    except PyMongoError as exc:
        if not is_unavailable(exc):
            raise
        logger.warning("MongoDB unavailable: %s", exc)
        raise ServiceUnavailable("The database is unavailable; try again shortly") from exc


@contextmanager
def duplicate_key_as(conflict: Callable[[], Exception]) -> Iterator[None]:
    """A duplicate key becomes the caller's own conflict (e.g. `ReservationExists`)."""
    try:
        yield
    except DuplicateKeyError:
        raise conflict() from None


def as_utc(value: datetime | str) -> datetime:
    """A stored timestamp as an aware UTC datetime. (nx-27017 hands back a datetime written
    by `$set` as a naive ISO string; MongoDB itself always returns a date.)"""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _backoff() -> Iterator[float]:
    delay = 0.002
    while True:
        yield delay * (0.5 + random.random())
        delay = min(delay * 2, 0.05)


def _target(document: Mapping[str, Any]) -> Any:
    doc_id = document.get("_id")
    if doc_id is None or isinstance(doc_id, dict):
        raise ValueError("a unit of work writes one document at a time, named by its _id")
    return doc_id


# --- the store and its units -------------------------------------------------------------


class MongoStore:
    """One service's database, opened in the lifespan and shared by its units of work."""

    def __init__(
        self, client: AsyncMongoClient[Document], database: Database, *, transactions: bool
    ) -> None:
        self.client = client
        self.database = database
        self.transactions = transactions
        # Writers of one process queue here, so only one of them contends at the server.
        self.turn = asyncio.Lock()

    @classmethod
    async def open(
        cls, settings: Settings, indexes: IndexPlan, *, transactions: bool | None = None
    ) -> MongoStore:
        """Connect, learn whether the server runs transactions (`transactions` overrides
        that, for tests), create the indexes and settle what a dead writer left."""
        client = mongo_client(settings.resolved_database_url())
        try:
            with unavailable_as_503():
                if transactions is None:
                    transactions = offers_transactions(await client.admin.command("hello"))
                database = client[database_name(client, settings)]
                store = cls(client, database, transactions=transactions)
                await create_indexes(database, KERNEL_INDEXES)
                await create_indexes(database, indexes)
                await store.sweep()
        except BaseException:
            await client.close()
            raise
        return store

    def unit(self, *, readonly: bool) -> Unit:
        if self.transactions:
            return TransactionUnit(self, readonly=readonly)
        return JournalUnit(self, readonly=readonly)

    async def sweep(self) -> None:
        """Settle the units of writers that died (standalone servers; a replica set aborts a
        dead writer's transaction by itself)."""
        if self.transactions:
            return
        sweeper = uuid.uuid4().hex
        async with self.turn:
            await _take_lease(self, sweeper)
            await _settle_abandoned(self, sweeper)
            await _release_lease(self.database, sweeper)

    async def abandoned(self) -> bool:
        """Whether a writer died holding the lease (it expired without being given back)."""
        lease = await self.database[LOCKS].find_one({"_id": WRITER})
        return bool(lease and lease.get("holder") and lease["expires_ms"] < _now_ms())

    async def ping(self) -> None:
        await self.database.command("ping")

    async def close(self) -> None:
        await self.client.close()


class Unit:
    """What a unit of work's repositories read and write through: collections bound to its
    transaction or its journal. Repositories never see sessions, leases or journals."""

    def __init__(self, store: MongoStore, *, readonly: bool) -> None:
        self.store = store
        self.readonly = readonly
        self.id = uuid.uuid4().hex
        self.session: AsyncClientSession | None = None
        self.committed = False
        self.wrote_events = False  # the commit wakes held feed reads (events.OUTBOX_COMMITS)
        self._has_turn = False

    @property
    def pending_events(self) -> bool:
        """Whether events must wait for the commit to become visible (no transaction)."""
        return False

    def collection(self, name: str) -> UnitCollection:
        return UnitCollection(self, name)

    async def begin(self) -> None:
        if not self.readonly:
            await self.store.turn.acquire()
            self._has_turn = True

    async def before_write(self, collection: str, doc_id: Any) -> None:
        if self.readonly:
            raise RuntimeError("a read-only unit of work cannot write")

    async def commit(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Roll back unless committed, and give the turn back."""
        if self._has_turn:
            self._has_turn = False
            self.store.turn.release()


class TransactionUnit(Unit):
    """A transaction. Its first write takes the writer-lock document: another transaction
    writing it would get a write conflict and abort, so a writer first queues behind the
    holder with a write outside any transaction (the server makes that wait until the
    holder ends) and retries the rare conflict left, before any use-case code has run.
    The outbox counter is then never contended, and seq order is commit order."""

    async def begin(self) -> None:
        self.session = self.store.client.start_session()
        try:
            if self.readonly:
                await self.session.start_transaction(read_concern=ReadConcern("snapshot"))
                return
            await super().begin()
            await self._take_writer_lock(self.session)
        except BaseException:
            await self.close()
            raise

    async def _take_writer_lock(self, session: AsyncClientSession) -> None:
        locks = self.store.database[LOCKS]
        deadline = time.monotonic() + TURN_WAIT_SECONDS
        for delay in _backoff():
            # maxTimeMS bounds the wait at the server (ExecutionTimeout -> 503), leaving
            # server selection to its own, shorter timeout.
            await locks.find_one_and_update(
                {"_id": WRITER},
                {"$inc": {"turns": 1}},
                upsert=True,
                maxTimeMS=int(TURN_WAIT_SECONDS * 1000),
            )
            await session.start_transaction()
            try:
                await locks.update_one({"_id": WRITER}, {"$inc": {"turns": 1}}, session=session)
                return
            except PyMongoError as exc:
                await session.abort_transaction()
                if not exc.has_error_label("TransientTransactionError"):
                    raise
            if time.monotonic() > deadline:
                raise ServiceUnavailable(BUSY)
            await asyncio.sleep(delay)

    async def commit(self) -> None:
        assert self.session is not None
        await self.session.commit_transaction()
        self.committed = True

    async def close(self) -> None:
        try:
            if self.session is not None:
                if self.session.in_transaction:
                    await self.session.abort_transaction()
                await self.session.end_session()
        finally:
            await super().close()


class JournalUnit(Unit):
    """A writer without transactions. It holds the service's writer lease, so no other
    writer runs meanwhile; before its first write to a document it journals the document's
    before-image. Its record in `units` goes open -> committed (its commit) or open ->
    aborted (its rollback, or whoever settles it after its process died): whichever
    conditional write lands first decides. Readers may see its writes before the commit,
    but never its events: the feed stops at the first pending one."""

    def __init__(self, store: MongoStore, *, readonly: bool) -> None:
        super().__init__(store, readonly=readonly)
        self._touched: set[tuple[str, Any]] = set()
        self._settled = False
        self._renew_at = 0.0

    @property
    def pending_events(self) -> bool:
        return not self.readonly

    async def begin(self) -> None:
        if self.readonly:
            return
        await super().begin()
        try:
            await _take_lease(self.store, self.id)
            self._renew_at = time.monotonic() + LEASE_MS / 2000
            await self.store.database[UNITS].insert_one({"_id": self.id, "state": OPEN})
        except BaseException:
            with suppress(PyMongoError):  # else the lease expires; nothing was written yet
                await _release_lease(self.store.database, self.id)
            await super().close()
            raise

    async def before_write(self, collection: str, doc_id: Any) -> None:
        await super().before_write(collection, doc_id)
        if (collection, doc_id) in self._touched:
            return
        self._touched.add((collection, doc_id))
        await self._keep_lease()
        database = self.store.database
        before = await database[collection].find_one({"_id": doc_id})
        entry = {"collection": collection, "doc_id": doc_id, "before": before}
        await database[JOURNAL].insert_one({"unit": self.id, "n": len(self._touched), **entry})

    async def _keep_lease(self) -> None:
        """Renew a lease half gone; if it was taken over, stop before writing anything more."""
        if time.monotonic() < self._renew_at:
            return
        renewed = await self.store.database[LOCKS].update_one(
            {"_id": WRITER, "holder": self.id}, {"$set": {"expires_ms": _now_ms() + LEASE_MS}}
        )
        if renewed.matched_count != 1:
            raise ServiceUnavailable("This change took too long and was undone; try again")
        self._renew_at = time.monotonic() + LEASE_MS / 2000

    async def commit(self) -> None:
        if not await _mark(self.store.database, self.id, OPEN, COMMITTED):
            # Our lease ran out and another writer settled (undid) this unit.
            raise ServiceUnavailable("This change took too long and was undone; try again")
        self.committed = True
        try:  # committed now: publishing the events is left to `close` if this fails
            await _settle(self.store.database, self.id, COMMITTED)
            self._settled = True
        except PyMongoError as exc:
            logger.warning("unit %s committed; its events wait to be published: %s", self.id, exc)

    async def close(self) -> None:
        if self.readonly:
            return
        database = self.store.database
        try:
            if not self.committed:
                if await _mark(database, self.id, OPEN, ABORTED):
                    await _settle(database, self.id, ABORTED)
            elif not self._settled:
                await _settle(database, self.id, COMMITTED)
            self._settled = True
        finally:
            try:
                # Unsettled (the server went away): keep the lease, so that once it expires
                # the next writer settles this unit before doing anything else.
                if self._settled:
                    await _release_lease(database, self.id)
            finally:
                await super().close()


# --- the standalone writer lease, and settling units -------------------------------------


async def _take_lease(store: MongoStore, holder: str) -> None:
    """Take the writer lease when it is free or expired (its holder died or stalled; then
    settle what it left). Polls with backoff, at most TURN_WAIT_SECONDS."""
    locks = store.database[LOCKS]
    deadline = time.monotonic() + TURN_WAIT_SECONDS
    for delay in _backoff():
        lease = await locks.find_one({"_id": WRITER})
        now = _now_ms()
        if lease is None:  # the service's first writer
            free = {"version": 0, "holder": "", "expires_ms": 0}
            await locks.update_one({"_id": WRITER}, {"$setOnInsert": free}, upsert=True)
            continue
        if not lease["holder"] or lease["expires_ms"] < now:
            taken = await locks.update_one(
                {"_id": WRITER, "version": lease["version"]},
                {"$set": {"holder": holder, "expires_ms": now + LEASE_MS}, "$inc": {"version": 1}},
            )
            if taken.matched_count == 1:
                if lease["holder"]:
                    await _settle_abandoned(store, holder)
                return
        if time.monotonic() > deadline:
            raise ServiceUnavailable(BUSY)
        await asyncio.sleep(delay)


async def _release_lease(database: Database, holder: str) -> None:
    await database[LOCKS].update_one(
        {"_id": WRITER, "holder": holder},
        {"$set": {"holder": "", "expires_ms": 0}, "$inc": {"version": 1}},
    )


async def _mark(database: Database, unit_id: str, state: str, new_state: str) -> bool:
    moved = await database[UNITS].update_one(
        {"_id": unit_id, "state": state}, {"$set": {"state": new_state}}
    )
    return moved.matched_count == 1


async def _settle_abandoned(store: MongoStore, holder: str) -> None:
    """With the lease held, every other unit record was left by a writer that died."""
    database = store.database
    for record in await database[UNITS].find({}).to_list():
        unit_id, state = record["_id"], record["state"]
        if unit_id == holder:
            continue
        logger.warning("settling unit %s (%s) left by a writer that died", unit_id, state)
        if state == OPEN:
            state = ABORTED if await _mark(database, unit_id, OPEN, ABORTED) else COMMITTED
        await _settle(database, unit_id, state)


async def _settle(database: Database, unit_id: str, state: str) -> None:
    """Publish a committed unit's events, or restore an aborted unit's before-images (its
    pending events were inserted, so they go too); then drop its journal and record.
    Idempotent, so a settler that dies is simply followed by another."""
    if state == COMMITTED:
        await database[OUTBOX].update_many(
            {"unit": unit_id}, {"$set": {"state": VISIBLE}, "$unset": {"unit": ""}}
        )
    else:
        journal = database[JOURNAL].find({"unit": unit_id}, sort=[("n", -1)])
        for entry in await journal.to_list():
            target, doc_id, before = database[entry["collection"]], entry["doc_id"], entry["before"]
            if before is None:
                await target.delete_one({"_id": doc_id})
            else:
                await target.replace_one({"_id": doc_id}, before, upsert=True)
    await database[JOURNAL].delete_many({"unit": unit_id})
    await database[UNITS].delete_one({"_id": unit_id})


# --- what repositories use ---------------------------------------------------------------


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


class MongoUnitOfWork:
    """Base for each service's MongoDB unit of work; subclasses attach repositories in `_bind`.
    Same contract as SqlUnitOfWork; a server that is away or busy becomes a 503."""

    unit: Unit

    def __init__(self, store: MongoStore, *, readonly: bool = False) -> None:
        self._store = store
        self._readonly = readonly

    def _bind(self, unit: Unit) -> None:
        """Create the repositories over `unit`."""

    async def __aenter__(self) -> Self:
        self.unit = self._store.unit(readonly=self._readonly)
        with unavailable_as_503():
            await self.unit.begin()
        self._bind(self.unit)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            with unavailable_as_503():
                await self.unit.close()
        except ServiceUnavailable:
            if exc is None:
                raise
            logger.warning("rollback failed; the server or the next writer will finish it")
        if exc is not None and is_unavailable(exc):
            raise ServiceUnavailable("The database is unavailable; try again shortly") from exc

    async def commit(self) -> None:
        with unavailable_as_503():
            await self.unit.commit()
        if self.unit.wrote_events:
            notify_outbox_commit()


# --- the outbox and feed cursors ---------------------------------------------------------


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
