"""SQL storage: engines, SQLite tuning, Alembic at start-up, and the unit-of-work base.

A unit of work rolls back unless the use case commits (cosmicpython). On SQLite a writing
unit of work starts with BEGIN IMMEDIATE: a deferred transaction that reads and then writes
fails with SQLITE_BUSY instead of waiting when another writer got there first.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, TypeDecorator, event, text
from sqlalchemy.engine import Connection, CursorResult, Dialect, Result
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from retail.kernel.cache import SqliteDataVersion
from retail.kernel.errors import ServiceUnavailable
from retail.kernel.settings import Settings

logger = logging.getLogger("retail.db")

_READONLY = "retail_readonly"
_SCHEMA = "retail_schema"
# Any constant works: it names the lock that serialises migrations of one database.
_MIGRATION_LOCK = 7_301_105
SQLITE_BUSY_TIMEOUT_MS = 10_000


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every back end (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def backend_of(url: str) -> str:
    """'sqlite', 'postgresql' or 'mongodb': the back end a database URL selects."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in {"mongodb", "mongodb+srv"} or url.startswith("mongodb+srv"):
        return "mongodb"
    if scheme in {"sqlite", "postgresql"}:
        return scheme
    raise ValueError(f"unsupported database URL scheme {scheme!r}")


def engine_for(settings: Settings) -> AsyncEngine:
    """The service's engine: its own SQLite file, or its own schema on PostgreSQL."""
    return create_engine(settings.resolved_database_url(), schema=settings.database_schema())


def create_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    if backend_of(url) == "postgresql":
        server_settings = {"search_path": schema} if schema else {}
        return create_async_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            connect_args={"server_settings": server_settings},
            execution_options={_SCHEMA: schema},
        )
    if backend_of(url) != "sqlite":
        raise ValueError(f"{url.split(':', 1)[0]} is not an SQL back end")
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        readonly = connection.get_execution_options().get(_READONLY, False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def _sqlite_migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Serialise migrations of one SQLite file across processes and within one.

    Two processes opening a fresh file at once can both switch it to WAL and both run the
    CREATE TABLEs; and Alembic keeps its context in a global, so two migrations in one process
    must not interleave. A non-blocking flock polled with asyncio.sleep covers both without
    ever blocking the event loop.
    """
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    # A local lock file opens instantly; only the wait for the lock must not block the loop.
    with open(f"{database}.migrate-lock", "a") as handle:  # noqa: ASYNC230
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


async def migrate(engine: AsyncEngine, script_location: Path) -> None:
    """Apply the service's Alembic migrations up to head, one process at a time."""
    if engine.dialect.name == "sqlite":
        async with _sqlite_migration_lock(engine):
            await _upgrade(engine, script_location)
    else:
        await _upgrade(engine, script_location)


async def _upgrade(engine: AsyncEngine, script_location: Path) -> None:

    def upgrade(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(script_location))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes may start at once: one migrates, the others wait, then no-op.
            await connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            schema = engine.sync_engine.get_execution_options().get(_SCHEMA)
            if schema:
                await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await connection.run_sync(upgrade)


@contextmanager
def data_version(engine: AsyncEngine) -> Iterator[SqliteDataVersion | None]:
    """What tells the read cache that the database changed: SQLite files only."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield None
        return
    source = SqliteDataVersion(database)
    try:
        yield source
    finally:
        source.close()


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def rows_affected(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched: how conditional writes learn whether they won."""
    return int(cast(CursorResult[Any], result).rowcount)


def is_unique_violation(exc: IntegrityError) -> bool:
    message = str(exc.orig).lower()
    return "unique" in message or "duplicate key" in message


_write_gates: WeakKeyDictionary[async_sessionmaker[AsyncSession], asyncio.Lock] = (
    WeakKeyDictionary()
)


def _write_gate(sessions: async_sessionmaker[AsyncSession]) -> asyncio.Lock | None:
    bind = sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "sqlite":
        return None
    return _write_gates.setdefault(sessions, asyncio.Lock())


class SqlUnitOfWork:
    """Base for each service's SQL unit of work; subclasses attach repositories in `_bind`.

    On SQLite, writing units of work of one process queue on an asyncio lock (first come,
    first served) before their BEGIN IMMEDIATE. SQLite has one writer anyway; without the
    gate, waiting writers poll the file lock from SQLite's busy handler, which sleeps up to
    100 ms between looks and is not fair: under sustained load some starved past the busy
    timeout (measured: an order's p99 went from 3.6 s to 1.15 s with the gate). Reads are
    not gated, and writing units of work must not nest in one task.
    """

    session: AsyncSession

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, readonly: bool = False):
        self._sessions = sessions
        self._readonly = readonly
        self._gate = None if readonly else _write_gate(sessions)

    def _bind(self, session: AsyncSession) -> None:
        """Create the repositories over `session`."""

    async def __aenter__(self) -> Self:
        if self._gate is not None:
            await self._gate.acquire()
        try:
            self.session = self._sessions()
            if self._readonly:
                await self.session.connection(execution_options={_READONLY: True})
            self._bind(self.session)
        except BaseException:
            if self._gate is not None:
                self._gate.release()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.session.rollback()
        finally:
            await self.session.close()
            if self._gate is not None:
                self._gate.release()
        if isinstance(exc, OperationalError) and _is_lock_timeout(exc):
            logger.warning("database busy: %s", exc.orig)
            raise ServiceUnavailable("The database is busy; try again shortly") from exc

    async def commit(self) -> None:
        await self.session.commit()


def _is_lock_timeout(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return "locked" in message or "lock timeout" in message or "deadlock" in message
