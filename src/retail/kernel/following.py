"""Following a peer's feed: one follower for every service that keeps a copy of another's
data (products <- inventory, categories; inventory <- products; search <- all three).

The follower fetches with a long poll (`wait`), hands each batch to the service's
`FeedTarget`, and backs off while the peer is away. A target applies a batch exactly once:
`CursorTarget` does it for a unit of work with the kernel's cursor store, in one
transaction that moves the cursor only from where it read it (`advance_from`), so several
processes following one feed into one database never apply an event twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.events import Event, EventFeed, FeedCursors
from retail.kernel.metrics import record_feed_lag

logger = logging.getLogger("retail.events")

# How long one read of a peer's feed may be held open waiting for events (the feed caps it
# at 25 s). The HTTP client's timeout is this plus HTTP_TIMEOUT_SECONDS.
FEED_WAIT_SECONDS = 20.0
# After a failed read: 0.1 s, doubling up to 5 s, until the peer answers again.
FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 5.0
# Losing the cursor race repeatedly only happens on back ends that do not serialise writers.
MAX_APPLY_ATTEMPTS = 5
# After a batch smaller than a page, the least time before the next read. A held read is
# answered by the first commit after it, so under a stream of commits (orders moving stock)
# a follower that read again at once would fetch and apply one or two events per read:
# a request, a read of the outbox and a transaction for each. Waiting this long lets a
# read carry what was committed meanwhile. An event committed after a quiet spell still
# arrives at once: the read waiting for it is already held.
FEED_LINGER_SECONDS = 0.05

C = TypeVar("C")
U = TypeVar("U", bound="CursorUnit")
Batch = Sequence[tuple[int, C | None]]


class FeedSource(Protocol):
    """A peer's feed (the kernel's `ServiceClient`)."""

    async def read_events(self, after: int, limit: int, *, wait: float = 0) -> EventFeed: ...


class FeedTarget(Protocol):
    """The service's side of following a feed."""

    async def load_cursor(self) -> int:
        """The last seq applied."""

    async def apply(self, events: Sequence[Event]) -> None:
        """Apply the events not applied yet and store the last seq, all in one transaction;
        events at or below the stored seq are skipped (another process applied them)."""


class CursorUnit(Protocol):
    """A unit of work with the kernel's cursor store: what `CursorTarget` needs."""

    @property
    def cursors(self) -> FeedCursors: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


async def read_cursor(uow: CursorUnit, feed: str) -> int:
    async with uow:
        return await uow.cursors.get(feed)


# The change type is Any here: mypy cannot solve `C | None` against a union of changes
# (inventory's ProductChange). The services' own signatures (`Batch[ProductChange]`) and
# `CursorTarget[U, C]` keep the pairing checked.
async def apply_batch(
    uow: U,
    feed: str,
    batch: Batch[Any],
    apply_one: Callable[[U, Any], Awaitable[None]],
    *,
    known: int | None = None,
) -> int:
    """Apply the (seq, change) pairs past the stored cursor, with the cursor, in one
    transaction; None stands for an event the service ignores. Returns how many were new.
    `known`: the cursor as the caller last saw it (see `apply_batch_together`)."""

    async def one_by_one(unit: U, changes: Sequence[Any]) -> None:
        for change in changes:
            await apply_one(unit, change)

    return await apply_batch_together(uow, feed, batch, one_by_one, known=known)


async def apply_batch_together(
    uow: U,
    feed: str,
    batch: Batch[Any],
    apply_all: Callable[[U, Sequence[Any]], Awaitable[None]],
    *,
    known: int | None = None,
) -> int:
    """`apply_batch`, with the new changes of the batch handed over in one call (in feed
    order), so that a service can write a page of changes with a few statements.

    With `known` (the stored cursor as this process last wrote it) the cursor is not read
    first: the compare-and-set that moves it checks `known` instead, and only if another
    process moved it meanwhile is it read, and the batch filtered again."""
    for attempt in range(MAX_APPLY_ATTEMPTS):
        applied = await _apply_once(uow, feed, batch, apply_all, known if attempt == 0 else None)
        if applied is not None:
            return applied
    raise ServiceUnavailable(f"Another process keeps applying the {feed} feed")


async def _apply_once(
    uow: U,
    feed: str,
    batch: Batch[Any],
    apply_all: Callable[[U, Sequence[Any]], Awaitable[None]],
    known: int | None,
) -> int | None:
    if known is not None and all(seq <= known for seq, _ in batch):
        return 0  # applied already, by this process: nothing to open a transaction for
    async with uow:
        cursor = known if known is not None else await uow.cursors.get(feed)
        fresh = [(seq, change) for seq, change in batch if seq > cursor]
        if not fresh:
            return 0
        if not await uow.cursors.advance_from(feed, cursor, fresh[-1][0]):
            return None  # another process moved the cursor meanwhile: read it again
        await apply_all(uow, [change for _, change in fresh if change is not None])
        await uow.commit()
    return len(fresh)


@dataclass
class CursorTarget(Generic[U, C]):
    """A `FeedTarget` over a service's units of work: `translate` turns events into the
    service's changes (None for events it ignores), `apply_one` applies one change.

    It remembers the cursor it last read or moved. The follower asks for the cursor before
    every read of the feed, and the apply would read it again in its transaction: with the
    cursor remembered, a batch costs one transaction that moves the cursor
    (compare-and-set) and applies, instead of a read-only one and a reading one (on
    PostgreSQL, products spent a fifth of its CPU on those reads while following
    inventory's stock). Another process following the same feed into the same database can
    only move the stored cursor ahead of the remembered one: then this process reads some
    events it need not have, and the compare-and-set fails, reads the cursor and filters
    the batch, so nothing is applied twice. After a failed apply the cursor is read again."""

    feed: str
    units: Callable[..., U]
    translate: Callable[[Sequence[Event]], Batch[C]]
    apply_one: Callable[[U, C], Awaitable[None]]
    # When given, a batch's new changes go to it in one call instead of to `apply_one` one by
    # one (a page of a bulk import: a few statements instead of several per event).
    apply_all: Callable[[U, Sequence[C]], Awaitable[None]] | None = None
    _known: int | None = field(default=None, init=False, repr=False)

    async def load_cursor(self) -> int:
        if self._known is None:
            self._known = await read_cursor(self.units(readonly=True), self.feed)
        return self._known

    async def apply(self, events: Sequence[Event]) -> None:
        batch = self.translate(events)
        known, self._known = self._known, None  # read again should this apply fail
        if self.apply_all is not None:
            await apply_batch_together(self.units(), self.feed, batch, self.apply_all, known=known)
        else:
            await apply_batch(self.units(), self.feed, batch, self.apply_one, known=known)
        if events:  # the stored cursor is now at least the batch's last seq
            self._known = max(known or 0, events[-1].seq)


class Backoff:
    """Capped exponential delays between failed reads, logged once per outage."""

    def __init__(self, name: str, max_delay: float = MAX_BACKOFF_SECONDS) -> None:
        self._name = name
        self._next = FIRST_BACKOFF_SECONDS
        self._max = max_delay
        self._failing = False

    def failed(self, exc: Exception) -> float:
        if not self._failing:
            self._failing = True
            logger.warning("feed %s: %s; retrying until it answers", self._name, exc)
        delay, self._next = self._next, min(self._next * 2, self._max)
        return delay

    def succeeded(self) -> None:
        if self._failing:
            logger.info("feed %s: answering again", self._name)
        self._failing = False
        self._next = FIRST_BACKOFF_SECONDS


class FeedFollower:
    """Follows one feed into one target. `min_interval` is the least time between two reads
    that found nothing: a peer that holds the read (long polling) never makes it wait, one
    that answers at once (an older version) is not read in a tight loop. `linger` is the
    least time after a batch smaller than a page (`FEED_LINGER_SECONDS`); a full page is
    followed by the next read at once."""

    def __init__(
        self,
        name: str,
        source: FeedSource,
        target: FeedTarget,
        *,
        min_interval: float = 0.5,
        wait: float = FEED_WAIT_SECONDS,
        batch_size: int = 500,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        linger: float = FEED_LINGER_SECONDS,
    ) -> None:
        self.name = name
        self._linger = linger
        self._max_backoff = max_backoff
        self._source = source
        self._target = target
        self._min_interval = min_interval
        self._wait = wait
        self._batch = batch_size
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests record delays

    async def catch_up(self) -> int:
        """Apply everything available now (no waiting); return how many events were read."""
        applied = 0
        cursor = await self._target.load_cursor()
        while events := await self._read_and_apply(cursor, wait=0):
            applied += len(events)
            cursor = events[-1].seq
        return applied

    async def _read_and_apply(self, cursor: int, *, wait: float) -> list[Event]:
        feed = await self._source.read_events(cursor, self._batch, wait=wait)
        if feed.events:
            await self._target.apply(feed.events)
        record_feed_lag(self.name, feed.events, full_page=len(feed.events) >= self._batch)
        return feed.events

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(self.name, self._max_backoff)
        while True:
            raise_if_cancelled()
            started = loop.time()
            try:
                cursor = await self._target.load_cursor()  # another process may have moved it
                applied = await self._read_and_apply(cursor, wait=self._wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following; the peer may be restarting
                raise_if_cancelled()
                await self._sleep(backoff.failed(exc))
                continue
            backoff.succeeded()
            if not applied:  # a peer that answered at once with nothing is not asked again at once
                await self._sleep(max(0.0, started + self._min_interval - loop.time()))
            elif len(applied) < self._batch and self._linger > 0:
                await self._sleep(self._linger)  # let the next read carry more than one commit


def raise_if_cancelled() -> None:
    """Raise `CancelledError` if the current task was cancelled and the cancellation was
    swallowed on the way. pymongo's async client can turn one into an error of its own,
    which a background loop then logs and goes on from: it would never stop, and its app's
    shutdown would wait for it forever (seen on the MongoDB pass). Every background loop
    calls this before it waits or works again."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


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
