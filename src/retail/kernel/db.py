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
from collections.abc import Callable, Iterable, Iterator, Sequence
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

from retail.kernel.cache import CacheVersion, SqliteDataVersion
from retail.kernel.errors import ServiceUnavailable
from retail.kernel.health import StorageFault, StorageHealth
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
        return None if value is None else _as_utc(value)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        if dialect.name == "sqlite":
            return _utc_from_text
        return super().result_processor(dialect, coltype)


def _utc_from_text(value: Any) -> datetime | None:
    """A UTC datetime from SQLite's column, which holds it as naive ISO text (SQLAlchemy's
    format, or SQLite's own CURRENT_TIMESTAMP): read as UTC in one C call. SQLAlchemy's
    parse and then a `replace` cost seven times as much, and a page of ten orders reads
    thirty of them."""
    if not isinstance(value, str):
        return None if value is None else _as_utc(value)
    try:
        parsed = datetime.fromisoformat(value + "+00:00")
    except ValueError:  # text that names its own offset
        parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is UTC else _as_utc(parsed)  # a date alone stays naive


def _as_utc(value: datetime) -> datetime:
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

    def changes_only(self, keys: Iterable[str]) -> None:
        """What this unit writes shows only in the read cache's answers tagged with these
        keys, and in untagged ones (kernel/cache.py); each call adds keys."""

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

    async def probe_write(self) -> None: ...

    @property
    def health(self) -> StorageHealth: ...

    async def dispose(self) -> None: ...


def engine_for(settings: Settings) -> SqlDatabase:
    """The service's database: its own SQLite file, or its own schema on PostgreSQL."""
    return create_engine(settings.resolved_database_url(), schema=settings.database_schema())


def create_engine(url: str, *, schema: str | None = None) -> SqlDatabase:
    if backend_of(url) == "postgresql":
        # Here, not at the top: it loads SQLAlchemy's asyncio extension and ORM, which the
        # SQLite and MongoDB back ends never use (~0.1 s of import, and their memory).
        from retail.kernel.postgres import PostgresDatabase

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


def cache_version(database: SqlDatabase) -> CacheVersion | None:
    """What the read cache checks (kernel/cache.py): SQLite files only."""
    if not isinstance(database, SqliteDatabase) or database.path in {"", ":memory:"}:
        return None
    return _WriterVersion(database)


class _WriterVersion:
    """`CacheVersion` of a SQLite file: the writer's `data_version` and own commits."""

    __slots__ = ("_database", "changes")

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        self.changes = database.changes

    def __call__(self) -> tuple[int, int] | None:
        return self._database.foreign_version()


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
    """The readiness check: a read, and while a unit of work has reported a lasting storage
    fault, a write as well (kernel/health.py); the write succeeding clears the fault."""
    await database.ping()
    if database.health.fault is None:
        return
    try:
        await database.probe_write()
    except StorageFault as exc:
        database.health.failed(str(exc))
        raise
    except (DBAPIError, OSError) as exc:
        kind = fault_kind(exc) if isinstance(exc, DBAPIError) else "I/O error"
        database.health.failed(kind or "write failed")
        raise StorageFault(database.health.fault) from exc
    logger.warning("database recovered (was: %s)", database.health.fault)
    database.health.recovered()


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
            raise self._unavailable(exc) from exc
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
            raise self._unavailable(exc) from exc

    def changes_only(self, keys: Iterable[str]) -> None:
        """A promise for the whole unit: what it writes shows only in the read cache's
        answers about these keys (kernel/cache.py). A use case that writes anything else
        in the same unit must not make it."""
        self._open.changes_only(keys)

    async def commit(self) -> None:
        await self._open.commit()
        if not self._readonly and self._database.health.fault is not None:
            logger.warning("database recovered (was: %s)", self._database.health.fault)
            self._database.health.recovered()

    def _unavailable(self, exc: DBAPIError | OSError) -> ServiceUnavailable:
        """The 503; a fault that outlasts the request is also reported to /ready."""
        kind = fault_kind(exc) if isinstance(exc, DBAPIError) else "I/O error"
        if kind is not None and kind not in _TRANSIENT:
            self._database.health.failed(kind)
        return _unavailable(exc)


# SQLite reports its storage faults as OperationalError text; PostgreSQL by SQLSTATE class:
# 08 connection, 53 resources (disk full, memory), 57 shutdown, 58 I/O, and lock waits.
_SQLITE_FAULTS = {
    "locked": "locked",
    "busy": "locked",
    "lock timeout": "locked",
    "disk is full": "disk full",
    "disk i/o error": "I/O error",
    "unable to open": "cannot open the database file",
    "readonly database": "read-only",
    "malformed": "corrupt",
    "out of memory": "out of memory",
}
_PG_FAULTS = {
    "08": "connection lost",
    "25006": "read-only",  # a standby: the server failed over, or is being promoted
    "53": "insufficient resources (disk full, memory)",
    "57": "server shutting down",
    "58": "I/O error",
    "40P01": "locked",  # deadlock
    "55P03": "locked",  # lock not available
    "40001": "locked",  # serialization failure
}
# A lock not granted in time is contention, gone with the next request: a 503, but the
# database is not failing, so /ready is not told.
_TRANSIENT = frozenset({"locked"})


def fault_kind(exc: DBAPIError) -> str | None:
    """What failed, when it is the storage and not the request (then a 503); else None."""
    if exc.connection_invalidated:
        return "connection lost"
    code = getattr(exc.orig, "sqlstate", None)
    if isinstance(code, str):
        return next((kind for prefix, kind in _PG_FAULTS.items() if code.startswith(prefix)), None)
    message = str(exc.orig).lower()
    return next((kind for text, kind in _SQLITE_FAULTS.items() if text in message), None)


def is_storage_fault(exc: DBAPIError) -> bool:
    """A failure of the storage, not of the request: the client may retry (503)."""
    return fault_kind(exc) is not None


def _unavailable(exc: BaseException) -> ServiceUnavailable:
    logger.warning("database unavailable: %s", getattr(exc, "orig", exc))
    return ServiceUnavailable("The database is unavailable; try again shortly")
