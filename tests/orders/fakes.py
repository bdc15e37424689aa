"""In-memory fakes behind the orders service's ports, with the SQL adapter's rules
(conditional writes, the key and order-number guards, a rollback unless committed), and
fake peers with inventory's and products' contracts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from retail.kernel.errors import ServiceUnavailable
from retail.orders.domain import (
    CatalogEntry,
    IdempotencyRecord,
    LineRequest,
    Order,
    OrderQuery,
    OrderStatus,
    Outcome,
    Page,
    Policy,
)
from retail.orders.exceptions import (
    IdempotencyKeyTaken,
    InsufficientStock,
    OrderNumberTaken,
    ReservationReleased,
    UnknownProduct,
)
from retail.orders.ports import OrdersDeps


@dataclass
class State:
    """What the fake database holds; shared by every unit of work over it."""

    orders: dict[str, Order] = field(default_factory=dict)
    keys: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    # Race scripting: how many of the next inserts find their order number taken, and the
    # statuses another process commits just before our next conditional writes.
    number_collisions: int = 0
    moves_elsewhere: list[OrderStatus] = field(default_factory=list)
    # Statements that looked for an order's key (complete, discard_for_order), matching or not.
    key_lookups_by_order: int = 0

    def copy(self) -> State:
        return State(
            dict(self.orders),
            dict(self.keys),
            self.number_collisions,
            self.moves_elsewhere,
            self.key_lookups_by_order,
        )


class FakeOrders:
    def __init__(self, state: State) -> None:
        self._state = state

    async def add(self, order: Order) -> None:
        numbers = {o.order_number for o in self._state.orders.values()}
        if self._state.number_collisions or order.order_number in numbers:
            self._state.number_collisions = max(0, self._state.number_collisions - 1)
            raise OrderNumberTaken()
        self._state.orders[order.id] = order

    async def get(self, order_id: str) -> Order | None:
        return self._state.orders.get(order_id)

    async def page(self, query: OrderQuery, *, offset: int, limit: int) -> Page[Order]:
        found = [o for o in self._state.orders.values() if _matches(o, query)]
        found.sort(key=lambda o: (o.created_at, o.id), reverse=True)
        return Page(found[offset : offset + limit], len(found))

    async def transition(
        self,
        order_id: str,
        expected: OrderStatus,
        new: OrderStatus,
        now: datetime,
        *,
        release_due: bool = False,
        lease_until: datetime | None = None,
    ) -> bool:
        order = self._state.orders.get(order_id)
        if order is not None and self._state.moves_elsewhere:
            order = replace(order, status=self._state.moves_elsewhere.pop(0))
            self._state.orders[order_id] = order
        if order is None or order.status != expected:
            return False
        moved = order.moved_to(new, now, release_due=release_due or order.release_due)
        if lease_until is not None:
            moved = replace(moved, recovery_lease_until=lease_until)
        self._state.orders[order_id] = moved
        return True

    async def replace_lines(self, order: Order) -> bool:
        found = self._state.orders.get(order.id)
        if found is None or found.status != "pending":
            return False
        self._state.orders[order.id] = replace(
            found,
            lines=order.lines,
            skipped=order.skipped,
            reservation_id=order.reservation_id,
            updated_at=order.updated_at,
        )
        return True

    async def claim_pending(self, now: datetime, until: datetime, limit: int) -> list[Order]:
        return self._claim(lambda o: o.status == "pending", now, until, limit)

    async def claim_releases(self, now: datetime, until: datetime, limit: int) -> list[Order]:
        return self._claim(lambda o: o.release_due, now, until, limit)

    async def release_done(self, order_id: str, now: datetime) -> None:
        order = self._state.orders[order_id]
        self._state.orders[order_id] = replace(order, release_due=False)

    def _claim(
        self, due: Callable[[Order], bool], now: datetime, until: datetime, limit: int
    ) -> list[Order]:
        claimed: list[Order] = []
        for order in list(self._state.orders.values()):
            if due(order) and order.recovery_lease_until <= now and len(claimed) < limit:
                leased = replace(order, recovery_lease_until=until)
                self._state.orders[order.id] = leased
                claimed.append(leased)
        return claimed


def _matches(order: Order, query: OrderQuery) -> bool:
    if query.user_id is not None and order.user_id != query.user_id:
        return False
    if query.status is not None:
        return order.status == query.status
    return not (query.hide_failed and order.status == "failed")


class FakeIdempotency:
    def __init__(self, state: State) -> None:
        self._state = state

    async def get(self, user_id: str, key: str) -> IdempotencyRecord | None:
        return self._state.keys.get((user_id, key))

    async def add(self, record: IdempotencyRecord) -> None:
        if (record.user_id, record.key) in self._state.keys:
            raise IdempotencyKeyTaken()
        self._state.keys[(record.user_id, record.key)] = record

    async def complete(self, order_id: str, outcome: Outcome) -> None:
        self._state.key_lookups_by_order += 1
        for where, record in self._state.keys.items():
            if record.order_id == order_id and record.outcome is None:
                self._state.keys[where] = replace(record, outcome=outcome)

    async def discard(self, user_id: str, key: str) -> None:
        self._state.keys.pop((user_id, key), None)

    async def discard_for_order(self, order_id: str) -> None:
        self._state.key_lookups_by_order += 1
        for where in [w for w, r in self._state.keys.items() if r.order_id == order_id]:
            del self._state.keys[where]

    async def purge(self, before: datetime, limit: int) -> int:
        old = [w for w, r in self._state.keys.items() if r.created_at < before][:limit]
        for where in old:
            del self._state.keys[where]
        return len(old)


class FakeUnitOfWork:
    """Rolls back to the state at entry unless committed, like the SQL one. Fake methods
    never suspend, so a transaction is atomic with respect to other tasks, as SQLite's
    BEGIN IMMEDIATE makes it."""

    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()
        self.commits = 0
        self._snapshot: State | None = None

    @property
    def orders(self) -> FakeOrders:
        return FakeOrders(self.state)

    @property
    def idempotency(self) -> FakeIdempotency:
        return FakeIdempotency(self.state)

    async def __aenter__(self) -> Self:
        self._snapshot = self.state.copy()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._snapshot is not None:
            self.state.orders = self._snapshot.orders
            self.state.keys = self._snapshot.keys
        self._snapshot = None

    async def commit(self) -> None:
        self.commits += 1
        self._snapshot = None


class FakeCatalog:
    def __init__(self, *entries: CatalogEntry) -> None:
        self.entries = {e.product_id: e for e in entries}
        self.down = False
        self.lookups = 0

    async def lookup(self, product_ids: Sequence[str]) -> dict[str, CatalogEntry]:
        await asyncio.sleep(0)  # a network hop: other tasks run meanwhile
        self.lookups += 1
        if self.down:
            raise ServiceUnavailable("The products service is unavailable")
        return {pid: self.entries[pid] for pid in product_ids if pid in self.entries}


class FakeInventory:
    """Inventory's reservation contract: all or nothing, idempotent by id, and a release
    of an id never reserved fences it."""

    def __init__(self, **stock: int) -> None:
        self.stock = dict(stock)
        self.reservations: dict[str, tuple[LineRequest, ...]] = {}
        self.released: set[str] = set()
        self.down = False
        # The reservation is made, then the answer is lost (a timeout, a crash).
        self.lose_answers = False
        self.reserve_calls: list[str] = []
        self.release_calls: list[str] = []

    async def reserve(self, reservation_id: str, lines: Sequence[LineRequest]) -> None:
        await asyncio.sleep(0)  # a network hop: other tasks run meanwhile
        self.reserve_calls.append(reservation_id)
        if self.down:
            raise ServiceUnavailable("The inventory service is unavailable")
        if reservation_id in self.released:
            raise ReservationReleased(details={"order_id": reservation_id})
        if reservation_id not in self.reservations:
            self._take(reservation_id, tuple(lines))
        if self.lose_answers:
            raise ServiceUnavailable("The inventory service is unavailable")

    def _take(self, reservation_id: str, lines: tuple[LineRequest, ...]) -> None:
        for line in sorted(lines, key=lambda line: line.product_id):
            if line.product_id not in self.stock:
                raise UnknownProduct(details={"product_id": line.product_id})
            if self.stock[line.product_id] < line.quantity:
                details = {
                    "product_id": line.product_id,
                    "requested": line.quantity,
                    "available": self.stock[line.product_id],
                }
                raise InsufficientStock(details=details)
        for line in lines:
            self.stock[line.product_id] -= line.quantity
        self.reservations[reservation_id] = lines

    async def release(self, reservation_id: str) -> None:
        await asyncio.sleep(0)
        self.release_calls.append(reservation_id)
        if self.down:
            raise ServiceUnavailable("The inventory service is unavailable")
        if reservation_id in self.released:
            return
        self.released.add(reservation_id)
        for line in self.reservations.get(reservation_id, ()):
            self.stock[line.product_id] += line.quantity

    def held(self) -> dict[str, int]:
        """Units held by reservations not released, per product."""
        held: dict[str, int] = {}
        for rid, lines in self.reservations.items():
            if rid not in self.released:
                for line in lines:
                    held[line.product_id] = held.get(line.product_id, 0) + line.quantity
        return held


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)  # every reading is later than the last
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    """One fake database and the two fake peers; `deps()` is what the use cases take."""

    state: State
    catalog: FakeCatalog
    inventory: FakeInventory
    clock: Clock
    policy: Policy = field(default_factory=lambda: Policy(idempotency_wait_seconds=1.0))

    def units(self, *, readonly: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.state)

    def deps(self) -> OrdersDeps:
        return OrdersDeps(self.units, self.catalog, self.inventory, self.policy, self.clock)
