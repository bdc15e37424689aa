"""The outbox and its feed (held reads woken by commits), and the one follower: it applies
each batch once, in order, resumes from its stored cursor, and backs off while the feed
fails."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData

from retail.categories.config import CategoriesSettings
from retail.categories.main import create_app as create_categories
from retail.kernel import events
from retail.kernel.cache import SqliteDataVersion
from retail.kernel.db import SqlDatabase, SqlUnitOfWork, create_engine
from retail.kernel.events import (
    Event,
    EventFeed,
    InMemoryEventLog,
    OutboxCommits,
    SqlCursorStore,
    SqlEventLog,
    cursor_table,
    outbox_table,
    read_or_wait,
)
from retail.kernel.following import FEED_LINGER_SECONDS, Backoff, FeedFollower, following
from tests.support import admin_headers, assert_error, make_settings, serve, service_headers

OUTBOX = outbox_table(MetaData())

# --- the follower -------------------------------------------------------------------------


async def make_log(n: int) -> InMemoryEventLog:
    log = InMemoryEventLog()
    for i in range(n):
        await log.append("thing.created", f"k{i}", {"i": i})
    return log


@dataclass
class Source:
    """A feed that answers at once (it ignores `wait`), failing the first `failures` reads."""

    log: InMemoryEventLog
    failures: int = 0
    reads: list[float] = field(default_factory=list)

    async def read_events(self, after: int, limit: int, *, wait: float = 0) -> EventFeed:
        self.reads.append(wait)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("peer restarting")
        events = await self.log.read_after(after, limit)
        return EventFeed(events=events, last_seq=events[-1].seq if events else after)


@dataclass
class Target:
    applied: list[int] = field(default_factory=list)
    cursor: int = 0

    async def load_cursor(self) -> int:
        return self.cursor

    async def apply(self, events: Sequence[Event]) -> None:
        self.applied.extend(e.seq for e in events if e.seq > self.cursor)
        self.cursor = max(self.cursor, events[-1].seq)


async def test_catch_up_applies_in_order_and_resumes() -> None:
    log, target = await make_log(7), Target()
    assert await FeedFollower("t", Source(log), target, batch_size=3).catch_up() == 7
    assert target.applied == [1, 2, 3, 4, 5, 6, 7]
    await log.append("thing.created", "k7", {})
    source = Source(log)
    assert await FeedFollower("t", source, target, batch_size=3).catch_up() == 1
    assert target.applied[-1] == 8
    assert set(source.reads) == {0}  # catching up never waits at the peer


async def test_run_long_polls_backs_off_while_the_feed_fails_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log, target = await make_log(2), Target()
    source = Source(log, failures=8)
    follower = FeedFollower("t", source, target, min_interval=30.0, wait=20.0)
    delays: list[float] = []
    enough = asyncio.Event()

    async def sleep(seconds: float) -> None:  # records instead of sleeping
        delays.append(seconds)
        if len(delays) == 10:
            enough.set()
        await asyncio.sleep(0)

    follower._sleep = sleep
    with caplog.at_level(logging.INFO, logger="retail.events"):
        async with following(follower):
            await asyncio.wait_for(enough.wait(), 10)
    assert target.applied == [1, 2]
    assert delays[:8] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]  # capped exponential
    assert delays[8] == FEED_LINGER_SECONDS  # after the two events
    # Then a read found nothing at once (this source does not hold reads): it is not asked
    # again before min_interval, measured from when that read began.
    assert 0.05 < delays[9] <= 30.0
    assert set(source.reads) == {20.0}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("retrying until it answers" in m for m in messages) == 1  # once per outage
    assert sum("answering again" in m for m in messages) == 1


@pytest.mark.parametrize("linger", [FEED_LINGER_SECONDS, 0.0])
async def test_a_follower_lingers_after_a_partial_batch_only(linger: float) -> None:
    """A full page is followed by the next read at once; a partial one (the head of a feed
    that commits one event at a time) by `linger`, so the next read carries more."""
    log, target = await make_log(5), Target()
    follower = FeedFollower("t", Source(log), target, batch_size=2, wait=20.0, linger=linger)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 2:
            raise asyncio.CancelledError  # enough: ends the follower
        await log.append("thing.created", "k", {})  # committed while the follower waits

    follower._sleep = sleep
    with pytest.raises(asyncio.CancelledError):
        await follower.run()
    # Pages [1, 2] and [3, 4] back to back, then [5] and a linger, then [6] and another.
    # Without one, the follower reads again at once, finds nothing, and rests the min_interval.
    assert target.applied[:5] == [1, 2, 3, 4, 5]
    if linger:
        assert delays == [linger, linger]
    else:
        assert len(delays) == 2
        assert min(delays) > 0.4


class SwallowingSource:
    """A read that turns its cancellation into an error of its own, as pymongo's async client
    can: the follower must stop all the same."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()

    async def read_events(self, after: int, limit: int, *, wait: float = 0) -> EventFeed:
        self.reading.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise ConnectionError("the driver's own error") from None
        return EventFeed(events=[], last_seq=after)


async def test_a_follower_stops_even_when_its_read_swallows_the_cancellation() -> None:
    source = SwallowingSource()
    follower = FeedFollower("t", source, Target(), min_interval=0.0, wait=20.0)

    async def follow_until_reading() -> None:
        async with following(follower):
            await source.reading.wait()

    # Not wait_for: it would wait for the cancelled block, which without the check is forever.
    done, _ = await asyncio.wait({asyncio.create_task(follow_until_reading())}, timeout=10)
    assert done, "the follower went on after its cancellation was swallowed"


def test_backoff_starts_over_after_the_feed_answers() -> None:
    backoff = Backoff("t")
    assert [backoff.failed(OSError()) for _ in range(3)] == [0.1, 0.2, 0.4]
    backoff.succeeded()
    assert backoff.failed(OSError()) == 0.1


# --- held feed reads ----------------------------------------------------------------------


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/feed.db")
    await engine.run_sync(OUTBOX.metadata.create_all)
    yield engine
    await engine.dispose()


class WatchedCommits(OutboxCommits):
    """The signal, telling the test when a read starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = asyncio.Event()

    async def wait(self, seen: int, at_most: float, **kwargs: Any) -> None:
        self.waiting.set()
        await super().wait(seen, at_most, **kwargs)


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> WatchedCommits:
    """A signal of this test's own; and no recheck, so only the signal can wake a read."""
    signal = WatchedCommits()
    monkeypatch.setattr(events, "OUTBOX_COMMITS", signal)
    monkeypatch.setattr(events, "RECHECK_SECONDS", 3600.0)
    monkeypatch.setattr(events, "SQLITE_RECHECK_SECONDS", 3600.0)
    return signal


async def append(engine: SqlDatabase, *, commit: bool = True) -> None:
    async with SqlUnitOfWork(engine) as uow:
        await SqlEventLog(uow.session, OUTBOX).append("thing.created", "k", {})
        if commit:
            await uow.commit()


def reader(engine: SqlDatabase) -> events.EventReader:
    async def read(after: int, limit: int) -> list[Event]:
        async with SqlUnitOfWork(engine, readonly=True) as uow:
            return await SqlEventLog(uow.session, OUTBOX).read_after(after, limit)

    return read


async def held(commits: WatchedCommits) -> None:
    """Until a read is waiting on the signal."""
    await asyncio.wait_for(commits.waiting.wait(), 10)


async def test_only_a_commit_with_events_moves_the_signal(
    engine: SqlDatabase, commits: WatchedCommits
) -> None:
    await append(engine, commit=False)
    async with SqlUnitOfWork(engine) as uow:
        await uow.commit()
    assert commits.count == 0
    await append(engine)
    assert commits.count == 1


@pytest.mark.parametrize("with_data_version", [False, True])
async def test_a_held_read_answers_when_this_process_commits(
    engine: SqlDatabase, commits: WatchedCommits, tmp_path: Path, with_data_version: bool
) -> None:
    # With data_version the woken read is skipped unless the commit has landed: the signal
    # must come after it, not when it begins.
    version = SqliteDataVersion(str(tmp_path / "feed.db")) if with_data_version else None
    waiting = asyncio.create_task(read_or_wait(reader(engine), 0, 10, 20.0, version=version))
    await held(commits)
    await append(engine)
    events_read = await asyncio.wait_for(waiting, 10)  # a bound for a broken signal only
    assert [e.seq for e in events_read] == [1]
    if version is not None:
        version.close()


@pytest.mark.parametrize("readers", [1, 3])
async def test_held_reads_see_another_process_commit_by_data_version(
    engine: SqlDatabase,
    commits: WatchedCommits,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    readers: int,
) -> None:
    # One version source however many reads are held: the process's one VersionWatch
    # rechecks for all of them.
    monkeypatch.setattr(events, "SQLITE_RECHECK_SECONDS", 0.01)
    version = SqliteDataVersion(str(tmp_path / "feed.db"))
    held_reads = [
        asyncio.create_task(read_or_wait(reader(engine), 0, 10, 20.0, version=version))
        for _ in range(readers)
    ]
    await held(commits)
    # A plain sqlite3 connection: no SQLAlchemy event, so no signal, as from another process.
    other = sqlite3.connect(tmp_path / "feed.db")
    other.execute(
        "INSERT INTO outbox_events (type, key, data, occurred_at) "
        "VALUES ('thing.created', 'k', '{}', '2026-01-01 00:00:00.000000')"
    )
    other.commit()
    other.close()
    answers = await asyncio.wait_for(asyncio.gather(*held_reads), 10)
    version.close()
    assert [[e.seq for e in answer] for answer in answers] == [[1]] * readers


@pytest.mark.parametrize("with_data_version", [False, True])
async def test_a_held_read_ends_when_its_caller_hangs_up(
    engine: SqlDatabase, commits: WatchedCommits, tmp_path: Path, with_data_version: bool
) -> None:
    version = SqliteDataVersion(str(tmp_path / "feed.db")) if with_data_version else None
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = asyncio.create_task(
        read_or_wait(reader(engine), 0, 10, 20.0, version=version, gone=gone)
    )
    await held(commits)
    gone.set_result(None)
    assert await asyncio.wait_for(waiting, 10) == []
    if version is not None:
        version.close()


async def test_a_held_read_answers_empty_after_wait(
    engine: SqlDatabase, commits: WatchedCommits
) -> None:
    assert await read_or_wait(reader(engine), 0, 10, 0.05) == []


async def test_a_stopping_server_answers_held_reads(
    engine: SqlDatabase, commits: WatchedCommits
) -> None:
    waiting = asyncio.create_task(read_or_wait(reader(engine), 0, 10, 20.0))
    await held(commits)
    commits.close()  # what SIGTERM does first
    assert await asyncio.wait_for(waiting, 10) == []


async def test_the_feed_route_holds_until_a_category_is_created(
    tmp_path: Path, commits: WatchedCommits
) -> None:
    app = create_categories(make_settings(CategoriesSettings, tmp_path))
    async with serve(app) as client:
        too_long = await client.get(
            "/internal/events", params={"wait": 26}, headers=service_headers()
        )
        assert_error(too_long, 422)
        empty = await client.get(
            "/internal/events", params={"after": 0, "wait": 0.05}, headers=service_headers()
        )
        assert empty.json() == {"events": [], "last_seq": 0}
        commits.waiting.clear()
        poll = asyncio.create_task(
            client.get("/internal/events", params={"wait": 20}, headers=service_headers())
        )
        await held(commits)
        created = await client.post(
            "/api/categories", json={"name": "Hats"}, headers=admin_headers()
        )
        assert created.status_code == 201
        answer = await asyncio.wait_for(poll, 10)
    assert [e["type"] for e in answer.json()["events"]] == ["category.created"]
    assert answer.json()["last_seq"] == 1


async def test_sql_outbox_and_cursor_in_one_transaction(tmp_path: Path) -> None:
    metadata = MetaData()
    outbox, cursors = outbox_table(metadata), cursor_table(metadata)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    await engine.run_sync(metadata.create_all)
    sessions = engine

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
