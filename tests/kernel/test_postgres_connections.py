"""Pooled PostgreSQL connections that the server closed: replaced at checkout, without the
round trip of a pre-ping on every unit of work (kernel/postgres.py). Run on the PostgreSQL
pass (TEST_DATABASE_URL); the server is shared by the run, so only this test's own
connections are terminated, by their backend pid."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from retail.kernel.db import is_storage_fault
from retail.kernel.postgres import PostgresDatabase
from tests.support import RUN_DATABASE_ENV, TEST_DATABASE_ENV

pytestmark = pytest.mark.skipif(
    not os.environ.get(TEST_DATABASE_ENV), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)
BACKEND_PID = text("SELECT pg_backend_pid()")


@pytest.fixture
async def database() -> AsyncIterator[PostgresDatabase]:
    opened = PostgresDatabase(os.environ[RUN_DATABASE_ENV], schema=f"conn_{uuid.uuid4().hex[:8]}")
    yield opened
    await opened.dispose()


async def backend_pid(database: PostgresDatabase) -> int:
    session = await database.begin(readonly=True)
    try:
        return int(await session.scalar(BACKEND_PID))
    finally:
        await session.close()


async def terminate(pid: int) -> None:
    """As a server restart or an administrator would, from a connection of its own."""
    url = os.environ[RUN_DATABASE_ENV].replace("postgresql+asyncpg://", "postgresql://")
    killer = await asyncpg.connect(url)
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await killer.close()


async def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout(
    database: PostgresDatabase,
) -> None:
    first = await backend_pid(database)
    assert await backend_pid(database) == first  # one pooled connection, used again
    await terminate(first)
    await asyncio.sleep(0.3)  # the server's goodbye reaches the event loop
    # No error for the unit that comes next: the closed connection is never handed out.
    replaced = await backend_pid(database)
    assert replaced != first
    assert await backend_pid(database) == replaced


async def test_a_unit_on_a_connection_closed_a_moment_ago_is_a_storage_fault_then_heals(
    database: PostgresDatabase,
) -> None:
    """Killed while the unit runs, not while pooled: that unit's statement fails, as a fault
    of the storage (a 503, never a 500), and the next unit has a fresh connection."""
    session = await database.begin(readonly=True)
    first = int(await session.scalar(BACKEND_PID))
    await terminate(first)
    with pytest.raises(DBAPIError) as failed:
        await session.scalar(BACKEND_PID)
    assert is_storage_fault(failed.value)
    await session.close()
    assert await backend_pid(database) != first
