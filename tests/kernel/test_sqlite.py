"""SQLite on the event loop: a writer waiting for another process's lock leaves the loop free
and ends in a 503, reads never wait for the writer, storage faults are 503s, and prepared
statements answer exactly as SQLAlchemy does."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from retail.kernel import sqlite as kernel_sqlite
from retail.kernel.db import SqlDatabase, SqlUnitOfWork, UtcDateTime, create_engine
from retail.kernel.errors import ServiceUnavailable
from retail.kernel.prepared import Prepared

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("data", JSON, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("blob", String, nullable=True),
)
NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
_BY_NAME = Prepared(select(things).where(things.c.name == bindparam("p_name")))
_ADD = Prepared(insert(things))


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    database = create_engine(f"sqlite+aiosqlite:///{tmp_path}/k.db")  # mapped to sqlite3
    await database.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def add(database: SqlDatabase, name: str, **extra: Any) -> None:
    async with SqlUnitOfWork(database) as uow:
        await uow.session.execute(_ADD, {"name": name, "data": {"n": name}, "at": NOW, **extra})
        await uow.commit()


async def count(database: SqlDatabase) -> int:
    async with SqlUnitOfWork(database, readonly=True) as uow:
        return int(await uow.session.scalar(text("SELECT count(*) FROM things")))


def hold_write_lock(tmp_path: Path) -> sqlite3.Connection:
    """Another process's writer, as far as SQLite can tell: its own connection, mid-write."""
    other = sqlite3.connect(tmp_path / "k.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_writer_waiting_for_the_lock_leaves_the_loop_running(
    database: SqlDatabase, tmp_path: Path
) -> None:
    other = hold_write_lock(tmp_path)
    writer = asyncio.create_task(add(database, "a"))
    ticks = 0
    for _ in range(20):  # the loop keeps turning while the writer waits
        await asyncio.sleep(0.001)
        ticks += 1
    assert ticks == 20
    assert not writer.done()
    # Reads neither wait for the other writer nor for ours.
    assert await count(database) == 0
    other.execute("COMMIT")
    await asyncio.wait_for(writer, 10)
    assert await count(database) == 1
    other.close()


async def test_a_writer_kept_waiting_past_the_deadline_gets_a_503(
    database: SqlDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel_sqlite, "SQLITE_BUSY_TIMEOUT_MS", 50)
    other = hold_write_lock(tmp_path)
    with pytest.raises(ServiceUnavailable):
        await add(database, "a")
    other.execute("ROLLBACK")
    other.close()
    await add(database, "b")  # the gate and the writer connection were given back
    assert await count(database) == 1


async def test_a_full_disk_is_a_503_and_changes_nothing(database: SqlDatabase) -> None:
    await add(database, "small")
    async with SqlUnitOfWork(database) as uow:
        # SQLite's own way to be "full": no page beyond the ones the file has now.
        pages = await uow.session.scalar(text("PRAGMA page_count"))
        await uow.session.execute(text(f"PRAGMA max_page_count={pages}"))
    with pytest.raises(ServiceUnavailable):
        await add(database, "big", blob="x" * 200_000)
    assert await count(database) == 1


async def test_prepared_statements_answer_as_sqlalchemy_does(database: SqlDatabase) -> None:
    async with SqlUnitOfWork(database) as uow:
        rows = [{"name": n, "data": {"n": [1, n]}, "at": NOW} for n in ("a", "b", "c")]
        await uow.session.execute(_ADD, rows)  # executemany
        prepared = (await uow.session.execute(_BY_NAME, {"p_name": "b"})).mappings().one()
        plain = (await uow.session.execute(select(things).where(things.c.name == "b"))).one()
        assert dict(prepared) == plain._asdict()
        assert prepared["data"] == {"n": [1, "b"]}
        assert prepared["at"] == NOW
        assert prepared["at"].tzinfo is not None
        assert (await uow.session.execute(_BY_NAME, {"p_name": "z"})).first() is None
        with pytest.raises(IntegrityError):  # SQLAlchemy's error, as the adapters catch it
            await uow.session.execute(_ADD, {"name": "a", "data": {}, "at": NOW})
        await uow.commit()
    assert await count(database) == 3


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        ("2026-01-02 03:04:05.678000", NOW),  # SQLAlchemy's own format
        ("2026-01-02 03:04:05", NOW.replace(microsecond=0)),  # SQLite's CURRENT_TIMESTAMP
        ("2026-01-02T05:04:05.678000+02:00", NOW),  # text that names its offset
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC)),
    ],
)
async def test_stored_datetime_text_reads_as_utc(
    database: SqlDatabase, tmp_path: Path, stored: str, read: datetime
) -> None:
    await add(database, "a")
    with closing(sqlite3.connect(tmp_path / "k.db", isolation_level=None)) as other:
        other.execute("UPDATE things SET at = ?", (stored,))
    async with SqlUnitOfWork(database, readonly=True) as uow:
        for answer in (
            (await uow.session.execute(_BY_NAME, {"p_name": "a"})).mappings().one(),
            (await uow.session.execute(select(things))).mappings().one(),
        ):
            assert answer["at"] == read
            assert answer["at"].utcoffset() == timedelta(0)


async def test_a_read_only_unit_of_work_does_not_wait_for_this_process_writer(
    database: SqlDatabase,
) -> None:
    await add(database, "a")
    async with SqlUnitOfWork(database) as writing:
        await writing.session.execute(text("DELETE FROM things"))
        # The writer holds the gate and SQLite's write lock; a read still sees the last commit.
        assert await asyncio.wait_for(count(database), 1) == 1
        await writing.commit()
    assert await count(database) == 0


async def test_a_failed_commit_leaves_the_writer_usable(database: SqlDatabase) -> None:
    """A COMMIT that fails (here a deferred foreign key; on a full disk, SQLITE_FULL) used to
    leave SQLAlchemy's transaction attached to the writer's connection, and every later
    writing unit of work failed with InvalidRequestError (a 500) until a restart."""
    await database.run_sync(
        lambda connection: connection.exec_driver_sql(
            "CREATE TABLE parts (id INTEGER PRIMARY KEY, thing_id INTEGER"
            " REFERENCES things(id) DEFERRABLE INITIALLY DEFERRED)"
        )
    )
    async with SqlUnitOfWork(database) as uow:
        await uow.session.execute(text("INSERT INTO parts (thing_id) VALUES (404)"))
        with pytest.raises(IntegrityError):
            await uow.commit()  # the deferred check fails here, at COMMIT
    await add(database, "after")  # the next writer starts afresh
    async with SqlUnitOfWork(database, readonly=True) as uow:
        assert await uow.session.scalar(select(things.c.name)) == "after"


async def test_a_refused_row_keeps_the_writer_and_its_transaction(database: SqlDatabase) -> None:
    """A duplicate key (an idempotent repeat's usual answer) aborts only its statement: the
    unit's earlier writes still commit, and the writer's connection is not replaced."""
    assert isinstance(database, kernel_sqlite.SqliteDatabase)
    await add(database, "first")
    writer = database._writer
    async with SqlUnitOfWork(database) as uow:
        await uow.session.execute(_ADD, {"name": "second", "data": {}, "at": NOW})
        with pytest.raises(IntegrityError):
            await uow.session.execute(_ADD, {"name": "first", "data": {}, "at": NOW})
        await uow.commit()
    assert database._writer is writer
    assert await count(database) == 2


async def test_every_connection_keeps_temporary_data_in_memory(database: SqlDatabase) -> None:
    """Statement journals (a write to a table with a trigger opens one per row) and temporary
    B-trees: in a temp file they cost about 27 pwrite calls per row written (2 = MEMORY)."""
    for readonly in (False, True):
        async with SqlUnitOfWork(database, readonly=readonly) as uow:
            assert await uow.session.scalar(text("PRAGMA temp_store")) == 2, readonly
