"""In-memory fakes behind inventory's ports, with the same rules as the SQL adapter:
conditional writes, a rollback unless the use case commits, the order_id key guard."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from retail.inventory.domain import Movement, Page, Reservation, StockLevel
from retail.inventory.exceptions import ReservationExists
from retail.inventory.ports import InventoryDeps
from retail.kernel.events import InMemoryEventLog
from tests.support import RollbackUnitOfWork


@dataclass
class State:
    """What the fake database holds; shared by every unit of work over it."""

    levels: dict[str, StockLevel] = field(default_factory=dict)
    movements: list[Movement] = field(default_factory=list)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    events: InMemoryEventLog = field(default_factory=InMemoryEventLog)
    # Race scripting: what "another process" commits while our transaction runs.
    duplicate_on_add: Reservation | None = None
    stock_moves_before_cas: list[int] = field(default_factory=list)
    cursor_moves_before_advance: list[int] = field(default_factory=list)
    # Writes of that other process, which survive our rollback.
    committed_elsewhere: list[Callable[[State], None]] = field(default_factory=list)

    def commit_elsewhere(self, write: Callable[[State], None]) -> None:
        write(self)
        self.committed_elsewhere.append(write)


DATA = ("levels", "movements", "reservations", "cursors", "events")


class FakeStock:
    def __init__(self, state: State) -> None:
        self._state = state

    async def add(self, level: StockLevel) -> bool:
        if level.product_id in self._state.levels:
            return False
        self._state.levels[level.product_id] = replace(level)
        return True

    async def add_many(self, levels: Sequence[StockLevel]) -> list[StockLevel]:
        return [level for level in levels if await self.add(level)]

    async def get(self, product_id: str) -> StockLevel | None:
        level = self._state.levels.get(product_id)
        return replace(level) if level else None

    async def page(self, *, low_stock: int | None, offset: int, limit: int) -> Page[StockLevel]:
        levels = sorted(self._state.levels.values(), key=lambda v: (v.title, v.product_id))
        if low_stock is not None:
            levels = [v for v in levels if v.is_low(low_stock)]
        return Page([replace(v) for v in levels[offset : offset + limit]], len(levels))

    async def describe(
        self, product_id: str, title: str, category_id: str | None, now: datetime
    ) -> bool:
        level = self._state.levels.get(product_id)
        if level is None:
            return False
        level.title, level.category_id, level.updated_at = title, category_id, now
        return True

    async def compare_and_set(
        self, product_id: str, expected: int, stock: int, now: datetime
    ) -> bool:
        level = self._state.levels.get(product_id)
        if level is not None and self._state.stock_moves_before_cas:
            level.stock += self._state.stock_moves_before_cas.pop(0)  # a reservation slipped in
        if level is None or level.stock != expected:
            return False
        level.stock, level.updated_at = stock, now
        return True

    async def set_threshold(self, product_id: str, threshold: int | None) -> None:
        self._state.levels[product_id].low_stock_threshold = threshold

    async def decrement(self, product_id: str, quantity: int, now: datetime) -> int | None:
        level = self._state.levels.get(product_id)
        if level is None or level.stock < quantity:
            return None
        level.stock, level.updated_at = level.stock - quantity, now
        return level.stock

    async def increment(self, product_id: str, quantity: int, now: datetime) -> int | None:
        level = self._state.levels.get(product_id)
        if level is None:
            return None
        level.stock, level.updated_at = level.stock + quantity, now
        return level.stock

    async def remove(self, product_id: str) -> bool:
        return self._state.levels.pop(product_id, None) is not None


class FakeMovements:
    def __init__(self, state: State) -> None:
        self._state = state

    async def add(self, movement: Movement) -> None:
        self._state.movements.append(replace(movement, id=len(self._state.movements) + 1))

    async def add_many(self, movements: Sequence[Movement]) -> None:
        for movement in movements:
            await self.add(movement)

    async def page(self, product_id: str, *, offset: int, limit: int) -> Page[Movement]:
        mine = [m for m in reversed(self._state.movements) if m.product_id == product_id]
        return Page(mine[offset : offset + limit], len(mine))


class FakeReservations:
    def __init__(self, state: State) -> None:
        self._state = state

    async def add(self, reservation: Reservation) -> None:
        racer = self._state.duplicate_on_add
        if racer is not None:  # another process inserted this order_id and committed first
            self._state.duplicate_on_add = None
            self._state.commit_elsewhere(lambda s: s.reservations.update({racer.order_id: racer}))
            raise ReservationExists()
        if reservation.order_id in self._state.reservations:
            raise ReservationExists()
        self._state.reservations[reservation.order_id] = reservation

    async def get(self, order_id: str) -> Reservation | None:
        return self._state.reservations.get(order_id)

    async def mark_released(self, order_id: str, now: datetime) -> bool:
        found = self._state.reservations.get(order_id)
        if found is None or found.status != "reserved":
            return False
        self._state.reservations[order_id] = replace(found, status="released")
        return True


class FakeCursors:
    def __init__(self, state: State) -> None:
        self._state = state

    async def get(self, feed: str) -> int:
        return self._state.cursors.get(feed, 0)

    async def advance_from(self, feed: str, expected: int, seq: int) -> bool:
        if self._state.cursor_moves_before_advance:  # another process applied a batch
            moved = self._state.cursor_moves_before_advance.pop(0)
            self._state.commit_elsewhere(lambda s: s.cursors.update({feed: moved}))
        if self._state.cursors.get(feed, 0) != expected:
            return False
        self._state.cursors[feed] = seq
        return True


class FakeUnitOfWork(RollbackUnitOfWork[State]):
    data = DATA

    def __init__(self, state: State | None = None) -> None:
        super().__init__(state or State())

    @property
    def stock(self) -> FakeStock:
        return FakeStock(self.state)

    @property
    def movements(self) -> FakeMovements:
        return FakeMovements(self.state)

    @property
    def reservations(self) -> FakeReservations:
        return FakeReservations(self.state)

    @property
    def cursors(self) -> FakeCursors:
        return FakeCursors(self.state)

    @property
    def events(self) -> InMemoryEventLog:
        return self.state.events


def deps_over(uow: FakeUnitOfWork) -> InventoryDeps:
    """The use cases' bundle whose every unit of work is `uow` (one fake database)."""

    def units(*, readonly: bool = False) -> FakeUnitOfWork:
        return uow

    return InventoryDeps(units=units)
