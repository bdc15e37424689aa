"""Events without a broker (DESIGN.md decision 7): an outbox table written in the same
transaction as the change it records, served as an ordered feed, and a follower that polls it.

Feed contract: `GET /internal/events?after=<seq>&limit=<n>` (service token only) answers
`{"events": [{"seq", "type", "key", "data", "occurred_at"}], "last_seq": <int>}`, events in
ascending `seq`. A follower stores the last `seq` it applied, atomically with what it applied.
"""

# No `from __future__ import annotations`: the feed route is declared inside a function and
# FastAPI must resolve its `Annotated[..., Depends(reader_dependency)]` from the closure.

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from retail.kernel.db import UtcDateTime, rows_affected
from retail.kernel.security import InternalCaller

logger = logging.getLogger("retail.events")

FEED_PATH = "/internal/events"
_OUTBOX_LOCK = 7_301_106
MAX_FEED_BATCH = 1000


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

    def __init__(self, session: AsyncSession, table: Table) -> None:
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


class SqlEventLog:
    def __init__(self, session: AsyncSession, table: Table) -> None:
        self._session = session
        self._table = table

    async def append(self, event_type: str, key: str, data: dict[str, Any]) -> None:
        if self._session.get_bind().dialect.name == "postgresql":
            # Sequence values are handed out at insert but become visible at commit, so a
            # follower could pass seq 8 before seq 7 commits and never see 7. Holding this
            # lock until commit makes seq order and commit order the same. (SQLite already
            # serialises writers.)
            await self._session.execute(text(f"SELECT pg_advisory_xact_lock({_OUTBOX_LOCK})"))
        await self._session.execute(
            insert(self._table).values(
                type=event_type, key=key, data=data, occurred_at=datetime.now(UTC)
            )
        )

    async def read_after(self, after: int, limit: int) -> list[Event]:
        t = self._table
        rows = await self._session.execute(
            select(t.c.seq, t.c.type, t.c.key, t.c.data, t.c.occurred_at)
            .where(t.c.seq > after)
            .order_by(t.c.seq)
            .limit(limit)
        )
        return [Event.model_validate(row._asdict()) for row in rows]


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

    async def read_after(self, after: int, limit: int) -> list[Event]:
        return [e for e in self.events if e.seq > after][:limit]


EventReader = Callable[[int, int], Awaitable[list[Event]]]


def feed_router(reader_dependency: Callable[..., Awaitable[EventReader]]) -> APIRouter:
    """The internal feed route. `reader_dependency` is a FastAPI dependency that returns the
    service's `read(after, limit)` use case bound to a unit of work for this request."""
    router = APIRouter(tags=["internal"])

    @router.get(FEED_PATH, response_model=EventFeed, include_in_schema=True)
    async def read_feed(
        _caller: InternalCaller,
        reader: Annotated[EventReader, Depends(reader_dependency)],
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_FEED_BATCH)] = 500,
    ) -> EventFeed:
        events = await reader(after, limit)
        return EventFeed(events=events, last_seq=events[-1].seq if events else after)

    return router


class FeedFollower:
    """Polls one feed and hands each batch to `apply`, which must store the cursor
    (the last seq) in the same transaction as the changes it makes, and apply idempotently."""

    def __init__(
        self,
        name: str,
        fetch: Callable[[int, int], Awaitable[EventFeed]],
        load_cursor: Callable[[], Awaitable[int]],
        apply: Callable[[Sequence[Event]], Awaitable[None]],
        *,
        interval_seconds: float = 0.5,
        batch_size: int = 500,
    ) -> None:
        self.name = name
        self._fetch = fetch
        self._load_cursor = load_cursor
        self._apply = apply
        self._interval = interval_seconds
        self._batch = batch_size

    async def catch_up(self) -> int:
        """Apply everything available now; return how many events were applied."""
        applied = 0
        cursor = await self._load_cursor()
        while True:
            feed = await self._fetch(cursor, self._batch)
            if not feed.events:
                return applied
            await self._apply(feed.events)
            applied += len(feed.events)
            cursor = feed.events[-1].seq

    async def run(self) -> None:
        backoff = self._interval
        while True:
            try:
                applied = await self.catch_up()
                backoff = self._interval
                if not applied:
                    await asyncio.sleep(self._interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following; the peer may be restarting
                logger.warning("feed %s: %s; retrying in %.1fs", self.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)


@contextlib.asynccontextmanager
async def following(*followers: FeedFollower) -> AsyncIterator[None]:
    """Run followers in the background for the life of an app (use inside its lifespan)."""
    tasks = [asyncio.create_task(f.run(), name=f"feed:{f.name}") for f in followers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
