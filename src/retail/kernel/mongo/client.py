"""The client, a database per service, the kernel's collection names and the indexes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

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
