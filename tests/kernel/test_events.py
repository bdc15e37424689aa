"""The follower applies each batch once, in order, resumes from its stored cursor, and keeps
going when the feed fails."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from retail.kernel.db import SqlUnitOfWork, create_engine, session_factory
from retail.kernel.events import (
    Event,
    EventFeed,
    FeedFollower,
    InMemoryEventLog,
    SqlCursorStore,
    SqlEventLog,
    cursor_table,
    following,
    outbox_table,
)


async def make_log(n: int) -> InMemoryEventLog:
    log = InMemoryEventLog()
    for i in range(n):
        await log.append("thing.created", f"k{i}", {"i": i})
    return log


def follower_over(
    log: InMemoryEventLog, applied: list[int], cursor: list[int], batch: int = 3
) -> FeedFollower:
    async def fetch(after: int, limit: int) -> EventFeed:
        events = await log.read_after(after, limit)
        return EventFeed(events=events, last_seq=events[-1].seq if events else after)

    async def load() -> int:
        return cursor[0]

    async def apply(events: Sequence[Event]) -> None:
        applied.extend(e.seq for e in events)
        cursor[0] = events[-1].seq

    return FeedFollower("test", fetch, load, apply, interval_seconds=0.01, batch_size=batch)


async def test_catch_up_applies_in_order_and_resumes() -> None:
    log = await make_log(7)
    applied: list[int] = []
    cursor = [0]
    assert await follower_over(log, applied, cursor).catch_up() == 7
    assert applied == [1, 2, 3, 4, 5, 6, 7]
    await log.append("thing.created", "k7", {})
    assert await follower_over(log, applied, cursor).catch_up() == 1
    assert applied[-1] == 8


async def test_run_survives_feed_failures() -> None:
    log = await make_log(2)
    applied: list[int] = []
    calls = 0
    inner = follower_over(log, applied, [0])
    real_fetch = inner._fetch

    async def flaky(after: int, limit: int) -> EventFeed:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionError("peer restarting")
        return await real_fetch(after, limit)

    inner._fetch = flaky
    async with following(inner):
        for _ in range(200):
            if applied:
                break
            await asyncio.sleep(0.02)
    assert applied == [1, 2]


async def test_sql_outbox_and_cursor_in_one_transaction(tmp_path: Path) -> None:
    metadata = MetaData()
    outbox, cursors = outbox_table(metadata), cursor_table(metadata)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)

    async with SqlUnitOfWork(sessions) as uow:
        await SqlEventLog(uow.session, outbox).append("a.b", "k", {"x": 1})
        assert await SqlCursorStore(uow.session, cursors).advance_from("feed", 0, 5)
        # no commit: both are rolled back
    async with SqlUnitOfWork(sessions, readonly=True) as uow:
        assert await SqlEventLog(uow.session, outbox).read_after(0, 10) == []
        assert await SqlCursorStore(uow.session, cursors).get("feed") == 0

    async with SqlUnitOfWork(sessions) as uow:
        await SqlEventLog(uow.session, outbox).append("a.b", "k", {"x": 1})
        store = SqlCursorStore(uow.session, cursors)
        assert await store.advance_from("feed", 0, 5)
        assert not await store.advance_from("feed", 0, 9)  # someone else's stale view
        assert not await store.advance_from("feed", 4, 9)
        assert await store.advance_from("feed", 5, 6)
        await uow.commit()
    async with SqlUnitOfWork(sessions, readonly=True) as uow:
        events = await SqlEventLog(uow.session, outbox).read_after(0, 10)
        assert [(e.seq, e.type, e.data) for e in events] == [(1, "a.b", {"x": 1})]
        assert events[0].occurred_at.tzinfo is not None
        assert await SqlCursorStore(uow.session, cursors).get("feed") == 6
    await engine.dispose()


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("sqlite+aiosqlite:///x.db", "sqlite"),
        ("postgresql+asyncpg://h/db", "postgresql"),
        ("mongodb://h:27017/db", "mongodb"),
        ("mongodb+srv://cluster/db", "mongodb"),
    ],
)
def test_backend_of(url: str, backend: str) -> None:
    from retail.kernel.db import backend_of

    assert backend_of(url) == backend
