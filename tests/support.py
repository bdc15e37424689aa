"""Helpers every test layer shares: settings for a temporary data dir, tokens, an app client."""

from __future__ import annotations

import copy
import hashlib
import os
from _collections_abc import dict_items, dict_keys, dict_values
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar

import httpx
import pytest
from alembic import command
from alembic.config import Config
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import Connection

from retail.kernel.db import SqlDatabase
from retail.kernel.security import Role, TokenCodec
from retail.kernel.settings import Settings
from retail.kernel.storage import Adapters, UnitOfWorkFactory, open_storage

SECRET = "test-signing-secret-that-is-long-enough-for-hs256-0123456789"
# Set TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test to run the suites on
# PostgreSQL; conftest.py then creates a database for the run and names it here.
TEST_DATABASE_ENV = "TEST_DATABASE_URL"
RUN_DATABASE_ENV = "RETAIL_TEST_RUN_DATABASE_URL"
# Set TEST_MONGODB_URI=nx (nx-27017, started for the run by conftest.py) or to a server's URL
# (mongodb://127.0.0.1:27017) to run the services that have a MongoDB adapter on MongoDB;
# conftest.py names the run's server, with a database name for the run, here.
TEST_MONGODB_ENV = "TEST_MONGODB_URI"
RUN_MONGODB_ENV = "RETAIL_TEST_RUN_MONGODB_URI"
NX = "nx"
# The services whose tests follow the MongoDB switch: every one with a database (search keeps
# only an index it can rebuild from the feeds).
MONGODB_SERVICES = frozenset({"inventory", "orders", "categories", "products", "auth"})
S = TypeVar("S", bound=Settings)
U = TypeVar("U")
Backend = Literal["sql", "mongodb"]

tokens = TokenCodec(SECRET)


def mongodb_requested() -> bool:
    return bool(os.environ.get(TEST_MONGODB_ENV))


def on_nx() -> bool:
    """Whether this run's MongoDB is the nx-27017 stand-in."""
    return os.environ.get(TEST_MONGODB_ENV) == NX


def reachable_backends() -> list[Backend]:
    """What a contract suite runs on: SQL always (SQLite, or the run's PostgreSQL when
    TEST_DATABASE_URL is set), and MongoDB when TEST_MONGODB_URI is set."""
    return ["sql", "mongodb"] if mongodb_requested() else ["sql"]


def nx_defect(reason: str, *, applies: bool = True) -> pytest.MarkDecorator:
    """xfail, strictly, where the stand-in is wrong and real MongoDB is not: on nx only."""
    return pytest.mark.xfail(applies and on_nx(), reason=f"nx-27017: {reason}", strict=True)


def database_overrides(
    data_dir: Path, service: str = "", backend: Backend | None = None
) -> dict[str, Any]:
    """The run's server, if any, and a schema prefix per data dir (a schema on PostgreSQL, a
    database name on MongoDB), so that settings made twice for one data dir (a restart, a
    second process) share their data. `backend=None` follows the run's switches."""
    if backend is None:
        backend = "mongodb" if mongodb_requested() and service in MONGODB_SERVICES else "sql"
    url = os.environ.get(RUN_MONGODB_ENV if backend == "mongodb" else RUN_DATABASE_ENV)
    if not url:
        if backend == "mongodb":
            raise RuntimeError(f"no MongoDB for this run: set {TEST_MONGODB_ENV}")
        return {}
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return {"database_url": url, "database_schema_prefix": f"t{digest}_"}


def make_settings(
    cls: type[S], data_dir: Path, *, backend: Backend | None = None, **overrides: Any
) -> S:
    """Settings for a test: own data dir, a fixed secret, nothing read from the environment.
    The database is the run's (see `database_overrides`), or `backend`'s when given."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "jwt_secret_key": SECRET,
        "log_format": "text",
        "log_level": "WARNING",
        "retail_env": "test",
        **database_overrides(data_dir, cls.service_name, backend),
        **overrides,
    }
    return cls(_env_file=None, **values)


@dataclass(frozen=True)
class TwoProcesses(Generic[U]):
    """What a repository contract suite runs against: two separately opened stores (engines,
    or MongoDB clients) on one database, as two processes of the service would have."""

    backend: Backend
    one: UnitOfWorkFactory[U]
    two: UnitOfWorkFactory[U]


@asynccontextmanager
async def two_processes(
    settings_type: type[Settings], adapters: Adapters[U], data_dir: Path, backend: Backend
) -> AsyncIterator[TwoProcesses[U]]:
    settings = make_settings(settings_type, data_dir, backend=backend)
    # One after the other: two first opens of a brand-new SQLite file racing to switch it
    # to WAL is a start-up hazard of its own.
    async with (
        open_storage(settings, adapters) as first,
        open_storage(settings, adapters) as second,
    ):
        yield TwoProcesses(backend, first.units, second.units)


class FakeState(Protocol):
    # Writes of another process (scripted by a race test), which survive our rollback.
    committed_elsewhere: list[Callable[[Any], None]]


St = TypeVar("St", bound=FakeState)


class RollbackUnitOfWork(Generic[St]):
    """A fake unit of work over an in-memory state: on leaving uncommitted, the fields named
    in `data` go back to what they were at entry, and then the writes committed elsewhere
    meanwhile are applied again, as the SQL one would see them."""

    data: ClassVar[tuple[str, ...]]

    def __init__(self, state: St) -> None:
        self.state = state
        self.commits = 0
        self._snapshot: St | None = None

    async def __aenter__(self) -> Self:
        self._snapshot = copy.deepcopy(self.state)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._snapshot is not None:  # not committed: the data goes back to what it was
            for name in self.data:
                setattr(self.state, name, getattr(self._snapshot, name))
            for write in self.state.committed_elsewhere:
                write(self.state)
        self.state.committed_elsewhere = []
        self._snapshot = None

    async def commit(self) -> None:
        self.commits += 1
        self._snapshot = None


def bearer(user_id: str = "user-1", role: Role = "customer") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue_access(user_id, role)}"}


def admin_headers() -> dict[str, str]:
    return bearer("admin-1", "admin")


def service_headers(caller: str = "tests") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue_service(caller)}"}


class FreshHeaders(dict[str, str]):
    """Headers minted again whenever they are read: `ADMIN = FreshHeaders(admin_headers)` at
    module level stays valid however long the suite runs before a test uses it. (Tokens
    minted at import, with a service token's 300 s, expired on a busy machine: issue 14.)"""

    def __init__(self, mint: Callable[[], dict[str, str]]) -> None:
        super().__init__()
        self._mint = mint

    def _fresh(self) -> None:
        super().clear()
        super().update(self._mint())

    def __getitem__(self, key: str) -> str:
        self._fresh()
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[str]:
        self._fresh()
        return super().__iter__()

    def __len__(self) -> int:
        self._fresh()
        return super().__len__()

    def keys(self) -> dict_keys[str, str]:
        self._fresh()
        return super().keys()

    def items(self) -> dict_items[str, str]:
        self._fresh()
        return super().items()

    def values(self) -> dict_values[str, str]:
        self._fresh()
        return super().values()

    def __contains__(self, key: object) -> bool:
        self._fresh()
        return super().__contains__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._fresh()
        return super().get(key, default)

    def copy(self) -> dict[str, str]:
        return self._mint()


# asgi-lifespan gives a start or a stop 5 s by default; on a busy machine a stop on nx-27017
# took longer and failed a test's teardown. Never a test of speed: a generous bound.
LIFESPAN_SECONDS = 120.0


def lifespan(app: FastAPI) -> LifespanManager:
    """The app's lifespan, run as a server would, with no deadline a busy machine could miss."""
    return LifespanManager(app, startup_timeout=LIFESPAN_SECONDS, shutdown_timeout=LIFESPAN_SECONDS)


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, behind an httpx client speaking ASGI."""
    async with lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def assert_error(response: httpx.Response, status: int, error_code: str | None = None) -> None:
    """The wire error format, everywhere: status_code, error_code, message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["detail"] == body["message"]
    if error_code is not None:
        assert body["error_code"] == error_code, body
    assert "Traceback" not in response.text


async def migrate_to(engine: SqlDatabase, scripts: Path, revision: str) -> None:
    """Alembic on a service's SQL database: up to "head", down to any other revision (a test
    of one migration writes rows as they were before it, then migrates)."""

    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(scripts))
        config.attributes["connection"] = connection
        if revision == "head":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)

    await engine.run_sync(run)


async def rows_of(engine: SqlDatabase, *queries: str) -> list[list[tuple[Any, ...]]]:
    """Each query's rows as tuples, read in one connection."""

    def read(connection: Connection) -> list[list[tuple[Any, ...]]]:
        return [[tuple(row) for row in connection.execute(text(query))] for query in queries]

    return await engine.run_sync(read)
