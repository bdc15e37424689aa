"""Use cases of the feeds products follows. Each batch is applied with its cursor in one
transaction, and what another process already applied is skipped, so every event counts
once even with several processes following the same feed (the kernel's `apply_batch`).

- inventory: `stock.changed` sets the stock products shows (a read model; absolute values,
  so applying one twice changes nothing).
- categories: `category.deleted` clears `category_id` on the products in that category,
  each with a `product.updated` event. Deleting a category that products use is allowed;
  the products stay, without a category.
"""

from __future__ import annotations

from collections.abc import Sequence

from retail.kernel.clock import utc_now
from retail.kernel.following import Batch, apply_batch, read_cursor
from retail.products.domain import CategoryDeleted, StockLevel
from retail.products.ports import UnitOfWork

INVENTORY_FEED = "inventory"
CATEGORIES_FEED = "categories"


async def feed_cursor(uow: UnitOfWork, feed: str) -> int:
    return await read_cursor(uow, feed)


async def apply_stock_levels(uow: UnitOfWork, batch: Batch[StockLevel]) -> int:
    """Apply (seq, level) pairs of inventory's feed; None stands for an event we ignore.
    Returns how many events of the batch were new."""
    return await apply_batch(uow, INVENTORY_FEED, batch, set_stock)


async def apply_category_changes(uow: UnitOfWork, batch: Batch[CategoryDeleted]) -> int:
    return await apply_batch(uow, CATEGORIES_FEED, batch, clear_category)


async def set_stock(uow: UnitOfWork, level: StockLevel) -> None:
    # The unit writes the stock and the feed's cursor, nothing else: every other product's
    # page stays in the read cache (each order moves stock, several times a second).
    uow.changes_only([level.product_id])
    # False means the product is gone since: there is nothing left to show the stock on.
    await uow.products.set_stock(level.product_id, level.stock)


async def set_stocks(uow: UnitOfWork, levels: Sequence[StockLevel]) -> None:
    """A page of inventory's feed at once (an import's stock is thousands of events): one
    statement; a product gone since is simply not there to update."""
    uow.changes_only(level.product_id for level in levels)
    await uow.products.set_stocks(levels)


async def clear_category(uow: UnitOfWork, deleted: CategoryDeleted) -> None:
    await uow.deleted_categories.add(deleted.category_id)
    for product in await uow.products.clear_category(deleted.category_id, utc_now()):
        await uow.stock.product_updated(product)
