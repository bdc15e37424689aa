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

The modules, by concern:

- client.py: the client, the database name, the kernel's collection names, the indexes.
- errors.py: driver errors as the kernel's (503, the caller's conflict); `as_utc`.
- store.py: `MongoStore`, which picks each unit's engine and sweeps at start-up.
- units.py: `Unit`, the base of both engines, and `TransactionUnit` (replica sets).
- journal.py: `JournalUnit` (standalone servers): the writer lease, the journal, settling.
- collection.py: `UnitCollection` and `next_value`, what repositories use.
- uow.py: `MongoUnitOfWork`, the base of each service's unit of work.
- outbox.py: `MongoEventLog` (the outbox) and `MongoCursorStore` (feed cursors).

This package re-exports what services and tests import; import from `retail.kernel.mongo`.
"""

from retail.kernel.mongo.client import (
    LOCKS,
    OUTBOX,
    VISIBLE,
    WRITER,
    Database,
    Document,
    IndexPlan,
    database_name,
    mongo_client,
    offers_transactions,
)
from retail.kernel.mongo.collection import UnitCollection, next_value
from retail.kernel.mongo.errors import as_utc, duplicate_key_as, is_unavailable
from retail.kernel.mongo.outbox import MongoCursorStore, MongoEventLog
from retail.kernel.mongo.store import MongoStore
from retail.kernel.mongo.units import Unit
from retail.kernel.mongo.uow import MongoUnitOfWork

__all__ = [
    "LOCKS",
    "OUTBOX",
    "VISIBLE",
    "WRITER",
    "Database",
    "Document",
    "IndexPlan",
    "MongoCursorStore",
    "MongoEventLog",
    "MongoStore",
    "MongoUnitOfWork",
    "Unit",
    "UnitCollection",
    "as_utc",
    "database_name",
    "duplicate_key_as",
    "is_unavailable",
    "mongo_client",
    "next_value",
    "offers_transactions",
]
