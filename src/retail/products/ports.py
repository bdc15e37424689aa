"""What the use cases need from the outside; adapters (and the tests' fakes) implement it.
`ProductsDeps` is the bundle every use case takes first."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from retail.kernel.clock import utc_now
from retail.kernel.events import EventLog, FeedCursors
from retail.kernel.storage import Transaction, UnitOfWorkFactory
from retail.products.domain import (
    CategoryRef,
    Product,
    ProductPage,
    ProductQuery,
    StockLevel,
    Written,
)


class ProductRepository(Protocol):
    async def add(self, product: Product) -> None: ...

    async def get(self, product_id: str) -> Product | None: ...

    async def get_many(self, product_ids: Sequence[str]) -> list[Product]:
        """The products among `product_ids` that exist, in no particular order."""

    async def page(self, query: ProductQuery) -> ProductPage:
        """Filtered and sorted; ties broken by id so that pages are stable."""

    async def update(self, product: Product) -> None:
        """Raises `SkuTaken` if another product has its sku."""

    async def by_skus(self, skus: Sequence[str]) -> list[Product]:
        """The products whose sku is among `skus`, in no particular order."""

    async def add_many(self, products: Sequence[Product]) -> None:
        """Insert them all (one statement where the back end allows); `SkuTaken` if a sku
        is already stored."""

    async def update_many(self, products: Sequence[Product]) -> None: ...

    async def after_id(self, after: str | None, limit: int) -> list[Product]:
        """Up to `limit` products, every one, ordered by id, from the first id after `after`:
        how the export walks the whole catalogue a page at a time."""

    async def set_stocks(self, levels: Sequence[StockLevel]) -> None:
        """`set_stock` for each level in order (a page of inventory's feed)."""

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

    async def products_written(self, written: Sequence[Written]) -> None:
        """The events of a bulk upsert, in this order, written together."""


class CategoryDirectory(Protocol):
    """The categories service, as far as products needs it."""

    async def exists(self, category_id: str) -> bool:
        """Whether the category exists; raises `ServiceUnavailable` if nobody can tell."""

    async def all(self) -> list[CategoryRef]:
        """Every category (one call, however many items need one)."""

    async def create(self, name: str, *, bearer: str) -> CategoryRef:
        """Create the category as the admin whose token `bearer` is (categories decides
        who may); the existing one if another caller created that name meanwhile."""


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

    def changes_only(self, keys: Iterable[str]) -> None:
        """A promise for the whole unit: what it writes changes only these products' own
        answers (and the lists), so the read cache keeps every other product's."""


Units = UnitOfWorkFactory[UnitOfWork]


@dataclass(frozen=True, slots=True)
class ProductsDeps:
    """What the use cases work with: the first argument of every one of them. Built once, in
    the lifespan; a use case opens a unit of work per transaction from `units`."""

    units: Units
    categories: CategoryDirectory
    images: ImageStore
    clock: Callable[[], datetime] = utc_now
