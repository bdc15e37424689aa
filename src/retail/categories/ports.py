"""The repository and unit of work that the use cases need; adapters implement them."""

from __future__ import annotations

from typing import Protocol

from retail.categories.domain import Category
from retail.kernel.events import EventLog
from retail.kernel.storage import Transaction


class CategoryRepository(Protocol):
    async def add(self, category: Category) -> None:
        """Store a new category; raises `CategoryNameTaken` if the name is used."""

    async def get(self, category_id: str) -> Category | None: ...

    async def list_all(self) -> list[Category]:
        """Every category, sorted by name (case-insensitively)."""

    async def update(self, category: Category) -> None:
        """Store changed fields; raises `CategoryNameTaken` if the new name is used."""

    async def delete(self, category_id: str) -> bool: ...


class UnitOfWork(Transaction, Protocol):
    # Read-only properties, so an adapter may narrow them to its own repository types.
    @property
    def categories(self) -> CategoryRepository: ...

    @property
    def events(self) -> EventLog: ...
