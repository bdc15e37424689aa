"""Use cases: keep the index in step with the feeds, answer queries, and rebuild it. The index
plays the unit of work's part: a use case takes it first, everything else by keyword
(`search(index, *, query)`). The feed appliers (`apply_*_events`) are not use cases: they
keep the `(index, events, guard)` shape `IndexTarget` calls them with.

The index is synchronous (it is an embedded engine). A call that can take milliseconds (a
write, a search not answered since the last commit) goes through a worker thread so the
event loop keeps serving; one that takes microseconds (a cached answer, a cursor) does not,
since the thread hop would cost more than the call.

A page of feed events is applied as one index batch, with the feed's cursor in the same
commit: a crash never skips or double-applies an event, and a page costs one commit (tens
of milliseconds) instead of one per event, or none when it changes nothing indexed (only
stock counts that stay on the same side of zero: `engine/deferred.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from anyio import to_thread

from retail.kernel.events import Event
from retail.kernel.following import FeedFollower
from retail.kernel.money import from_cents, percent_from_basis_points
from retail.search.engine import IndexBatch, IndexedProduct, IndexInUse, SearchQuery
from retail.search.ports import Index, RunningIndex
from retail.search.schemas import ReindexResult

T = TypeVar("T")


def cursor_key(feed: str) -> str:
    return f"cursor:{feed}"


async def _off_loop(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await to_thread.run_sync(partial(func, *args, **kwargs))


async def load_cursor(index: Index, *, feed: str) -> int:
    value = index.get_meta(cursor_key(feed))  # a dict look-up: no worker thread
    return int(value) if value else 0


def product_from_event(data: dict[str, Any]) -> IndexedProduct:
    """The product as search answers it: DESIGN.md's shape, whole even if an event is not
    (search copies the feed's product into its answers, which must validate)."""
    price_cents, tax_bp = int(data["price_cents"]), int(data.get("tax_bp") or 0)
    tax_percent = data.get("tax_percent")
    document: dict[str, Any] = {
        "id": str(data["id"]),
        "title": str(data.get("title") or ""),
        "description": str(data.get("description") or ""),
        "price": from_cents(price_cents),
        "tax_percent": percent_from_basis_points(tax_bp) if tax_percent is None else tax_percent,
        "image_url": data.get("image_url"),
        "category_id": data.get("category_id") or None,
        "stock": int(data.get("stock") or 0),
        "add_ons": list(data.get("add_ons") or []),
        "combos": list(data.get("combos") or []),
        "sku": data.get("sku") or None,
        "brand": data.get("brand") or None,
        "created_at": str(data.get("created_at") or ""),
    }
    return IndexedProduct(
        id=document["id"],
        title=document["title"],
        description=document["description"],
        price_cents=price_cents,
        category_id=document["category_id"],
        stock=document["stock"],
        created_at=document["created_at"],
        document=document,
        brand=str(document["brand"] or ""),
    )


Guard = Callable[[], bool]


def _always() -> bool:
    return True


def _apply_page(
    index: Index,
    feed: str,
    events: Sequence[Event],
    apply: Callable[[IndexBatch, Sequence[Event]], None],
    current: Guard,
) -> None:
    with index.batch() as batch:
        # Under the index's write lock: no rebuild can clear the index between these checks
        # and the commit.
        if not current():
            return  # called before a rebuild began: the rebuild applies it again
        stored = int(index.get_meta(cursor_key(feed)) or 0)
        fresh = [event for event in events if event.seq > stored]  # a repeat is a no-op
        if fresh:
            apply(batch, fresh)
            batch.set_meta(cursor_key(feed), str(fresh[-1].seq))


def _product_changes(batch: IndexBatch, events: Sequence[Event]) -> None:
    # Consecutive upserts go in one call (one lookup of what the index holds for them).
    upserts: list[IndexedProduct] = []
    for event in events:
        # An inactive product is withdrawn from sale: out of the index until it is active again
        # (a later product.updated carries it whole). Events without the flag are active.
        if event.type == "product.deleted" or event.data.get("is_active") is False:
            batch.upsert(upserts)
            upserts = []
            batch.delete(event.key)
        elif event.type in ("product.created", "product.updated"):
            upserts.append(product_from_event(event.data))
    batch.upsert(upserts)


def _category_changes(batch: IndexBatch, events: Sequence[Event]) -> None:
    for event in events:
        if event.type == "category.deleted":
            batch.set_category_name(event.key, None)
        elif event.type in ("category.created", "category.updated"):
            batch.set_category_name(event.key, str(event.data.get("name") or ""))


# The reason inventory gives a product's first level. Its count is the `initial_stock` that
# the product's own `product.created` carried as `stock`, so the index already has it: an
# import of 50,000 products would otherwise re-index every one of them a second time.
INITIAL_STOCK_REASON = "initial stock"


def _stock_changes(batch: IndexBatch, events: Sequence[Event]) -> None:
    for event in events:
        # stock.removed needs nothing: product.deleted already took the product out.
        if event.type == "stock.changed" and event.data.get("reason") != INITIAL_STOCK_REASON:
            batch.set_stock(event.key, int(event.data["stock"]))


async def apply_product_events(
    index: Index, events: Sequence[Event], current: Guard = _always
) -> None:
    if events:
        await _off_loop(_apply_page, index, "products", events, _product_changes, current)


async def apply_category_events(
    index: Index, events: Sequence[Event], current: Guard = _always
) -> None:
    if events:
        await _off_loop(_apply_page, index, "categories", events, _category_changes, current)


async def apply_inventory_events(
    index: Index, events: Sequence[Event], current: Guard = _always
) -> None:
    if events:
        await _off_loop(_apply_page, index, "inventory", events, _stock_changes, current)


# Up to this many characters (about six words), a search not answered since the last commit
# runs on the event loop: measured on 2,000 products, such a search takes 0.3 to 2 ms of CPU,
# and the hop to a worker thread and back cost 0.3 to 0.7 ms more on a loaded machine. A
# longer text (up to 32 words, each expanded with its typos) can take several milliseconds.
INLINE_QUERY_CHARS = 64


async def search(index: Index, *, query: SearchQuery) -> bytes:
    """The JSON array of the hits, best first."""
    cached = index.cached_json(query)
    if cached is not None:
        return cached
    if len(query.text) <= INLINE_QUERY_CHARS:
        return index.search_json(query)
    return await _off_loop(index.search_json, query)


async def suggest(index: Index, *, prefix: str, limit: int) -> list[str]:
    return await _off_loop(index.suggest, prefix, limit)


async def count(index: Index) -> int:
    return await _off_loop(index.count)


async def rebuild(index: Index, *, followers: Sequence[FeedFollower]) -> int:
    """Start over from the first event of every feed; returns the events read. Searches
    meanwhile see the index filling up. No follower may run meanwhile (`Following`)."""
    await _off_loop(index.clear)
    applied = 0
    for follower in followers:
        applied += await follower.catch_up()
    return applied


class Following:
    """The background followers of one index, stopped while a rebuild runs.

    A follower may have fetched a page before the index was cleared: applied after it, its
    cursor would skip every event before the page. Cancelling a follower does not stop an
    apply already handed to a worker thread, so each apply also checks, under the index's
    write lock, that no rebuild began since it was called (`guard`).
    """

    def __init__(self) -> None:
        self.followers: list[FeedFollower] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._rebuilds = 0
        self._rebuilding = asyncio.Lock()

    def guard(self) -> Guard:
        seen = self._rebuilds
        return lambda: self._rebuilds == seen

    def start(self) -> None:
        self._tasks = [asyncio.create_task(f.run(), name=f"feed:{f.name}") for f in self.followers]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def rebuild(self, index: Index) -> int:
        async with self._rebuilding:
            running = bool(self._tasks)
            self._rebuilds += 1
            await self.stop()
            try:
                return await rebuild(index, followers=self.followers)
            finally:
                if running:
                    self.start()


Applier = Callable[[Index, Sequence[Event], Guard], Awaitable[None]]
APPLIERS: dict[str, Applier] = {
    "categories": apply_category_events,
    "products": apply_product_events,
    "inventory": apply_inventory_events,
}


@dataclass(frozen=True)
class IndexTarget:
    """A feed's `FeedTarget`: its cursor is kept in the index and committed with the page
    (`_apply_page`); an apply begun before a rebuild is dropped (`Following.guard`)."""

    feed: str
    index: Index
    following: Following

    async def load_cursor(self) -> int:
        return await load_cursor(self.index, feed=self.feed)

    async def apply(self, events: Sequence[Event]) -> None:
        await APPLIERS[self.feed](self.index, events, self.following.guard())


# --- rebuilding (`POST /internal/reindex`, `retail reindex`) -----------------------------


async def rebuild_index(index: Index, *, following: Following) -> ReindexResult:
    applied = await following.rebuild(index)
    return ReindexResult(events_applied=applied, products_indexed=await count(index))


@dataclass(frozen=True, slots=True)
class Reindexed:
    """What `retail reindex` did: which index it rebuilt (a directory, or the running
    service that rebuilt its own), and what went in."""

    where: str
    result: ReindexResult


# An index in a directory with its followers, closed on exit (main.py wires it).
OpenIndex = Callable[[Path], AbstractAsyncContextManager[tuple[Index, Following]]]
ReachRunning = Callable[[], AbstractAsyncContextManager[RunningIndex]]


async def reindex(
    open_index: OpenIndex, *, directories: Sequence[Path], running: ReachRunning
) -> list[Reindexed]:
    """`retail reindex`: rebuild from the feeds. A stopped service's indexes are rebuilt
    here; a running instance holds its directory, so it is asked to rebuild its own."""
    try:
        return await reindex_stopped(open_index, directories=directories)
    except IndexInUse:
        async with running() as service:
            return [Reindexed(service.where, await service.reindex())]


async def reindex_stopped(open_index: OpenIndex, *, directories: Sequence[Path]) -> list[Reindexed]:
    """Every index directory given, in turn; IndexInUse if one is held."""
    done: list[Reindexed] = []
    for directory in directories:
        async with open_index(directory) as (index, following):
            result = await rebuild_index(index, following=following)
        done.append(Reindexed(str(directory), result))
    return done
