"""When TEST_DATABASE_URL names a PostgreSQL server, every test that builds its settings
with `tests.support.make_settings` runs against it: one database per test run (created here,
dropped at the end) and one schema prefix per test data dir."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from tests.support import RUN_DATABASE_ENV, TEST_DATABASE_ENV


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
