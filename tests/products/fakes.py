"""In-memory fakes behind products' ports, with the same rules as the adapters: a unit of
work rolls back unless the use case commits, cursors advance only from where they were."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.events import InMemoryEventLog
from retail.products.adapters.outbox import OutboxStockHandOver
from retail.products.domain import (
    CategoryRef,
    Product,
    ProductPage,
    ProductQuery,
    SortKey,
    StockLevel,
    Written,
)
from retail.products.exceptions import SkuTaken


@dataclass
class State:
    """What the fake database holds; shared by every unit of work over it."""

    products: dict[str, Product] = field(default_factory=dict)
    deleted_categories: set[str] = field(default_factory=set)
    cursors: dict[str, int] = field(default_factory=dict)
    events: InMemoryEventLog = field(default_factory=InMemoryEventLog)
    commits: int = 0
    fail_commit: bool = False
    # Writes of "another process", which survive our rollback.
    committed_elsewhere: list[Callable[[State], None]] = field(default_factory=list)

    def commit_elsewhere(self, write: Callable[[State], None]) -> None:
        write(self)
        self.committed_elsewhere.append(write)


Key = Callable[[Product], tuple[Any, ...]]
_KEYS: dict[SortKey, Key] = {
    SortKey.CREATED_AT: lambda p: (p.created_at, p.id),
    SortKey.PRICE: lambda p: (p.price_cents, p.id),
    SortKey.TITLE: lambda p: (p.title.casefold(), p.id),
}


class FakeProducts:
    def __init__(self, state: State) -> None:
        self._state = state

    async def add(self, product: Product) -> None:
        self._check_sku(product)
        self._state.products[product.id] = replace(product)

    def _check_sku(self, product: Product) -> None:
        taken = {p.sku for p in self._state.products.values() if p.id != product.id}
        if product.sku is not None and product.sku in taken:
            raise SkuTaken()

    async def add_many(self, products: Sequence[Product]) -> None:
        for product in products:
            await self.add(product)

    async def update_many(self, products: Sequence[Product]) -> None:
        for product in products:
            await self.update(product)

    async def by_skus(self, skus: Sequence[str]) -> list[Product]:
        return [replace(p) for p in self._state.products.values() if p.sku in set(skus)]

    async def after_id(self, after: str | None, limit: int) -> list[Product]:
        ordered = sorted(self._state.products.values(), key=lambda p: p.id)
        return [replace(p) for p in ordered if after is None or p.id > after][:limit]

    async def set_stocks(self, levels: Sequence[StockLevel]) -> None:
        for level in levels:
            await self.set_stock(level.product_id, level.stock)

    async def get(self, product_id: str) -> Product | None:
        found = self._state.products.get(product_id)
        return replace(found) if found else None

    async def get_many(self, product_ids: Sequence[str]) -> list[Product]:
        return [replace(p) for i in product_ids if (p := self._state.products.get(i))]

    async def page(self, query: ProductQuery) -> ProductPage:
        found = [p for p in self._state.products.values() if _matches(p, query)]
        found.sort(key=_KEYS[query.sort.key], reverse=query.sort.descending)
        window = found[query.offset : query.offset + query.limit]
        return ProductPage([replace(p) for p in window], len(found))

    async def update(self, product: Product) -> None:
        self._check_sku(product)
        self._state.products[product.id] = replace(product)

    async def delete(self, product_id: str) -> bool:
        return self._state.products.pop(product_id, None) is not None

    async def set_stock(self, product_id: str, stock: int) -> bool:
        found = self._state.products.get(product_id)
        if found is None:
            return False
        found.stock = stock
        return True

    async def clear_category(self, category_id: str, now: datetime) -> list[Product]:
        changed = []
        for product in sorted(self._state.products.values(), key=lambda p: p.id):
            if product.category_id == category_id:
                product.category_id, product.updated_at = None, now
                changed.append(replace(product))
        return changed


def _matches(product: Product, query: ProductQuery) -> bool:
    return (
        (query.include_inactive or product.is_active)
        and (query.sku is None or product.sku == query.sku)
        and (query.brand is None or product.brand == query.brand)
        and (query.category_id is None or product.category_id == query.category_id)
        and (query.min_price_cents is None or product.price_cents >= query.min_price_cents)
        and (query.max_price_cents is None or product.price_cents <= query.max_price_cents)
    )


class FakeDeletedCategories:
    def __init__(self, state: State) -> None:
        self._state = state

    async def add(self, category_id: str) -> None:
        self._state.deleted_categories.add(category_id)

    async def contains(self, category_id: str) -> bool:
        return category_id in self._state.deleted_categories


class FakeCursors:
    def __init__(self, state: State) -> None:
        self._state = state

    async def get(self, feed: str) -> int:
        return self._state.cursors.get(feed, 0)

    async def advance_from(self, feed: str, expected: int, seq: int) -> bool:
        if self._state.cursors.get(feed, 0) != expected:
            return False
        self._state.cursors[feed] = seq
        return True


class FakeStockHandOver:
    """The outbox hand-over itself, over the fake's log (whatever its object is now)."""

    def __init__(self, state: State) -> None:
        self._state = state

    def _outbox(self) -> OutboxStockHandOver:
        return OutboxStockHandOver(self._state.events)

    async def product_created(self, product: Product, initial_stock: int) -> None:
        await self._outbox().product_created(product, initial_stock)

    async def product_updated(self, product: Product, stock_set: int | None = None) -> None:
        await self._outbox().product_updated(product, stock_set)

    async def products_written(self, written: Sequence[Written]) -> None:
        await self._outbox().products_written(written)


class FakeUnitOfWork:
    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()
        self._snapshot: State | None = None
        self.products = FakeProducts(self.state)
        self.deleted_categories = FakeDeletedCategories(self.state)
        self.cursors = FakeCursors(self.state)
        self.stock = FakeStockHandOver(self.state)
        self.events = self.state.events
        self.changes_named: set[str] | None = None  # what `changes_only` promised, if anything

    async def __aenter__(self) -> Self:
        self._snapshot = copy.deepcopy(self.state)
        self.changes_named = None
        return self

    def changes_only(self, keys: Iterable[str]) -> None:
        self.changes_named = set(keys) | (self.changes_named or set())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._snapshot is not None:  # not committed: roll back
            elsewhere = self.state.committed_elsewhere
            self.state.__dict__.update(self._snapshot.__dict__)
            self.state.committed_elsewhere = elsewhere
            # Keep the one log object the unit of work and its hand-over both write to.
            self.events.events[:] = self._snapshot.events.events
            self.state.events = self.events
            for write in elsewhere:
                write(self.state)
        self._snapshot = None

    async def commit(self) -> None:
        if self.state.fail_commit:
            raise RuntimeError("the database went away")
        self.state.commits += 1
        self._snapshot = None


class FakeCategories:
    """The categories service: the ids it knows (named after themselves unless `named`), or
    down. Records every call, and the tokens categories were created with."""

    def __init__(self, *known: str, named: dict[str, str] | None = None) -> None:
        self.known = set(known) | set(named or {})
        self.names = {i: i for i in known} | (named or {})
        self.down = False
        self.asked: list[str] = []
        self.created: list[tuple[str, str]] = []

    def _check_up(self) -> None:
        if self.down:
            raise ServiceUnavailable("The categories service is unavailable")

    async def exists(self, category_id: str) -> bool:
        self.asked.append(category_id)
        self._check_up()
        return category_id in self.known

    async def all(self) -> list[CategoryRef]:
        self.asked.append("*")
        self._check_up()
        return [CategoryRef(i, self.names[i]) for i in sorted(self.known)]

    async def create(self, name: str, *, bearer: str) -> CategoryRef:
        self._check_up()
        made = CategoryRef(f"cat-{len(self.known) + 1}", name)
        self.known.add(made.id)
        self.names[made.id] = name
        self.created.append((name, bearer))
        return made


class FakeImageStore:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.fail_deletes = False

    async def save(self, key: str, data: bytes, content_type: str) -> str:
        self.objects[key] = (data, content_type)
        return f"https://img.test/{key}"

    async def delete(self, key: str) -> None:
        if self.fail_deletes:
            raise OSError("storage unavailable")
        self.objects.pop(key, None)
