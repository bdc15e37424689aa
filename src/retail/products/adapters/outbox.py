"""The stock hand-over of every back end: a stock given to products reaches inventory, its
only owner, inside the product's change event, written to the unit of work's outbox."""

from __future__ import annotations

from retail.kernel.events import EventLog
from retail.products.domain import Product


class OutboxStockHandOver:
    """Hands a stock to inventory by putting it in the product's change event; written to
    whatever outbox it is given, in the caller's transaction."""

    def __init__(self, events: EventLog) -> None:
        self._events = events

    async def product_created(self, product: Product, initial_stock: int) -> None:
        data = {**product.as_event_data(), "initial_stock": initial_stock}
        await self._events.append("product.created", product.id, data)

    async def product_updated(self, product: Product, stock_set: int | None = None) -> None:
        data = product.as_event_data()
        if stock_set is not None:
            data["stock_set"] = stock_set
        await self._events.append("product.updated", product.id, data)
