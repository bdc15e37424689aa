"""The catalogue as orders last heard it on products' feed: what a new order costs, without a
call to products per order (docs/architecture.md, "The catalogue view in orders").

This trades a guarantee for speed, within a bound. The view answers only while it is
*known current* within `max_age` seconds: a read of products' feed that reached the feed's
head was sent at most `max_age` ago, and everything it returned is applied. Products
commits before it answers, so every change committed before that read was sent is in the
view: an order placed `max_age` or more after a price, title or withdrawal is committed
always carries it; one placed sooner may carry the previous one. In every other case
(products unreachable, the view still catching up at start, a product it has not heard of)
the live lookup answers, as before the view existed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from retail.kernel.events import Event, EventFeed
from retail.kernel.following import FeedFollower, FeedSource
from retail.orders.domain import CatalogEntry
from retail.orders.ports import ProductCatalog

PRODUCTS_FEED = "products"
# The view keeps itself current while orders come at least this often: each read is held a
# quarter of the bound, so it is confirmed current every quarter bound, and an answer may
# come up to another quarter late (a busy products, a busy event loop here) before the view
# goes stale. Held for half the bound, any lateness at all opened a stale window each cycle
# (5% of orders went to products under load). After a quiet spell the view rests, its reads
# held this long; the first order that finds it stale cuts the resting read short, and a
# read that is not held makes it current again at once. It costs nothing at rest.
ACTIVE_SECONDS = 10.0
ACTIVE_WAIT_FRACTION = 0.25
RESTING_WAIT_SECONDS = 15.0


class CatalogueView:
    """A `ProductCatalog` answered from memory while known current, else by `live`; and the
    `FeedTarget` that keeps it (its cursor is in memory: it reads the feed from the start at
    every start of the process, in the background)."""

    def __init__(
        self,
        live: ProductCatalog,
        *,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._live = live
        self._max_age = max_age
        self._clock = clock
        # id -> entry; None: the product exists but is withdrawn from sale (inactive).
        self._entries: dict[str, CatalogEntry | None] = {}
        self._cursor = 0
        self._current_at = -math.inf  # when the last read that reached the head was sent
        self._used_at = -math.inf  # when an order last asked
        self._heard_at: float | None = None  # that moment for a read still being applied
        # Done by the first order that finds the view stale while a resting read is held.
        self._needed: asyncio.Future[None] | None = None

    def is_current(self) -> bool:
        return self._clock() - self._current_at <= self._max_age

    async def lookup(self, product_ids: Sequence[str]) -> dict[str, CatalogEntry]:
        self._used_at = self._clock()
        if self.is_current():
            found = self._known(product_ids)
            if found is not None:
                return found
        elif self._needed is not None and not self._needed.done():
            self._needed.set_result(None)  # wake the follower: orders are coming
        return await self._live.lookup(product_ids)

    def _known(self, product_ids: Sequence[str]) -> dict[str, CatalogEntry] | None:
        found: dict[str, CatalogEntry] = {}
        for product_id in product_ids:
            if product_id not in self._entries:
                return None  # new to us: products decides
            entry = self._entries[product_id]
            if entry is not None:
                found[product_id] = entry
        return found

    # The feed's side: `FeedTarget`, and the source that tells when a read was sent.

    async def load_cursor(self) -> int:
        return self._cursor

    async def apply(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.seq > self._cursor:
                self._apply_one(event.type, event.key, event.data)
                self._cursor = event.seq
        if self._heard_at is not None:
            self._current_at, self._heard_at = max(self._current_at, self._heard_at), None

    def _apply_one(self, event_type: str, key: str, data: Mapping[str, Any]) -> None:
        if event_type == "product.deleted":
            self._entries.pop(key, None)
        elif event_type in ("product.created", "product.updated"):
            # An event without the flag comes from before products had it: active.
            active = data.get("is_active", True) is not False
            self._entries[key] = (
                CatalogEntry(key, data["title"], data["price_cents"], data["tax_bp"])
                if active
                else None
            )

    def following(self, products: FeedSource, *, batch_size: int = 500) -> FeedFollower:
        """The follower that keeps this view: while orders come, reads held a quarter of the
        bound, so that the view is confirmed current about four times per `max_age`."""
        wait = self._active_wait()
        source = _Stamped(products, self, self._clock)
        return FeedFollower(
            PRODUCTS_FEED, source, self, min_interval=wait, wait=wait, batch_size=batch_size
        )

    def _active_wait(self) -> float:
        return self._max_age * ACTIVE_WAIT_FRACTION

    def next_wait(self) -> float:
        """How long the next read of the feed may be held: a quarter of the bound while
        orders come, longer at rest."""
        if self._clock() - self._used_at <= ACTIVE_SECONDS:
            return self._active_wait()
        return max(self._active_wait(), RESTING_WAIT_SECONDS)

    def is_resting(self, wait: float) -> bool:
        return wait > self._active_wait()

    async def rest(self, read: Awaitable[EventFeed]) -> EventFeed | None:
        """A resting read's answer; None if an order found the view stale first (the read
        is then given up: the caller reads again without holding)."""
        answer = asyncio.ensure_future(read)
        needed = self._needed = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait((answer, needed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._needed = None
            needed.cancel()
            if not answer.done():
                answer.cancel()
                await asyncio.wait((answer,))  # its connection closed before we go on
        return None if answer.cancelled() else answer.result()

    def heard(self, sent_at: float, feed: EventFeed, limit: int) -> None:
        """A read sent at `sent_at` was answered: at the head if it returned less than a
        page; current as of `sent_at` once its events are applied (at once if none)."""
        if len(feed.events) >= limit:
            return
        if feed.events:
            self._heard_at = sent_at
        else:
            self._current_at = max(self._current_at, sent_at)


class _Stamped:
    """Products' feed, noting when each read was sent."""

    def __init__(self, source: FeedSource, view: CatalogueView, clock: Callable[[], float]):
        self._source = source
        self._view = view
        self._clock = clock

    async def read_events(self, after: int, limit: int, *, wait: float = 0) -> EventFeed:
        sent_at = self._clock()
        if wait:  # a held read (not a catch-up): as long as the view's pace allows
            wait = self._view.next_wait()
        if self._view.is_resting(wait):
            rested = await self._view.rest(self._source.read_events(after, limit, wait=wait))
            if rested is None:  # orders are coming: find the feed's head now
                sent_at = self._clock()
                rested = await self._source.read_events(after, limit, wait=0)
            feed = rested
        else:
            feed = await self._source.read_events(after, limit, wait=wait)
        self._view.heard(sent_at, feed, limit)
        return feed
