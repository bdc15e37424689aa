"""Opening the back end that a service's database URL names, the same way for every service.

SQL (SQLite, PostgreSQL): the database (`retail.kernel.db`), the service's Alembic migrations
applied. MongoDB: the store, the service's indexes created. Either way the service gets a
factory of its units of work, a readiness check, and, on SQLite, the read cache's version
source. Nothing past the composition root knows which back end it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar

from fastapi import Request

from retail.kernel.cache import CacheVersion, VersionSource
from retail.kernel.db import (
    SqlDatabase,
    backend_of,
    cache_version,
    data_version,
    engine_for,
    migrate,
    ping,
)
from retail.kernel.settings import Settings

if TYPE_CHECKING:  # PyMongo is imported only by a service whose URL names MongoDB
    from retail.kernel.mongo import IndexPlan, MongoStore

U = TypeVar("U", covariant=True)
ReadinessCheck = Callable[[], Awaitable[None]]


class Transaction(Protocol):
    """What every service's UnitOfWork port is besides its repositories: an async context
    that rolls back on leaving unless `commit` was called."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol[U]):
    """A new unit of work per use case; `readonly` ones never take the writer's lock."""

    def __call__(self, *, readonly: bool = False) -> U: ...


class SqlUnits(Protocol[U]):
    def __call__(self, database: SqlDatabase, *, readonly: bool = False) -> U: ...


class MongoUnits(Protocol[U]):
    def __call__(self, store: MongoStore, *, readonly: bool = False) -> U: ...


@dataclass(frozen=True)
class MongoAdapter(Generic[U]):
    units: MongoUnits[U]
    indexes: IndexPlan


@dataclass(frozen=True)
class Adapters(Generic[U]):
    """A service's two adapters: its SQL unit of work and migrations, and a loader of its
    MongoDB unit of work and indexes. The loader imports the MongoDB adapter (and PyMongo)
    when the URL names MongoDB, and only then: a service on SQL never loads them."""

    sql: SqlUnits[U]
    migrations: Path
    mongo: Callable[[], MongoAdapter[U]]


@dataclass(frozen=True)
class Storage(Generic[U]):
    units: UnitOfWorkFactory[U]
    ping: ReadinessCheck
    data_version: VersionSource | None = None  # any connection's commits (held feed reads)
    cache_version: CacheVersion | None = None  # what the read cache checks


def open_storage(
    settings: Settings, adapters: Adapters[U]
) -> AbstractAsyncContextManager[Storage[U]]:
    """The back end the database URL names (DATABASE_URL, <SERVICE>_DATABASE_URL, ...)."""
    if backend_of(settings.resolved_database_url()) == "mongodb":
        return _mongo_storage(settings, adapters)
    return _sql_storage(settings, adapters)


@asynccontextmanager
async def _sql_storage(settings: Settings, adapters: Adapters[U]) -> AsyncIterator[Storage[U]]:
    database = engine_for(settings)
    try:
        await migrate(database, adapters.migrations)
        with data_version(database) as version:
            units = partial(adapters.sql, database)
            yield Storage(units, partial(ping, database), version, cache_version(database))
    finally:
        await database.dispose()


@asynccontextmanager
async def _mongo_storage(settings: Settings, adapters: Adapters[U]) -> AsyncIterator[Storage[U]]:
    """Indexes are created (idempotently) and a dead writer's leftovers settled on opening."""
    from retail.kernel.mongo import MongoStore  # here, not at the top: see Adapters

    mongo = adapters.mongo()
    store = await MongoStore.open(settings, mongo.indexes)
    try:
        yield Storage(partial(mongo.units, store), store.ping)
    finally:
        await store.close()


# The per-request dependencies. Each service types them with its own port in an alias,
# e.g. `UoW = Annotated[UnitOfWork, Depends(unit_of_work)]`. They are async: FastAPI runs a
# plain `def` dependency in its thread pool, a thread hop per request for an attribute read.


async def unit_of_work(request: Request) -> Any:
    factory: UnitOfWorkFactory[Any] = request.app.state.unit_of_work
    return factory()


async def read_only_unit_of_work(request: Request) -> Any:
    factory: UnitOfWorkFactory[Any] = request.app.state.unit_of_work
    return factory(readonly=True)


async def service_deps(request: Request) -> Any:
    """The use cases' dependency bundle (`<Service>Deps`), built once in the lifespan: every
    service's `Deps = Annotated[<Service>Deps, Depends(service_deps)]`. Its units of work
    reach the database, so the OpenAPI document lists 503 for a route that takes it."""
    return request.app.state.deps
