"""What the use cases need from the index: `retail.search.engine.ProductIndex` provides it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from retail.search.engine import IndexedProduct, SearchQuery


class Index(Protocol):
    def upsert(
        self, products: Sequence[IndexedProduct], meta: dict[str, str] | None = None
    ) -> None: ...

    def delete(self, product_id: str, meta: dict[str, str] | None = None) -> None: ...

    def set_stock(
        self, product_id: str, stock: int, meta: dict[str, str] | None = None
    ) -> None: ...

    def set_category_name(
        self, category_id: str, name: str | None, meta: dict[str, str] | None = None
    ) -> None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def get_meta(self, key: str) -> str | None: ...

    def search(self, query: SearchQuery) -> list[dict[str, Any]]: ...

    def suggest(self, prefix: str, limit: int = 8) -> list[str]: ...

    def clear(self) -> None: ...

    def count(self) -> int: ...
