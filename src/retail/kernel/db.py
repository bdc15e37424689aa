"""SQL storage: the session repositories run on, its two back ends, Alembic at start-up, and
the unit-of-work base.

Repositories see an `SqlSession`: Core statements in, SQLAlchemy `Result`s out, savepoints,
the dialect. There is no ORM session: nothing here tracks objects, so its unit-of-work
machinery was pure cost. On SQLite the session is a Core `Connection` used on the event loop
(`retail.kernel.sqlite`); on PostgreSQL an `AsyncConnection` on asyncpg. A unit of work
rolls back unless the use case commits (cosmicpython); a storage fault (disk full, I/O
error, a lock not granted in time, the server gone) leaves it as a 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, cast

from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.engine.result import ScalarResult
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql import Executable

from retail.kernel.cache import SqliteDataVersion
from retail.kernel.errors import ServiceUnavailable
from retail.kernel.postgres import PostgresDatabase
from retail.kernel.prepared import Params, Prepared, Rows
from retail.kernel.settings import Settings
from retail.kernel.sqlite import SqliteDatabase

T = TypeVar("T")

logger = logging.getLogger("retail.db")


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


class SqlSession(Protocol):
    """What a SQL repository works with: Core statements (or `Prepared` ones) in one
    transaction, savepoints, the dialect, and work to do once the transaction's commit has
    landed (never on rollback)."""

    @property
    def dialect(self) -> Dialect: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...

    async def execute(
        self, statement: Executable | Prepared, parameters: Params | Sequence[Params] | None = None
    ) -> Rows: ...

    async def scalar(
        self, statement: Executable | Prepared, parameters: Params | None = None
    ) -> Any: ...

    async def scalars(
        self, statement: Executable | Prepared, parameters: Params | None = None
    ) -> ScalarResult[Any]: ...

    def begin_nested(self) -> AbstractAsyncContextManager[None]: ...


class _OpenSession(SqlSession, Protocol):
    async def commit(self) -> None: ...

    async def close(self) -> None: ...


class SqlDatabase(Protocol):
    """A service's SQL database as one process uses it (SQLite file or PostgreSQL schema)."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def url(self) -> Any: ...

    async def begin(self, *, readonly: bool) -> _OpenSession: ...

    async def run_sync(self, work: Callable[[Connection], T]) -> T: ...

    async def migrate(self, script_location: Path) -> None: ...

    async def ping(self) -> None: ...

    async def dispose(self) -> None: ...


def engine_for(settings: Settings) -> SqlDatabase:
    """The service's database: its own SQLite file, or its own schema on PostgreSQL."""
    return create_engine(settings.resolved_database_url(), schema=settings.database_schema())


def create_engine(url: str, *, schema: str | None = None) -> SqlDatabase:
    if backend_of(url) == "postgresql":
        return PostgresDatabase(url, schema)
    if backend_of(url) != "sqlite":
        raise ValueError(f"{url.split(':', 1)[0]} is not an SQL back end")
    database = SqliteDatabase(url)
    if database.path and database.path != ":memory:":
        Path(database.path).parent.mkdir(parents=True, exist_ok=True)
    return database


async def migrate(database: SqlDatabase, script_location: Path) -> None:
    """Apply the service's Alembic migrations up to head, one process at a time."""
    await database.migrate(script_location)


@contextmanager
def data_version(database: SqlDatabase) -> Iterator[SqliteDataVersion | None]:
    """What tells the read cache that the database changed: SQLite files only."""
    path = database.url.database
    if database.dialect.name != "sqlite" or not path or path == ":memory:":
        yield None
        return
    source = SqliteDataVersion(path)
    try:
        yield source
    finally:
        source.close()


async def ping(database: SqlDatabase) -> None:
    await database.ping()


def rows_affected(result: Rows) -> int:
    """Rows an UPDATE or DELETE touched: how conditional writes learn whether they won."""
    return int(cast(CursorResult[Any], result).rowcount)


def is_unique_violation(exc: IntegrityError) -> bool:
    message = str(exc.orig).lower()
    return "unique" in message or "duplicate key" in message


class SqlUnitOfWork:
    """Base for each service's SQL unit of work; subclasses attach repositories in `_bind`.

    Writing units of work of one process run one at a time on SQLite (the write gate, in
    `retail.kernel.sqlite`); read-only ones never take the writer's lock. Writing units of
    work must not nest in one task.
    """

    session: SqlSession

    def __init__(self, database: SqlDatabase, *, readonly: bool = False):
        self._database = database
        self._readonly = readonly

    def _bind(self, session: SqlSession) -> None:
        """Create the repositories over `session`."""

    async def __aenter__(self) -> Self:
        try:
            self._open = await self._database.begin(readonly=self._readonly)
        except (DBAPIError, OSError) as exc:
            raise _unavailable(exc) from exc
        self.session = self._open
        self._bind(self._open)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._open.close()
        except DBAPIError:
            if exc is None:
                raise
            logger.warning("rolling back failed", exc_info=True)  # the first error matters
        if isinstance(exc, DBAPIError) and is_storage_fault(exc):
            raise _unavailable(exc) from exc

    async def commit(self) -> None:
        await self._open.commit()


# SQLite reports its storage faults as OperationalError text; PostgreSQL by SQLSTATE class:
# 08 connection, 53 resources (disk full, memory), 57 shutdown, 58 I/O, and lock waits.
_SQLITE_FAULTS = (
    "locked",
    "busy",
    "disk is full",
    "disk i/o error",
    "unable to open",
    "readonly database",
    "malformed",
    "out of memory",
)
_PG_FAULTS = ("08", "53", "57", "58", "40P01", "55P03", "40001")


def is_storage_fault(exc: DBAPIError) -> bool:
    """A failure of the storage, not of the request: the client may retry (503)."""
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "sqlstate", None)
    if isinstance(code, str):
        return code.startswith(_PG_FAULTS)
    message = str(exc.orig).lower()
    return any(fault in message for fault in _SQLITE_FAULTS) or "lock timeout" in message


def _unavailable(exc: BaseException) -> ServiceUnavailable:
    logger.warning("database unavailable: %s", getattr(exc, "orig", exc))
    return ServiceUnavailable("The database is unavailable; try again shortly")
