"""PostgreSQL through Core `AsyncConnection`s on asyncpg: one pooled connection per unit of
work, in one transaction. Each service keeps its tables in its own schema (`search_path`).

A `Prepared` statement skips SQLAlchemy's per-call work here as it does on SQLite: its plan
(the SQL SQLAlchemy renders for asyncpg, with its bind casts, and the same bind and result
processors) runs on the unit's connection through SQLAlchemy's asyncpg adapter, so the
adapter's transaction, lock, prepared-statement cache and error translation are the ones
SQLAlchemy's own statements use in the same unit. Measured on the order path: SQLAlchemy's
`AsyncConnection.execute` and its greenlet bridge were a third of inventory's CPU
(docs/performance.md). The adapter's coroutine is not public API (SQLAlchemy 2.1): where it
is missing, statements go through SQLAlchemy as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.result import ScalarResult
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.sql import Executable

from retail.kernel.health import StorageHealth
from retail.kernel.migrations import upgrade_to_head
from retail.kernel.prepared import Params, Plan, Prepared, Rows, run_after_commit

T = TypeVar("T")

# Any constant works: it names the lock that serialises migrations of one database.
_MIGRATION_LOCK = 7_301_105


class PostgresSession:
    """One unit of work's statements on its pooled connection."""

    __slots__ = ("_adapted", "_after_commit", "connection", "dialect")

    def __init__(self, connection: AsyncConnection) -> None:
        self._after_commit: list[Callable[[], None]] = []
        self._adapted: Any = None  # SQLAlchemy's asyncpg adapter of this unit's connection
        self.connection = connection
        self.dialect = connection.dialect

    def after_commit(self, callback: Callable[[], None]) -> None:
        if callback not in self._after_commit:
            self._after_commit.append(callback)

    def changes_only(self, keys: Iterable[str]) -> None:
        """Nothing to narrow: on PostgreSQL no read cache is kept (kernel/cache.py)."""

    async def execute(
        self, statement: Executable | Prepared, parameters: Params | Sequence[Params] | None = None
    ) -> Rows:
        if isinstance(statement, Prepared):
            plan = statement.plan_for(self.dialect, parameters)
            if plan is not None and _RUNS_PLANS:
                return await self._run(plan, parameters)
            statement = statement.statement  # SQLAlchemy's compiled cache serves it here
        return await self.connection.execute(statement, parameters)

    async def _run(self, plan: Plan, parameters: Params | Sequence[Params] | None) -> Rows:
        adapted = self._adapted
        if adapted is None:
            raw = await self.connection.get_raw_connection()
            adapted = self._adapted = raw.dbapi_connection
        cursor = adapted.cursor()
        try:
            if isinstance(parameters, Sequence):
                await cursor._executemany(plan.sql, [plan.bind(p) for p in parameters])
            else:
                await cursor._prepare_and_execute(plan.sql, plan.bind(parameters))
        except adapted.dbapi.Error as error:
            raise await self._failed(plan, error) from error
        return plan.answer(cursor._rows, cursor.rowcount, cursor.description)

    async def _failed(self, plan: Plan, error: Any) -> DBAPIError:
        """The error as SQLAlchemy's `Connection` would raise it, with the same clean-up: a
        lost connection is invalidated, and so are the pool's older ones (they likely went
        with it), so the next unit reconnects."""
        lost = self.dialect.is_disconnect(error, self._adapted, None)
        if lost and not self.connection.invalidated:
            raw = await self.connection.get_raw_connection()
            self.connection.sync_engine.pool._invalidate(raw, error, _checkin=False)
            await self.connection.invalidate(error)
        self._adapted = None
        wrapped = DBAPIError.instance(
            plan.sql,
            None,
            error,
            self.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=self.dialect,
            connection_invalidated=lost,
        )
        assert isinstance(wrapped, DBAPIError)
        return wrapped

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
        async with self.connection.begin_nested():
            yield

    async def commit(self) -> None:
        await self.connection.commit()
        run_after_commit(self._after_commit)

    async def close(self) -> None:
        self._after_commit.clear()
        try:
            if self.connection.in_transaction():
                await self.connection.rollback()
        finally:
            await self.connection.close()


def _adapter_runs_plans() -> bool:
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_cursor

    names = ("_prepare_and_execute", "_executemany")
    return all(hasattr(AsyncAdapt_asyncpg_cursor, name) for name in names)


_RUNS_PLANS = _adapter_runs_plans()


def _refuse_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A pooled connection that the server closed (a restart, `pg_terminate_backend`, an
    idle timeout) is replaced when checked out: the pool retries with a fresh one.

    This replaces `pool_pre_ping`, a round trip to the server on every checkout (12.8% of
    inventory's CPU on the order path): asyncpg already knows a socket the server closed,
    so asking it costs nothing. A connection that died without a word (a network cut) is
    seen by its first statement instead: that unit answers 503 and SQLAlchemy discards
    the pool's older connections, so the next unit reconnects (docs/architecture.md)."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


class PostgresDatabase:
    def __init__(self, url: str, schema: str | None) -> None:
        self._schema = schema
        server_settings = {"search_path": schema} if schema else {}
        self._engine = create_async_engine(
            url,
            pool_size=10,
            max_overflow=20,
            connect_args={"server_settings": server_settings},
        )
        event.listen(self._engine.sync_engine, "checkout", _refuse_closed)
        self.url = self._engine.url
        self.dialect = self._engine.dialect
        self.health = StorageHealth()

    async def begin(self, *, readonly: bool) -> PostgresSession:
        connection = await self._engine.connect()
        try:
            await connection.begin()
        except BaseException:
            await connection.close()
            raise
        return PostgresSession(connection)

    async def run_sync(self, work: Callable[[Connection], T]) -> T:
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    async def migrate(self, script_location: Any) -> None:
        async with self._engine.begin() as connection:
            # Several processes may start at once: one migrates, the others wait, then no-op.
            await connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            if self._schema:
                await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"'))
            await connection.run_sync(upgrade_to_head, script_location)

    async def ping(self) -> None:
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def probe_write(self) -> None:
        """A transaction that takes a transaction id, so its commit writes to the WAL: the
        readiness check's test of a storage fault."""
        async with self._engine.begin() as connection:
            await connection.execute(text("SELECT txid_current()"))

    async def dispose(self) -> None:
        await self._engine.dispose()
