"""A unit of work's engine: the `Unit` repositories read and write through, and
`TransactionUnit`, the engine on a replica set or sharded cluster. (The standalone engine,
`JournalUnit`, is in journal.py.)"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import PyMongoError
from pymongo.read_concern import ReadConcern

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.mongo.client import BUSY, LOCKS, TURN_WAIT_SECONDS, WRITER
from retail.kernel.mongo.collection import UnitCollection

if TYPE_CHECKING:
    from retail.kernel.mongo.store import MongoStore


def _backoff() -> Iterator[float]:
    delay = 0.002
    while True:
        yield delay * (0.5 + random.random())
        delay = min(delay * 2, 0.05)


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
