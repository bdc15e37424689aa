"""One service's database, opened in the lifespan: it picks each unit of work's engine (a
transaction on a replica set, the lease and journal on a standalone server)."""

from __future__ import annotations

import asyncio
import uuid

from pymongo import AsyncMongoClient

from retail.kernel.mongo.client import (
    KERNEL_INDEXES,
    LOCKS,
    WRITER,
    Database,
    Document,
    IndexPlan,
    create_indexes,
    database_name,
    mongo_client,
    offers_transactions,
)
from retail.kernel.mongo.errors import unavailable_as_503
from retail.kernel.mongo.journal import (
    JournalUnit,
    _now_ms,
    _release_lease,
    _settle_abandoned,
    _take_lease,
)
from retail.kernel.mongo.units import TransactionUnit, Unit
from retail.kernel.settings import Settings


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
