"""Pooled PostgreSQL connections that the server closed: replaced at checkout, without the
round trip of a pre-ping on every unit of work (kernel/postgres.py); and `Prepared`
statements run as plans on SQLAlchemy's asyncpg adapter, answering as SQLAlchemy would; an
event's append holds the outbox lock until commit.
Run on the PostgreSQL pass (TEST_DATABASE_URL); the server is shared by the run, so only
this test's own connections are terminated, by their backend pid."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from retail.kernel.db import UtcDateTime, is_storage_fault, rows_affected
from retail.kernel.events import SqlEventLog, outbox_table
from retail.kernel.postgres import PostgresDatabase
from retail.kernel.prepared import Prepared
from tests.support import RUN_DATABASE_ENV, TEST_DATABASE_ENV

pytestmark = pytest.mark.skipif(
    not os.environ.get(TEST_DATABASE_ENV), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)
BACKEND_PID = text("SELECT pg_backend_pid()")
PREPARED_PID = Prepared(select(func.pg_backend_pid()))

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("data", JSON, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("price", Numeric(10, 2), nullable=True),
)
NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
_BY_NAME = Prepared(select(things).where(things.c.name == bindparam("p_name")))
_ADD = Prepared(insert(things))
_RENAME = Prepared(
    update(things).where(things.c.name == bindparam("p_name")).values(name=bindparam("p_to"))
)


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


async def create_tables(database: PostgresDatabase, tables: MetaData = metadata) -> None:
    schema = database._schema

    def create(connection: Any) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        tables.create_all(connection)

    await database.run_sync(create)


def statements_sqlalchemy_ran(database: PostgresDatabase) -> list[str]:
    """The SQL SQLAlchemy's own execution path runs from now on (a plan skips it)."""
    ran: list[str] = []
    engine = database._engine.sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def heard(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        ran.append(statement)

    return ran


async def test_prepared_statements_run_as_plans_and_answer_as_sqlalchemy_does(
    database: PostgresDatabase,
) -> None:
    await create_tables(database)
    ran = statements_sqlalchemy_ran(database)
    session = await database.begin(readonly=False)
    try:
        rows = [
            {"name": name, "data": {"n": name, "list": [1, 2]}, "at": NOW, "price": price}
            for name, price in (("a", Decimal("12.50")), ("b", None), ("c", Decimal("0.99")))
        ]
        await session.execute(_ADD, rows)  # executemany
        prepared = (await session.execute(_BY_NAME, {"p_name": "c"})).mappings().one()
        renamed = await session.execute(_RENAME, {"p_name": "b", "p_to": "bee"})
        assert rows_affected(renamed) == 1
        assert (await session.execute(_BY_NAME, {"p_name": "b"})).first() is None
        assert ran == []  # none of the above went through SQLAlchemy's execution
        plain = (await session.execute(select(things).where(things.c.name == "c"))).mappings()
        assert dict(prepared) == dict(plain.one())
        assert prepared["at"] == NOW
        assert prepared["at"].tzinfo is not None
        assert prepared["data"] == {"n": "c", "list": [1, 2]}
        assert prepared["price"] == Decimal("0.99")
        assert isinstance(prepared["price"], Decimal)
        await session.commit()
    finally:
        await session.close()
    # Committed through SQLAlchemy, so the adapter's transaction was the unit's own.
    session = await database.begin(readonly=True)
    try:
        names = (await session.scalars(select(things.c.name).order_by(things.c.name))).all()
        assert names == ["a", "bee", "c"]
    finally:
        await session.close()


async def test_a_failing_plan_raises_sqlalchemys_error_and_the_savepoint_recovers(
    database: PostgresDatabase,
) -> None:
    """Callers catch `IntegrityError` (a duplicate idempotency key, an order id seen twice);
    after it, the unit goes on from its savepoint and commits the rest."""
    await create_tables(database)
    session = await database.begin(readonly=False)
    try:
        await session.execute(_ADD, {"name": "a", "data": {}, "at": NOW, "price": None})
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await session.execute(_ADD, {"name": "a", "data": {}, "at": NOW, "price": None})
        await session.execute(_ADD, {"name": "b", "data": {}, "at": NOW, "price": None})
        await session.commit()
    finally:
        await session.close()
    session = await database.begin(readonly=True)
    try:
        assert (await session.scalars(select(things.c.name).order_by(things.c.name))).all() == [
            "a",
            "b",
        ]
    finally:
        await session.close()


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


async def test_a_plan_on_a_connection_closed_a_moment_ago_is_a_storage_fault_then_heals(
    database: PostgresDatabase,
) -> None:
    """The same as above for a `Prepared` statement, which skips SQLAlchemy's execution: the
    lost connection is still invalidated, so the next unit gets a fresh one."""
    session = await database.begin(readonly=True)
    first = int(await session.scalar(PREPARED_PID))
    await terminate(first)
    with pytest.raises(DBAPIError) as failed:
        await session.scalar(PREPARED_PID)
    assert is_storage_fault(failed.value)
    assert failed.value.connection_invalidated
    await session.close()
    session = await database.begin(readonly=True)
    try:
        assert int(await session.scalar(PREPARED_PID)) != first
    finally:
        await session.close()


outbox_metadata = MetaData()
outbox = outbox_table(outbox_metadata)
WAITING_ON_OUTBOX_LOCK = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = :pid"
)


async def test_an_event_append_holds_the_outbox_lock_until_commit(
    database: PostgresDatabase,
) -> None:
    """Seq order must be commit order: a second appender waits, in its insert, for the
    first one's commit, and then draws the later seq (kernel/events.py)."""
    await create_tables(database, outbox_metadata)
    first = await database.begin(readonly=False)
    second = await database.begin(readonly=False)
    watcher = await database.begin(readonly=True)
    try:
        await SqlEventLog(first, outbox).append("thing.made", "a", {"n": 1})
        second_pid = int(await second.scalar(BACKEND_PID))
        waiting = asyncio.ensure_future(SqlEventLog(second, outbox).append("thing.made", "b", {}))
        for _ in range(500):  # until the second appender waits on the lock (never, if none)
            await asyncio.sleep(0.01)
            if await watcher.scalar(WAITING_ON_OUTBOX_LOCK, {"pid": second_pid}):
                break
        else:
            raise AssertionError("the second append did not wait for the outbox lock")
        assert not waiting.done()
        await first.commit()
        await waiting
        await second.commit()
    finally:
        for session in (first, second, watcher):
            await session.close()
    reader = await database.begin(readonly=True)
    try:
        rows = (await reader.execute(select(outbox.c.seq, outbox.c.key).order_by("seq"))).all()
    finally:
        await reader.close()
    assert [key for _, key in rows] == ["a", "b"]
