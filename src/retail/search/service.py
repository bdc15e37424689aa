"""Use cases: keep the index in step with the feeds, and answer queries.

The index is synchronous (it is an embedded engine); every call goes through a worker thread
so the event loop keeps serving. Each change is written with its feed cursor in the index's
own metadata, atomically, so a crash never skips or double-applies an event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from anyio import to_thread

from retail.kernel.events import Event, FeedFollower
from retail.search.engine import IndexedProduct, SearchQuery
from retail.search.ports import Index

T = TypeVar("T")
FEEDS = ("categories", "products", "inventory")
PRODUCT_FIELDS = (
    "id",
    "title",
    "description",
    "price",
    "tax_percent",
    "image_url",
    "category_id",
    "stock",
    "add_ons",
    "combos",
    "created_at",
)


def cursor_key(feed: str) -> str:
    return f"cursor:{feed}"


async def _off_loop(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await to_thread.run_sync(partial(func, *args, **kwargs))


async def load_cursor(index: Index, feed: str) -> int:
    value = await _off_loop(index.get_meta, cursor_key(feed))
    return int(value) if value else 0


def product_from_event(data: dict[str, Any]) -> IndexedProduct:
    document = {field: data.get(field) for field in PRODUCT_FIELDS}
    return IndexedProduct(
        id=str(data["id"]),
        title=str(data.get("title") or ""),
        description=str(data.get("description") or ""),
        price_cents=int(data["price_cents"]),
        category_id=data.get("category_id"),
        stock=int(data.get("stock") or 0),
        created_at=str(data.get("created_at") or ""),
        document=document,
    )


async def apply_product_events(index: Index, events: Sequence[Event]) -> None:
    """Consecutive upserts go to the index as one batch; a delete flushes the batch first."""
    batch: list[IndexedProduct] = []
    for event in events:
        if event.type == "product.deleted":
            await _flush(index, batch, event.seq - 1)
            batch = []
            await _off_loop(index.delete, event.key, meta=_cursor("products", event.seq))
        elif event.type in ("product.created", "product.updated"):
            batch.append(product_from_event(event.data))
    if batch:
        await _flush(index, batch, events[-1].seq)
    elif events and events[-1].type != "product.deleted":
        await _off_loop(index.set_meta, cursor_key("products"), str(events[-1].seq))


async def _flush(index: Index, batch: list[IndexedProduct], seq: int) -> None:
    if batch:
        await _off_loop(index.upsert, batch, meta=_cursor("products", seq))


def _cursor(feed: str, seq: int) -> dict[str, str]:
    return {cursor_key(feed): str(seq)}


async def apply_category_events(index: Index, events: Sequence[Event]) -> None:
    for event in events:
        name = None if event.type == "category.deleted" else event.data.get("name")
        await _off_loop(
            index.set_category_name, event.key, name, meta=_cursor("categories", event.seq)
        )


async def apply_inventory_events(index: Index, events: Sequence[Event]) -> None:
    for event in events:
        if event.type == "stock.changed":
            stock = int(event.data["stock"])
            await _off_loop(index.set_stock, event.key, stock, meta=_cursor("inventory", event.seq))
        else:  # stock.removed: the product.deleted event already took it out of the index
            await _off_loop(index.set_meta, cursor_key("inventory"), str(event.seq))


async def search(index: Index, query: SearchQuery) -> list[dict[str, Any]]:
    return await _off_loop(index.search, query)


async def suggest(index: Index, prefix: str, limit: int) -> list[str]:
    return await _off_loop(index.suggest, prefix, limit)


async def rebuild(index: Index, followers: Sequence[FeedFollower]) -> int:
    """Start over from the first event of every feed; returns the events applied."""
    await _off_loop(index.clear)
    applied = 0
    for follower in followers:
        applied += await follower.catch_up()
    return applied
