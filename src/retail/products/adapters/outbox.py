"""The stock hand-over of every back end: a stock given to products reaches inventory, its
only owner, inside the product's change event, written to the unit of work's outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from retail.kernel.events import BatchEventLog
from retail.products.domain import Product, Written


def created_event(product: Product, initial_stock: int) -> tuple[str, str, dict[str, Any]]:
    data = {**product.as_event_data(), "initial_stock": initial_stock}
    return "product.created", product.id, data


def updated_event(product: Product, stock_set: int | None) -> tuple[str, str, dict[str, Any]]:
    data = product.as_event_data()
    if stock_set is not None:
        data["stock_set"] = stock_set
    return "product.updated", product.id, data


class OutboxStockHandOver:
    """Hands a stock to inventory by putting it in the product's change event; written to
    whatever outbox it is given, in the caller's transaction."""

    def __init__(self, events: BatchEventLog) -> None:
        self._events = events

    async def product_created(self, product: Product, initial_stock: int) -> None:
        await self._events.append(*created_event(product, initial_stock))

    async def product_updated(self, product: Product, stock_set: int | None = None) -> None:
        await self._events.append(*updated_event(product, stock_set))

    async def products_written(self, written: Sequence[Written]) -> None:
        await self._events.append_many(
            [
                created_event(w.product, w.stock or 0)
                if w.created
                else updated_event(w.product, w.stock)
                for w in written
            ]
        )
