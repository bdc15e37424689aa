"""SQLite on the event loop: one writer connection per process, a few readers, no threads.

A statement on a local SQLite file takes microseconds; a hand-off to a driver thread (what
aiosqlite does for every statement) costs more than the statement, and SQLAlchemy's ORM
session on top cost more again (docs/performance.md). So SQLite is used synchronously, on
the loop, through Core `Connection`s (sqlite3, `sqlite+pysqlite`) that this object keeps:

- Nothing on the loop may wait for a lock. Readers never do in WAL mode. The writer's
  connection has busy_timeout 0: its BEGIN IMMEDIATE fails at once while another process
  writes, and is retried after an `asyncio.sleep` (the loop runs meanwhile) until
  `SQLITE_BUSY_TIMEOUT_MS`, then the caller gets a 503. Once BEGIN IMMEDIATE has succeeded
  no later statement of the transaction waits in WAL mode.
- One writer connection per process: writers of a process queue FIFO on an asyncio lock
  (the write gate), which is also what makes the single connection theirs alone. Pooled
  writers would only contend for the file lock, and SQLite's busy handler is not fair.
- The writer does not checkpoint on commit (wal_autocheckpoint=0): a checkpoint writes
  pages back and fsyncs, which could stall the loop. Every `CHECKPOINT_EVERY` commits one
  runs in a worker thread on a connection of its own (PASSIVE: it never waits for readers).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import random
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.result import ScalarResult
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable

from retail.kernel.cache import OwnChanges
from retail.kernel.health import StorageFault, StorageHealth
from retail.kernel.metrics import SQLITE_BUSY_RETRIES
from retail.kernel.migrations import upgrade_to_head
from retail.kernel.prepared import Params, Prepared, Rows, run_after_commit

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Readers wait for no lock in WAL mode; this only covers the rare recovery of a crashed
# writer's WAL index, and it is what a read may stall the loop for at worst.
READER_BUSY_TIMEOUT_MS = 100
IDLE_READERS = 8
CHECKPOINT_EVERY = 500
# Once a write failed for lack of room, the database is reported ready again only when its
# file system has this much free (kernel/health.py).
PROBE_FREE_BYTES = 256 * 1024


def pysqlite_url(url: str) -> str:
    """`sqlite+aiosqlite:///x.db` (what settings and users name) as the sqlite3 driver's URL."""
    parsed = make_url(url)
    return parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)


def _raw(connection: Connection) -> sqlite3.Connection:
    return cast(sqlite3.Connection, connection.connection.dbapi_connection)


class SqliteSession:
    """One unit of work's statements, run on its connection without leaving the loop."""

    __slots__ = (
        "_after_commit",
        "_database",
        "_failed",
        "_only",
        "_raw",
        "_readonly",
        "connection",
        "dialect",
    )

    def __init__(self, database: SqliteDatabase, connection: Connection, *, readonly: bool):
        self._database = database
        self._readonly = readonly
        self._raw = _raw(connection)
        self._after_commit: list[Callable[[], None]] = []
        self._failed = False  # a statement or the commit raised: do not reuse the connection
        self._only: set[str] | None = None  # the keys of `changes_only`; None: everything
        self.connection = connection
        self.dialect = connection.dialect

    def after_commit(self, callback: Callable[[], None]) -> None:
        if callback not in self._after_commit:
            self._after_commit.append(callback)

    def changes_only(self, keys: Iterable[str]) -> None:
        """The unit of work's promise that what it writes shows only in the read cache's
        answers tagged with these keys (and untagged ones); each call adds keys."""
        self._only = set(keys) if self._only is None else self._only.union(keys)

    async def execute(
        self, statement: Executable | Prepared, parameters: Params | Sequence[Params] | None = None
    ) -> Rows:
        try:
            if isinstance(statement, Prepared):
                plan = statement.plan_for(self.dialect, parameters)
                if plan is not None:
                    return plan.run(self._raw, parameters)
                statement = statement.statement
            return self.connection.execute(statement, parameters)
        except IntegrityError:
            # A refused row (a duplicate key: an idempotent repeat's usual answer) aborts
            # only its statement; the connection and its transaction are sound.
            raise
        except DBAPIError:
            self._failed = True
            raise

    async def scalar(
        self, statement: Executable | Prepared, parameters: Params | None = None
    ) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def scalars(
        self, statement: Executable | Prepared, parameters: Params | None = None
    ) -> ScalarResult[Any]:
        return (await self.execute(statement, parameters)).scalars()

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        with self.connection.begin_nested():
            yield

    async def commit(self) -> None:
        try:
            if self.connection.in_transaction():
                self.connection.commit()
            else:
                self._raw.execute("COMMIT")
        except (DBAPIError, sqlite3.Error):
            self._failed = True
            raise
        if not self._readonly:
            self._database.committed(self._only)
        run_after_commit(self._after_commit)

    async def close(self) -> None:
        """Roll back whatever was not committed and give the connection back; after a
        failure (other than a refused row), close it instead: the next unit of work gets a
        fresh one.

        A failed COMMIT (disk full) leaves SQLAlchemy's transaction inactive but still
        attached to the connection, which then refused every `begin()` of later units of
        work: one full disk poisoned the writer until a restart (issue 14)."""
        self._after_commit.clear()
        try:
            transaction = self.connection.get_transaction()
            if transaction is not None:  # active, or left inactive by a failed commit
                transaction.rollback()
            if self._raw.in_transaction:
                self._raw.execute("ROLLBACK")
        except BaseException:
            self._failed = True
            raise
        finally:
            self._database.release(self.connection, readonly=self._readonly, broken=self._failed)


class SqliteDatabase:
    """A service's SQLite file, as this process uses it."""

    def __init__(self, url: str) -> None:
        self.url = make_url(pysqlite_url(url))
        self.path = self.url.database or ""
        # NullPool: the connections are kept here, by role, not by a pool. JSON columns are
        # read with orjson: a third of the standard library's time on an order's address.
        self._engine = create_engine(self.url, poolclass=NullPool, json_deserializer=orjson.loads)
        self.health = StorageHealth()
        event.listen(self._engine, "connect", _tune)
        self.dialect = self._engine.dialect
        self._gate = asyncio.Lock()
        self._writer: Connection | None = None
        self._writer_generation = 0  # a new writer connection starts its data_version afresh
        self._readers: list[Connection] = []
        self.changes = OwnChanges()  # this process's commits, for the read cache
        self._commits = 0
        self._checkpoint: asyncio.Task[None] | None = None

    async def begin(self, *, readonly: bool) -> SqliteSession:
        if readonly:
            reader = self._readers.pop() if self._readers else self._connect(READER_BUSY_TIMEOUT_MS)
            try:
                _raw(reader).execute("BEGIN")  # deferred: a snapshot, no lock a writer needs
            except sqlite3.Error as exc:
                reader.close()
                raise _as_sqlalchemy(exc, "BEGIN") from exc
            return SqliteSession(self, reader, readonly=True)
        await self._gate.acquire()
        try:
            writer = self._writer_connection()
            await _begin_immediate(_raw(writer))
            writer.begin()  # SQLAlchemy's own bookkeeping; sends nothing
        except BaseException:
            self._drop_writer()  # whatever state it was left in, the next writer starts afresh
            self._gate.release()
            raise
        return SqliteSession(self, writer, readonly=False)

    def _writer_connection(self) -> Connection:
        """The process's one writer connection, opened when there is none. Opening it needs
        no gate: while a unit of work holds the gate, the writer exists."""
        writer = self._writer
        if writer is None or writer.closed or writer.invalidated:
            writer = self._writer = self._connect(0)
            _raw(writer).execute("PRAGMA wal_autocheckpoint=0")
            self._writer_generation += 1
        return writer

    def foreign_version(self) -> tuple[int, int] | None:
        """A version that moves whenever another connection (another process, a migration)
        commits, and not on this process's own commits, which `changes` records: SQLite's
        `PRAGMA data_version` read on the writer's own connection, with that connection's
        generation. None when the file cannot be read now (the read cache is bypassed)."""
        try:
            writer = self._writer_connection()
            row = _raw(writer).execute("PRAGMA data_version").fetchone()
        except (sqlite3.Error, DBAPIError):
            return None  # a broken writer is replaced by the next unit of work that fails on it
        return (self._writer_generation, int(row[0]))

    def release(self, connection: Connection, *, readonly: bool, broken: bool = False) -> None:
        if not readonly:
            if broken:
                self._drop_writer()
            self._gate.release()
        elif len(self._readers) < IDLE_READERS and not connection.invalidated and not broken:
            self._readers.append(connection)
        else:
            connection.close()

    def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(DBAPIError, sqlite3.Error):
                writer.close()  # closing the sqlite3 connection rolls back what it held

    async def probe_write(self) -> None:
        """The readiness check's test of a storage fault (a full disk still serves reads):
        room left on the file system, and a write that must reach the file (it sets
        `user_version` to the value it has, which still appends a page to the WAL). Room is
        checked too because a failed transaction leaves the WAL file grown: a small write
        then fits where the next order does not."""
        if self.path and self.path != ":memory:":
            room = os.statvfs(Path(self.path).parent)
            if room.f_bavail * room.f_frsize < PROBE_FREE_BYTES:
                raise StorageFault("disk full")
        session = await self.begin(readonly=False)
        try:
            version = session._raw.execute("PRAGMA user_version").fetchone()[0]
            session._raw.execute(f"PRAGMA user_version={int(version)}")
            await session.commit()
        except sqlite3.Error as exc:
            session._failed = True
            raise _as_sqlalchemy(exc, "PRAGMA user_version") from exc
        finally:
            await session.close()

    def committed(self, keys: Iterable[str] | None = None) -> None:
        """A commit of this process's writer has landed; `keys`: what it may have changed,
        as the read cache tags answers (None: anything)."""
        self.changes.committed(keys)
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and self._checkpoint is None:
            self._checkpoint = asyncio.get_running_loop().create_task(self._checkpoint_wal())

    async def _checkpoint_wal(self) -> None:
        try:
            await asyncio.to_thread(_checkpoint, self.path)
        finally:
            self._checkpoint = None

    def _connect(self, busy_timeout_ms: int) -> Connection:
        connection = self._engine.connect()
        _raw(connection).execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        return connection

    async def run_sync(self, work: Callable[[Connection], T]) -> T:
        """`work` on a connection of its own in one transaction, in a worker thread (it may
        wait for the file lock): migrations, and the tables of tests."""
        return await asyncio.to_thread(self._run_sync, work)

    def _run_sync(self, work: Callable[[Connection], T]) -> T:
        with self._engine.connect() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            answer = work(connection)
            connection.commit()
        return answer

    async def migrate(self, script_location: Path) -> None:
        async with _migration_lock(self.path):
            await self.run_sync(partial(upgrade_to_head, script_location=script_location))

    async def ping(self) -> None:
        session = await self.begin(readonly=True)
        try:
            await session.execute(_PING)
        finally:
            await session.close()

    async def dispose(self) -> None:
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        for connection in [*self._readers, *([self._writer] if self._writer else [])]:
            connection.close()
        self._readers.clear()
        self._writer = None
        self._engine.dispose()


@asynccontextmanager
async def _migration_lock(path: str) -> AsyncIterator[None]:
    """Serialise migrations of one SQLite file across processes and within one.

    Two processes opening a fresh file at once can both switch it to WAL and both run the
    CREATE TABLEs; and Alembic keeps its context in a global, so two migrations in one process
    must not interleave. A non-blocking flock polled with asyncio.sleep covers both without
    ever blocking the event loop.
    """
    if not path or path == ":memory:":
        yield
        return
    # A local lock file opens instantly; only the wait for the lock must not block the loop.
    with open(f"{path}.migrate-lock", "a") as handle:  # noqa: ASYNC230
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tune(dbapi_connection: Any, _record: Any) -> None:
    # Transactions begin when this module says (BEGIN or BEGIN IMMEDIATE), not the driver.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")
    dbapi_connection.execute("PRAGMA foreign_keys=ON")
    # Statement journals (every write to a table with a trigger opens one) and temporary
    # B-trees in memory, not in a temp file: a trigger cost 27 pwrite calls per row.
    dbapi_connection.execute("PRAGMA temp_store=MEMORY")


async def _begin_immediate(raw: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE without blocking the loop: retried with backoff while another
    process writes, for up to SQLITE_BUSY_TIMEOUT_MS (then SQLite's "database is locked"
    goes up, and the unit of work answers 503)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.0005
    while True:
        try:
            raw.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or loop.time() >= deadline:
                raise _as_sqlalchemy(exc) from exc
        SQLITE_BUSY_RETRIES.inc()
        # Jitter, so processes that lost together do not retry together.
        await asyncio.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 0.02)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


def _as_sqlalchemy(exc: sqlite3.Error, statement: str = "BEGIN IMMEDIATE") -> DBAPIError:
    return cast(DBAPIError, DBAPIError.instance(statement, None, exc, sqlite3.Error))


def _checkpoint(path: str) -> None:
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        pass  # another process is checkpointing; the next round catches up
    finally:
        connection.close()


_PING = Prepared(text("SELECT count(*) FROM sqlite_master"))
