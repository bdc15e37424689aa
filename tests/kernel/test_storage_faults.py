"""Storage faults injected under a real service (categories), on the run's back end: a write
that fails for the storage's sake is a 503 in the error format, /ready reports the database
failing until a write can commit again, and the service heals by itself once the fault goes.

The real disk-full run, with SQLite files on a full tmpfs, is tests/e2e/test_storage_faults.py.
Here each back end's own error is raised where its driver would raise it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from retail.categories.config import CategoriesSettings
from retail.categories.main import create_app
from retail.kernel import db, storage
from retail.kernel.db import SqlDatabase, backend_of, fault_kind
from retail.kernel.health import StorageHealth
from tests.support import FreshHeaders, admin_headers, assert_error, make_settings, serve

ADMIN = FreshHeaders(admin_headers)


class PgError(Exception):
    """What asyncpg raises, as far as the fault mapping reads it: a SQLSTATE."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


DISK_FULL = {
    "sqlite": lambda: DBAPIError(
        "COMMIT", {}, sqlite3.OperationalError("database or disk is full")
    ),
    "postgresql": lambda: DBAPIError("INSERT", {}, PgError("53100", "could not extend file")),
}
READ_ONLY = {
    "sqlite": lambda: DBAPIError(
        "INSERT", {}, sqlite3.OperationalError("attempt to write a readonly database")
    ),
    "postgresql": lambda: DBAPIError(
        "INSERT", {}, PgError("25006", "cannot execute INSERT in a read-only transaction")
    ),
}


@dataclass
class FaultySession:
    """A unit of work's session whose statements and commit fail while the fault is on."""

    real: Any
    database: FaultyDatabase

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        self.database.fail_if_faulty()
        return await self.real.execute(statement, parameters)

    async def commit(self) -> None:
        self.database.fail_if_faulty()
        await self.real.commit()


@dataclass
class FaultyDatabase:
    """The real database behind a switch: `fault` makes every write fail with that error,
    as a full disk does; reads keep working."""

    real: SqlDatabase
    fault: Callable[[], Exception] | None = None
    injected: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    @property
    def health(self) -> StorageHealth:
        return self.real.health

    def fail_if_faulty(self) -> None:
        if self.fault is not None:
            error = self.fault()
            self.injected.append(str(error))
            raise error

    async def begin(self, *, readonly: bool) -> Any:
        session = await self.real.begin(readonly=readonly)
        return session if readonly else FaultySession(session, self)

    async def probe_write(self) -> None:
        self.fail_if_faulty()
        await self.real.probe_write()


@pytest.fixture
async def faulty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, FaultyDatabase, str]]:
    settings = make_settings(CategoriesSettings, tmp_path, read_cache_bytes=0)
    backend = backend_of(settings.resolved_database_url())
    if backend == "mongodb":
        pytest.skip("SQL faults (MongoDB: test_mongodb_faults_are_503s_and_heal)")
    databases: list[FaultyDatabase] = []
    real_engine_for = db.engine_for

    def engine_for(settings: Any) -> Any:
        databases.append(FaultyDatabase(real_engine_for(settings)))
        return databases[-1]

    monkeypatch.setattr(storage, "engine_for", engine_for)
    async with serve(create_app(settings)) as client:
        yield client, databases[0], backend


async def create(client: httpx.AsyncClient, name: str) -> httpx.Response:
    return await client.post("/api/categories", json={"name": name}, headers=ADMIN)


@pytest.mark.parametrize("faults", [DISK_FULL, READ_ONLY], ids=["disk-full", "read-only"])
async def test_a_failing_write_is_a_503_until_the_storage_heals(
    faulty: tuple[httpx.AsyncClient, FaultyDatabase, str], faults: dict[str, Any]
) -> None:
    client, database, backend = faulty
    assert (await create(client, "Before")).status_code == 201
    database.fault = faults[backend]

    assert_error(await create(client, "During"), 503, "SERVICE_UNAVAILABLE")
    assert database.injected  # the fault was met where the driver raises it
    listed = await client.get("/api/categories")
    assert [c["name"] for c in listed.json()["categories"]] == ["Before"]  # reads go on
    ready = await client.get("/ready")
    assert_error(ready, 503, "SERVICE_UNAVAILABLE")
    assert ready.json()["details"]["checks"]["database"].startswith("failed")
    assert (await client.get("/health")).status_code == 200  # alive: no restart wanted

    database.fault = None  # space is back, or the server writable again: nothing restarted
    assert (await client.get("/ready")).status_code == 200  # its write probe passes
    assert (await create(client, "After")).status_code == 201


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_faults_of_the_storage_are_told_from_faults_of_the_request(backend: str) -> None:
    assert fault_kind(DISK_FULL[backend]()) is not None
    assert fault_kind(READ_ONLY[backend]()) is not None
    not_a_fault: Sequence[Exception] = (
        sqlite3.IntegrityError("UNIQUE constraint failed: categories.name_key"),
        PgError("23505", "duplicate key value violates unique constraint"),
    )
    for orig in not_a_fault:
        assert fault_kind(DBAPIError("INSERT", {}, orig)) is None  # a bug or a 409, not a 503


async def test_mongodb_faults_are_503s_and_heal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server unreachable (an election, a restart): PyMongo's errors where it raises
    them, at a unit's start and at the readiness ping."""
    settings = make_settings(CategoriesSettings, tmp_path, read_cache_bytes=0)
    if backend_of(settings.resolved_database_url()) != "mongodb":
        pytest.skip("MongoDB runs only (TEST_MONGODB_URI)")
    from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

    from retail.kernel.mongo import MongoStore

    down: list[bool] = []
    real_unit, real_ping = MongoStore.unit, MongoStore.ping

    def unit(store: MongoStore, *, readonly: bool) -> Any:
        opened = real_unit(store, readonly=readonly)
        real_begin = opened.begin

        async def begin() -> None:
            if down:
                raise AutoReconnect("connection closed")
            await real_begin()

        opened.begin = begin  # type: ignore[method-assign]
        return opened

    async def ping(store: MongoStore) -> None:
        if down:
            raise ServerSelectionTimeoutError("no servers found")
        await real_ping(store)

    monkeypatch.setattr(MongoStore, "unit", unit)
    monkeypatch.setattr(MongoStore, "ping", ping)
    async with serve(create_app(settings)) as client:
        assert (await create(client, "Before")).status_code == 201
        down.append(True)
        assert_error(await create(client, "During"), 503, "SERVICE_UNAVAILABLE")
        assert_error(await client.get("/ready"), 503, "SERVICE_UNAVAILABLE")
        down.clear()
        assert (await client.get("/ready")).status_code == 200
        assert (await create(client, "After")).status_code == 201


def test_mongodb_errors_of_the_storage_are_told_from_errors_of_the_request() -> None:
    from pymongo.errors import OperationFailure

    from retail.kernel.mongo import is_unavailable

    assert is_unavailable(OperationFailure("OutOfDiskSpace", code=14031))
    assert is_unavailable(OperationFailure("not primary", code=10107))
    assert not is_unavailable(OperationFailure("BadValue", code=2))  # the request's: a bug
