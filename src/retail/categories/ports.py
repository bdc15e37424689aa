"""The repository and unit of work that the use cases need (adapters implement them), and
`CategoriesDeps`, the bundle every use case takes first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from retail.categories.domain import Category
from retail.kernel.clock import utc_now
from retail.kernel.events import EventLog
from retail.kernel.storage import Transaction, UnitOfWorkFactory


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


Units = UnitOfWorkFactory[UnitOfWork]


@dataclass(frozen=True, slots=True)
class CategoriesDeps:
    """What the use cases work with: the first argument of every one of them. Built once, in
    the lifespan; a use case opens a unit of work per transaction from `units`."""

    units: Units
    clock: Callable[[], datetime] = utc_now
