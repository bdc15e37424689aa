"""The repositories and unit of work that the use cases need (adapters implement them), and
`InventoryDeps`, the bundle every use case takes first.

Every write that could oversell is a conditional write decided by the database
(`rows affected`), never a value read earlier and written back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from retail.inventory.domain import Movement, Page, Reservation, StockLevel
from retail.kernel.clock import utc_now
from retail.kernel.events import BatchEventLog, FeedCursors
from retail.kernel.storage import Transaction, UnitOfWorkFactory


class StockRepository(Protocol):
    async def add(self, level: StockLevel) -> bool:
        """Store a new level; False (and no change) if the product already has one."""

    async def add_many(self, levels: Sequence[StockLevel]) -> list[StockLevel]:
        """`add` for each (the first of a product only); the levels that were new."""

    async def get(self, product_id: str) -> StockLevel | None: ...

    async def page(self, *, low_stock: int | None, offset: int, limit: int) -> Page[StockLevel]:
        """Levels by title. With `low_stock`, only those at or below their own threshold,
        or `low_stock` where they have none."""

    async def describe(
        self, product_id: str, title: str, category_id: str | None, now: datetime
    ) -> bool:
        """Copy the product's title and category; False if there is no level."""

    async def compare_and_set(
        self, product_id: str, expected: int, stock: int, now: datetime
    ) -> bool:
        """Set the stock only if it is still `expected`."""

    async def set_threshold(self, product_id: str, threshold: int | None) -> None: ...

    async def decrement(self, product_id: str, quantity: int, now: datetime) -> int | None:
        """Take `quantity` only if that much is there; the new stock, or None if not taken."""

    async def increment(self, product_id: str, quantity: int, now: datetime) -> int | None:
        """Give `quantity` back; the new stock, or None if the level no longer exists."""

    async def remove(self, product_id: str) -> bool: ...


class MovementRepository(Protocol):
    async def add(self, movement: Movement) -> None: ...

    async def add_many(self, movements: Sequence[Movement]) -> None: ...

    async def page(self, product_id: str, *, offset: int, limit: int) -> Page[Movement]:
        """A product's movements, newest first."""


class ReservationRepository(Protocol):
    async def add(self, reservation: Reservation) -> None:
        """Store it with its lines; raises `ReservationExists` if the order_id is taken.
        That primary key is what makes concurrent duplicates reserve once."""

    async def get(self, order_id: str) -> Reservation | None: ...

    async def mark_released(self, order_id: str, now: datetime) -> bool:
        """Flip reserved -> released; False if it was not reserved (the release lost)."""


class UnitOfWork(Transaction, Protocol):
    # Read-only properties, so an adapter may narrow them to its own repository types.
    @property
    def stock(self) -> StockRepository: ...

    @property
    def movements(self) -> MovementRepository: ...

    @property
    def reservations(self) -> ReservationRepository: ...

    @property
    def cursors(self) -> FeedCursors: ...

    @property
    def events(self) -> BatchEventLog: ...


Units = UnitOfWorkFactory[UnitOfWork]


@dataclass(frozen=True, slots=True)
class InventoryDeps:
    """What the use cases work with: the first argument of every one of them. Built once, in
    the lifespan; a use case opens a unit of work per transaction from `units`."""

    units: Units
    clock: Callable[[], datetime] = utc_now
