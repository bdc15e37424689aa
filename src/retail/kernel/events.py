"""Events without a broker (DESIGN.md decision 7): an outbox table written in the same
transaction as the change it records, served as an ordered feed (followed by
`retail.kernel.following`).

Feed contract: `GET /internal/events?after=<seq>&limit=<n>&wait=<s>` (service token only)
answers `{"events": [{"seq", "type", "key", "data", "occurred_at"}], "last_seq": <int>}`,
events in ascending `seq`. With `wait` the answer is held until there are events after
`after` or `wait` seconds have passed (long polling), so an idle follower costs one request
per `wait` instead of one per poll. A follower stores the last `seq` it applied, atomically
with what it applied.
"""

# No `from __future__ import annotations`: the feed route is declared inside a function and
# FastAPI must resolve its `Annotated[..., Depends(reader_dependency)]` from the closure.

import asyncio
import signal
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from functools import partial
from types import FrameType
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from starlette.types import Receive

from retail.kernel.db import SqlSession, UtcDateTime, rows_affected
from retail.kernel.prepared import Prepared
from retail.kernel.security import InternalCaller

FEED_PATH = "/internal/events"
_OUTBOX_LOCK = 7_301_106
_TAKE_OUTBOX_LOCK = Prepared(text(f"SELECT pg_advisory_xact_lock({_OUTBOX_LOCK})"))
MAX_FEED_BATCH = 1000
MAX_FEED_WAIT_SECONDS = 25.0
# A held feed read looks for commits this process did not signal (another process or
# worker of the service) this often: on SQLite by `PRAGMA data_version` (microseconds), read
# once for all the process's held reads (`VersionWatch`), elsewhere by reading the outbox
# again.
RECHECK_SECONDS = 1.0
SQLITE_RECHECK_SECONDS = 1.0


class Event(BaseModel):
    seq: int
    type: str
    key: str
    data: dict[str, Any]
    occurred_at: datetime


class EventFeed(BaseModel):
    events: list[Event]
    last_seq: int


class EventLog(Protocol):
    """The outbox port: append inside the caller's transaction; read in `seq` order."""

    async def append(self, event_type: str, key: str, data: dict[str, Any]) -> None: ...

    async def read_after(self, after: int, limit: int) -> list[Event]: ...


class BatchEventLog(EventLog, Protocol):
    """An outbox that also takes many events at once (a bulk change's, a page of a feed's)."""

    async def append_many(self, events: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """(type, key, data) events, in this order, in the caller's transaction."""


class FeedCursors(Protocol):
    """Where a follower keeps the last seq it applied, per feed, in its own database."""

    async def get(self, feed: str) -> int: ...

    async def advance_from(self, feed: str, expected: int, seq: int) -> bool:
        """Move the cursor only if it is still at `expected`: two processes following the
        same feed cannot both apply one batch."""


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox_events",
        metadata,
        Column(
            "seq",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("type", String(64), nullable=False),
        Column("key", String(64), nullable=False),
        Column("data", JSON, nullable=False),
        Column("occurred_at", UtcDateTime(), nullable=False),
    )


def cursor_table(metadata: MetaData) -> Table:
    """Where a follower keeps the last seq it applied, per feed."""
    return Table(
        "feed_cursors",
        metadata,
        Column("feed", String(64), primary_key=True),
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    )


class SqlCursorStore:
    """Read and advance a feed cursor inside the caller's transaction."""

    def __init__(self, session: SqlSession, table: Table) -> None:
        self._session = session
        self._table = table

    async def get(self, feed: str) -> int:
        seq = await self._session.scalar(
            select(self._table.c.seq).where(self._table.c.feed == feed)
        )
        return int(seq or 0)

    async def advance_from(self, feed: str, expected: int, seq: int) -> bool:
        """Move the cursor from `expected` to `seq`; False if another process moved it first.

        With several processes following one feed into one database, an unconditional
        write would let two of them apply the same batch: the loser must roll back.
        """
        t = self._table
        result = await self._session.execute(
            update(t).where(t.c.feed == feed, t.c.seq == expected).values(seq=seq)
        )
        if rows_affected(result) == 1:
            return True
        if expected != 0:
            return False
        try:  # the feed's first batch: the primary key lets only one process insert it
            async with self._session.begin_nested():
                await self._session.execute(insert(t).values(feed=feed, seq=seq))
        except IntegrityError:
            return False
        return True


# --- telling held feed reads that this process committed events --------------------------


class OutboxCommits:
    """A counter of this process's commits that wrote outbox events, and the feed reads
    waiting for it to move. One per process: in production a process serves one service,
    and in tests a read woken by another app's commit merely reads again."""

    def __init__(self) -> None:
        self.count = 0
        self.closing = False
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        self.count += 1
        self._wake_all()

    def close(self) -> None:
        """The server is stopping: held reads answer now, so they do not hold its drain.
        Safe in a signal handler (it only schedules wake-ups)."""
        self.closing = True
        self._wake_all()

    def _wake_all(self) -> None:
        for waiter in list(self._waiters):
            # call_soon_threadsafe: a signal handler or another event loop may call this.
            waiter.get_loop().call_soon_threadsafe(_settle, waiter)

    async def wait(
        self,
        seen: int,
        at_most: float,
        *,
        watch: "tuple[VersionWatch, int | None] | None" = None,
        gone: "asyncio.Future[None] | None" = None,
    ) -> None:
        """Until `count` moves past `seen`, `close`, or `at_most` seconds; or, with `watch`
        (a `VersionWatch` and the version the caller read at), until the watch sees another
        version; or, with `gone`, until that future is done (the caller hung up)."""
        if self.count != seen or self.closing or (gone is not None and gone.done()):
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(at_most, _settle, waiter)
        self._waiters.add(waiter)
        if watch is not None:
            watch[0].add(waiter, watch[1])
        wake = partial(_settle_when_done, waiter)
        if gone is not None:
            gone.add_done_callback(wake)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)
            if watch is not None:
                watch[0].discard(waiter)
            if gone is not None:
                gone.remove_done_callback(wake)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _settle_when_done(waiter: asyncio.Future[None], _done: "asyncio.Future[None]") -> None:
    _settle(waiter)


class VersionWatch:
    """Every held read of a process on one version source (SQLite's `PRAGMA data_version`)
    looked after by one timer: a read a second in all, however many reads are held, instead
    of one per held read. A read is woken when the version differs from the one it read at,
    which is how another process's commit reaches it (this process's commits wake it at once
    through `OUTBOX_COMMITS`). Armed only while some read waits."""

    def __init__(self, version: "VersionSource") -> None:
        self._version = version
        self._waiters: dict[asyncio.Future[None], int | None] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, waiter: asyncio.Future[None], read_at: int | None) -> None:
        self._waiters[waiter] = read_at
        if self._timer is None:
            loop = waiter.get_loop()
            self._timer = loop.call_later(SQLITE_RECHECK_SECONDS, self._recheck, loop)

    def discard(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.pop(waiter, None)
        if not self._waiters and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _recheck(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if not self._waiters:
            return
        current = self._version()
        for waiter, read_at in list(self._waiters.items()):
            if current is None or current != read_at:
                _settle(waiter)  # it reads again, and waits again if nothing is new
        self._timer = loop.call_later(SQLITE_RECHECK_SECONDS, self._recheck, loop)


_WATCHES: "weakref.WeakKeyDictionary[VersionSource, VersionWatch]" = weakref.WeakKeyDictionary()


def _watch_of(version: "VersionSource") -> VersionWatch:
    watch = _WATCHES.get(version)
    if watch is None:
        watch = _WATCHES[version] = VersionWatch(version)
    return watch


OUTBOX_COMMITS = OutboxCommits()
_INSERT = "retail.outbox_insert"
_LOCKED_INSERT = "retail.outbox_locked_insert"
_READ = "retail.outbox_read"
_EVENT_COLUMNS = ("type", "key", "data", "occurred_at")


def notify_outbox_commit() -> None:
    """Wake held feed reads: a commit that wrote outbox events landed (SQL or MongoDB)."""
    # Looked up at call time: tests swap the signal.
    OUTBOX_COMMITS.notify()


class SqlEventLog:
    def __init__(self, session: SqlSession, table: Table) -> None:
        self._session = session
        self._table = table
        # The statements are built once per table and kept on it (`Prepared`: the hot path).
        self._insert = _kept_on(table, _INSERT, _insert)
        self._locked_insert = _kept_on(table, _LOCKED_INSERT, _insert_under_outbox_lock)
        self._read = _kept_on(table, _READ, _read_after)

    async def append(self, event_type: str, key: str, data: dict[str, Any]) -> None:
        session = self._session
        # Once the commit has landed (a read woken before it would find nothing); a
        # rollback drops it.
        session.after_commit(notify_outbox_commit)
        values = {"type": event_type, "key": key, "data": data, "occurred_at": datetime.now(UTC)}
        if session.dialect.name == "postgresql":
            # Sequence values are handed out at insert but become visible at commit, so a
            # follower could pass seq 8 before seq 7 commits and never see 7. Holding this
            # lock until commit makes seq order and commit order the same. (SQLite already
            # serialises writers.) The insert takes it itself: one round trip, not two.
            await session.execute(self._locked_insert, values)
            return
        await session.execute(self._insert, values)

    async def append_many(self, events: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """(type, key, data) events in this order, in one statement (executemany): a bulk
        change's events cost one round trip, not one (and one lock) per event."""
        if not events:
            return
        session = self._session
        session.after_commit(notify_outbox_commit)
        if session.dialect.name == "postgresql":
            await session.execute(_TAKE_OUTBOX_LOCK)
        now = datetime.now(UTC)
        rows = [{"type": t, "key": k, "data": d, "occurred_at": now} for t, k, d in events]
        await session.execute(self._insert, rows)

    async def read_after(self, after: int, limit: int) -> list[Event]:
        rows = await self._session.execute(self._read, {"p_after": after, "p_limit": limit})
        return [Event.model_validate(row._asdict()) for row in rows]


def _kept_on(table: Table, name: str, build: Callable[[Table], Prepared]) -> Prepared:
    kept: Prepared | None = table.info.get(name)
    return kept if kept is not None else table.info.setdefault(name, build(table))


def _insert(t: Table) -> Prepared:
    return Prepared(insert(t))


def _insert_under_outbox_lock(t: Table) -> Prepared:
    """PostgreSQL: one event's insert that first takes the outbox lock. The row is selected
    from a MATERIALIZED CTE that takes the lock, so the lock is held before the row's
    `seq` default is drawn, as with a separate `SELECT pg_advisory_xact_lock` before it."""
    lock = (
        select(func.pg_advisory_xact_lock(_OUTBOX_LOCK).label("held"))
        .cte("outbox_lock")
        .prefix_with("MATERIALIZED")
    )
    row = select(*(bindparam(name, type_=t.c[name].type) for name in _EVENT_COLUMNS))
    return Prepared(insert(t).from_select(list(_EVENT_COLUMNS), row.select_from(lock)))


def _read_after(t: Table) -> Prepared:
    return Prepared(
        select(t.c.seq, t.c.type, t.c.key, t.c.data, t.c.occurred_at)
        .where(t.c.seq > bindparam("p_after"))
        .order_by(t.c.seq)
        .limit(bindparam("p_limit"))
    )


class InMemoryEventLog:
    """The fake behind the same port, for use-case tests."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def append(self, event_type: str, key: str, data: dict[str, Any]) -> None:
        self.events.append(
            Event(
                seq=len(self.events) + 1,
                type=event_type,
                key=key,
                data=data,
                occurred_at=datetime.now(UTC),
            )
        )

    async def append_many(self, events: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        for event_type, key, data in events:
            await self.append(event_type, key, data)

    async def read_after(self, after: int, limit: int) -> list[Event]:
        return [e for e in self.events if e.seq > after][:limit]


# --- the feed route ---------------------------------------------------------------------

EventReader = Callable[[int, int], Awaitable[list[Event]]]
VersionSource = Callable[[], int | None]


async def read_or_wait(
    read: EventReader,
    after: int,
    limit: int,
    wait: float,
    *,
    version: VersionSource | None = None,
    gone: "asyncio.Future[None] | None" = None,
) -> list[Event]:
    """The events after `after`, waiting up to `wait` seconds for some to be committed.

    Woken at once by this process's commits (`OUTBOX_COMMITS`), and by a recheck for other
    processes' (every `RECHECK_SECONDS`, a read each). With `version` (SQLite's
    data_version) the process's one `VersionWatch` rechecks for every held read at once, and
    wakes a read only when something was committed. `gone` is done when the caller has hung
    up, which ends the wait.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    watch = _watch_of(version) if version is not None else None
    read_at: int | None = None
    while True:
        seen = OUTBOX_COMMITS.count  # before reading: a commit after the read wakes us
        current = version() if version is not None else None
        if current is None or current != read_at:
            read_at = current
            events = await read(after, limit)
            if events:
                return events
        remaining = deadline - loop.time()
        if remaining <= 0 or OUTBOX_COMMITS.closing or (gone is not None and gone.done()):
            return []
        if watch is None:
            await OUTBOX_COMMITS.wait(seen, min(remaining, RECHECK_SECONDS), gone=gone)
        else:
            await OUTBOX_COMMITS.wait(seen, remaining, watch=(watch, read_at), gone=gone)


async def _hung_up(receive: Receive) -> None:
    """Until the client has gone (or the answer is sent): what ends a held read early,
    without asking the connection every recheck (Starlette's `is_disconnected`)."""
    with suppress(Exception):  # a receive that fails: the client is gone too
        while (await receive())["type"] != "http.disconnect":
            pass


@asynccontextmanager
async def _held_reads_end_on_exit(_app: Any) -> AsyncIterator[None]:
    """uvicorn drains the requests in flight before the app's shutdown runs, so a held feed
    read would hold a stopping server for up to its graceful timeout. SIGTERM and SIGINT
    therefore first tell held reads to answer, then reach the server's own handler."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(sig: int, frame: FrameType | None) -> None:
        OUTBOX_COMMITS.close()
        original = previous[signal.Signals(sig)]
        if callable(original):
            original(sig, frame)
        elif original == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, original in previous.items():
            signal.signal(sig, original)


def feed_router(reader_dependency: Callable[..., Awaitable[EventReader]]) -> APIRouter:
    """The internal feed route. `reader_dependency` is a FastAPI dependency that returns the
    service's `read(after, limit)` use case, which may be called several times per request
    (each call its own read-only transaction). The router's lifespan is merged into the
    app's by `include_router`."""
    router = APIRouter(tags=["internal"], lifespan=_held_reads_end_on_exit)

    @router.get(FEED_PATH, response_model=EventFeed, include_in_schema=True)
    async def read_feed(
        request: Request,
        _caller: InternalCaller,
        reader: Annotated[EventReader, Depends(reader_dependency)],
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_FEED_BATCH)] = 500,
        wait: Annotated[float, Query(ge=0, le=MAX_FEED_WAIT_SECONDS)] = 0,
    ) -> EventFeed:
        version: VersionSource | None = getattr(request.app.state, "data_version", None)
        gone = asyncio.ensure_future(_hung_up(request.receive)) if wait > 0 else None
        try:
            events = await read_or_wait(reader, after, limit, wait, version=version, gone=gone)
        finally:
            if gone is not None:
                gone.cancel()
        return EventFeed(events=events, last_seq=events[-1].seq if events else after)

    return router
