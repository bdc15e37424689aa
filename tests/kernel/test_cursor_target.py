"""`CursorTarget` remembers the cursor it moved: a batch is one transaction, with no read of
the cursor, and two processes following one feed into one database still apply every event
exactly once (kernel/following.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from retail.kernel.db import SqlDatabase, SqlSession, SqlUnitOfWork, create_engine
from retail.kernel.events import Event, SqlCursorStore, cursor_table
from retail.kernel.following import Batch, CursorTarget

METADATA = MetaData()
CURSORS = cursor_table(METADATA)
# The primary key refuses an event applied twice.
APPLIED = Table("applied", METADATA, Column("seq", Integer, primary_key=True))
FEED = "stock"


class CountingCursors(SqlCursorStore):
    reads = 0

    async def get(self, feed: str) -> int:
        CountingCursors.reads += 1
        return await super().get(feed)


class Unit(SqlUnitOfWork):
    def _bind(self, session: SqlSession) -> None:
        self.session = session
        self.cursors = CountingCursors(session, CURSORS)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/follower.db")
    await engine.run_sync(METADATA.create_all)
    CountingCursors.reads = 0
    yield engine
    await engine.dispose()


def events(*seqs: int) -> list[Event]:
    now = datetime.now(UTC)
    return [Event(seq=s, type="stock.changed", key="p", data={}, occurred_at=now) for s in seqs]


def translate(found: Sequence[Event]) -> Batch[int]:
    return [(event.seq, event.seq) for event in found]


async def record(unit: Unit, seq: int) -> None:
    await unit.session.execute(insert(APPLIED).values(seq=seq))


def target(database: SqlDatabase) -> CursorTarget[Unit, int]:
    """One process's follower target (each process has its own, over the same database)."""

    def units(*, readonly: bool = False) -> Unit:
        return Unit(database, readonly=readonly)

    return CursorTarget(FEED, units, translate, record)


async def applied(database: SqlDatabase) -> list[int]:
    async with Unit(database, readonly=True) as unit:
        return list((await unit.session.scalars(select(APPLIED.c.seq))).all())


async def stored_cursor(database: SqlDatabase) -> int:
    async with Unit(database, readonly=True) as unit:
        return await SqlCursorStore(unit.session, CURSORS).get(FEED)


async def test_the_cursor_is_read_once_then_remembered(database: SqlDatabase) -> None:
    follower = target(database)
    assert await follower.load_cursor() == 0
    for first in range(1, 30, 3):  # ten batches, as a follower reads them
        await follower.apply(events(first, first + 1, first + 2))
        assert await follower.load_cursor() == first + 2
    assert CountingCursors.reads == 1  # the first load; no batch read it again
    assert await applied(database) == list(range(1, 31))
    assert await stored_cursor(database) == 30
    # A batch already applied by this process opens no transaction and applies nothing.
    await follower.apply(events(29, 30))
    assert await applied(database) == list(range(1, 31))


async def test_two_processes_on_one_feed_apply_every_event_once(database: SqlDatabase) -> None:
    one, other = target(database), target(database)
    assert await one.load_cursor() == 0
    assert await other.load_cursor() == 0
    await one.apply(events(1, 2, 3))
    # `other` still remembers 0: its compare-and-set fails, it reads the cursor (3), and
    # applies only what is new to the database.
    await other.apply(events(1, 2, 3, 4, 5))
    assert await other.load_cursor() == 5
    await one.apply(events(4, 5, 6))  # `one` remembers 3: 4 and 5 are not applied again
    assert await applied(database) == [1, 2, 3, 4, 5, 6]
    assert await stored_cursor(database) == 6
    assert CountingCursors.reads == 4  # two first loads, two compare-and-sets that missed


async def test_a_failed_apply_makes_the_cursor_read_again(database: SqlDatabase) -> None:
    follower = target(database)
    await follower.load_cursor()
    await follower.apply(events(1, 2))

    async def broken(unit: Unit, seq: int) -> None:
        raise RuntimeError("the database went away")

    failing = CursorTarget(FEED, follower.units, translate, broken)
    await failing.load_cursor()
    with pytest.raises(RuntimeError):
        await failing.apply(events(3))
    reads = CountingCursors.reads
    assert await failing.load_cursor() == 2  # read again, not assumed to have moved
    assert CountingCursors.reads == reads + 1
    assert await applied(database) == [1, 2]
