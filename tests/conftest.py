"""When TEST_DATABASE_URL names a PostgreSQL server, every test that builds its settings
with `tests.support.make_settings` runs against it: one database per test run (created here,
dropped at the end) and one schema prefix per test data dir.

TEST_MONGODB_URI does the same on MongoDB for the services in `MONGODB_SERVICES`: `nx` starts
nx-27017 for the run (in a temporary directory, stopped at the end); a mongodb:// URL names a
server, where the run's databases are dropped at the end."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pymongo import MongoClient

from tests.mongo_server import nx_server
from tests.support import (
    NX,
    RUN_DATABASE_ENV,
    RUN_MONGODB_ENV,
    TEST_DATABASE_ENV,
    TEST_MONGODB_ENV,
)


def _server_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_server_dsn(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session", autouse=True)
def run_database() -> Iterator[None]:
    url = os.environ.get(TEST_DATABASE_ENV)
    if not url:
        yield
        return
    name = f"retail_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    base = url.rsplit("/", 1)[0]
    os.environ[RUN_DATABASE_ENV] = f"{base}/{name}"
    try:
        yield
    finally:
        os.environ.pop(RUN_DATABASE_ENV, None)
        asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _drop_run_databases(url: str, run: str) -> None:
    client: MongoClient[dict[str, object]] = MongoClient(url)
    try:
        for name in client.list_database_names():
            if name.startswith(f"{run}_"):
                client.drop_database(name)
    finally:
        client.close()


@pytest.fixture(scope="session", autouse=True)
def run_mongodb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    requested = os.environ.get(TEST_MONGODB_ENV)
    if not requested:
        yield
        return
    # Every database of the run starts with this name: `<run>_<prefix><service>`.
    run = f"retail_test_{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        server = requested
        if requested == NX:
            server = stack.enter_context(nx_server(tmp_path_factory.mktemp("nx-27017")))
        os.environ[RUN_MONGODB_ENV] = _with_database(server, run)
        try:
            yield
        finally:
            os.environ.pop(RUN_MONGODB_ENV, None)
            if requested != NX:  # nx-27017's data goes with its temporary directory
                _drop_run_databases(server, run)
