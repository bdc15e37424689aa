"""Use cases of the feeds products follows. Each batch is applied with its cursor in one
transaction, and what another process already applied is skipped, so every event counts
once even with several processes following the same feed.

- inventory: `stock.changed` sets the stock products shows (a read model; absolute values,
  so applying one twice changes nothing).
- categories: `category.deleted` clears `category_id` on the products in that category,
  each with a `product.updated` event. Deleting a category that products use is allowed;
  the products stay, without a category.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from retail.kernel.clock import utc_now
from retail.kernel.errors import ServiceUnavailable
from retail.products.domain import CategoryDeleted, StockLevel
from retail.products.ports import UnitOfWork

INVENTORY_FEED = "inventory"
CATEGORIES_FEED = "categories"
# Losing the cursor race repeatedly only happens on back ends that do not serialise writers.
MAX_ATTEMPTS = 5

C = TypeVar("C")
Batch = Sequence[tuple[int, C | None]]


async def feed_cursor(uow: UnitOfWork, feed: str) -> int:
    async with uow:
        return await uow.cursors.get(feed)


async def apply_stock_levels(uow: UnitOfWork, batch: Batch[StockLevel]) -> int:
    """Apply (seq, level) pairs of inventory's feed; None stands for an event we ignore."""
    return await _apply(uow, INVENTORY_FEED, batch, _set_stock)


async def apply_category_changes(uow: UnitOfWork, batch: Batch[CategoryDeleted]) -> int:
    return await _apply(uow, CATEGORIES_FEED, batch, _clear_category)


async def _set_stock(uow: UnitOfWork, level: StockLevel) -> None:
    # False means the product is gone since: there is nothing left to show the stock on.
    await uow.products.set_stock(level.product_id, level.stock)


async def _clear_category(uow: UnitOfWork, deleted: CategoryDeleted) -> None:
    await uow.deleted_categories.add(deleted.category_id)
    for product in await uow.products.clear_category(deleted.category_id, utc_now()):
        await uow.stock.product_updated(product)


async def _apply(
    uow: UnitOfWork,
    feed: str,
    batch: Batch[C],
    apply_one: Callable[[UnitOfWork, C], Awaitable[None]],
) -> int:
    """How many events of the batch were new."""
    for _ in range(MAX_ATTEMPTS):
        applied = await _apply_once(uow, feed, batch, apply_one)
        if applied is not None:
            return applied
    raise ServiceUnavailable(f"Another process keeps applying the {feed} feed")


async def _apply_once(
    uow: UnitOfWork,
    feed: str,
    batch: Batch[C],
    apply_one: Callable[[UnitOfWork, C], Awaitable[None]],
) -> int | None:
    async with uow:
        cursor = await uow.cursors.get(feed)
        fresh = [(seq, change) for seq, change in batch if seq > cursor]
        if not fresh:
            return 0
        if not await uow.cursors.advance_from(feed, cursor, fresh[-1][0]):
            return None  # another process moved the cursor meanwhile: read it again
        for _, change in fresh:
            if change is not None:
                await apply_one(uow, change)
        await uow.commit()
    return len(fresh)
