"""In-memory fakes behind products' ports, with the same rules as the adapters: a unit of
work rolls back unless the use case commits, cursors advance only from where they were."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.events import InMemoryEventLog
from retail.products.domain import Product, ProductPage, ProductQuery, SortKey


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
        self._state.products[product.id] = replace(product)

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
    def __init__(self, state: State) -> None:
        self._state = state

    async def product_created(self, product: Product, initial_stock: int) -> None:
        data = {**product.as_event_data(), "initial_stock": initial_stock}
        await self._state.events.append("product.created", product.id, data)

    async def product_updated(self, product: Product, stock_set: int | None = None) -> None:
        data = product.as_event_data()
        if stock_set is not None:
            data["stock_set"] = stock_set
        await self._state.events.append("product.updated", product.id, data)


class FakeUnitOfWork:
    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()
        self._snapshot: State | None = None
        self.products = FakeProducts(self.state)
        self.deleted_categories = FakeDeletedCategories(self.state)
        self.cursors = FakeCursors(self.state)
        self.stock = FakeStockHandOver(self.state)
        self.events = self.state.events

    async def __aenter__(self) -> Self:
        self._snapshot = copy.deepcopy(self.state)
        return self

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
    """The categories service: the ids it knows, or down."""

    def __init__(self, *known: str) -> None:
        self.known = set(known)
        self.down = False
        self.asked: list[str] = []

    async def exists(self, category_id: str) -> bool:
        self.asked.append(category_id)
        if self.down:
            raise ServiceUnavailable("The categories service is unavailable")
        return category_id in self.known


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
