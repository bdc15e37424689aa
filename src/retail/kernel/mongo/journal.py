"""The standalone server's engine (no multi-document transactions, e.g. nx-27017): a writer
lease on the service's lock, a journal of before-images, and settling what a writer left.

A writer holds the lease, journals each document's before-image before its first write to
it, and writes its events `pending`. Its record in `units` is the commit point; rollback
restores the before-images. What a dead process left is settled by the next writer, the
start-up sweep (`MongoStore.sweep`), or a feed read that finds the lease expired."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from pymongo.errors import PyMongoError

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.mongo.client import (
    ABORTED,
    BUSY,
    COMMITTED,
    JOURNAL,
    LOCKS,
    OPEN,
    OUTBOX,
    TURN_WAIT_SECONDS,
    UNITS,
    VISIBLE,
    WRITER,
    Database,
    logger,
)
from retail.kernel.mongo.units import Unit, _backoff

if TYPE_CHECKING:
    from retail.kernel.mongo.store import MongoStore

# A standalone writer holds the lock this long at most; then the next one takes it over.
LEASE_MS = 10_000


def _now_ms() -> int:
    return int(time.time() * 1000)


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
