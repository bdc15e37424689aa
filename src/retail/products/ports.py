"""What the use cases need from the outside; adapters (and the tests' fakes) implement it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from retail.kernel.events import EventLog, FeedCursors
from retail.kernel.storage import Transaction
from retail.products.domain import Product, ProductPage, ProductQuery


class ProductRepository(Protocol):
    async def add(self, product: Product) -> None: ...

    async def get(self, product_id: str) -> Product | None: ...

    async def get_many(self, product_ids: Sequence[str]) -> list[Product]:
        """The products among `product_ids` that exist, in no particular order."""

    async def page(self, query: ProductQuery) -> ProductPage:
        """Filtered and sorted; ties broken by id so that pages are stable."""

    async def update(self, product: Product) -> None: ...

    async def delete(self, product_id: str) -> bool: ...

    async def set_stock(self, product_id: str, stock: int) -> bool:
        """Copy inventory's stock into the read model; False if there is no such product."""

    async def clear_category(self, category_id: str, now: datetime) -> list[Product]:
        """Set `category_id` to null on every product in the category; the changed products."""


class DeletedCategories(Protocol):
    """Categories the categories feed said were deleted: a product may not join one, even
    if the categories service said it existed a moment before (the check is not atomic)."""

    async def add(self, category_id: str) -> None: ...

    async def contains(self, category_id: str) -> bool: ...


class StockHandOver(Protocol):
    """How a stock given to products reaches inventory, its only owner: inside the
    product's change event (`initial_stock`, `stock_set`), never as a write of its own."""

    async def product_created(self, product: Product, initial_stock: int) -> None: ...

    async def product_updated(self, product: Product, stock_set: int | None = None) -> None: ...


class CategoryDirectory(Protocol):
    """The categories service, as far as products needs it."""

    async def exists(self, category_id: str) -> bool:
        """Whether the category exists; raises `ServiceUnavailable` if nobody can tell."""


class ImageStore(Protocol):
    async def save(self, key: str, data: bytes, content_type: str) -> str:
        """Store the bytes under `key` (overwriting) and return the URL they are served at."""

    async def delete(self, key: str) -> None:
        """Remove the image; no error if it is already gone."""


class UnitOfWork(Transaction, Protocol):
    # Read-only properties, so an adapter may narrow them to its own repository types.
    @property
    def products(self) -> ProductRepository: ...

    @property
    def deleted_categories(self) -> DeletedCategories: ...

    @property
    def cursors(self) -> FeedCursors: ...

    @property
    def stock(self) -> StockHandOver: ...

    @property
    def events(self) -> EventLog: ...
