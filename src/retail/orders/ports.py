"""What the use cases need: repositories and the unit of work (adapters implement them), the
two peers (clients.py implements them over HTTP, tests with fakes), and `OrdersDeps`, the
bundle every use case takes first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from retail.kernel.clock import utc_now
from retail.kernel.storage import Transaction, UnitOfWorkFactory
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


class OrderRepository(Protocol):
    async def add(self, order: Order) -> None:
        """Store a new order with its lines; raises `OrderNumberTaken` on a duplicate number."""

    async def get(self, order_id: str) -> Order | None: ...

    async def page(self, query: OrderQuery, *, offset: int, limit: int) -> Page[Order]:
        """Newest first."""

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
        """Move the order from `expected` to `new` only if it is still in `expected`
        (a conditional write: of two racing writers exactly one wins). False if it was not."""

    async def replace_lines(self, order: Order) -> bool:
        """Store new lines, skipped items and reservation id of an order still `pending`."""

    async def claim_pending(self, now: datetime, until: datetime, limit: int) -> list[Order]:
        """Pending orders whose lease ran out, leased to the caller until `until`. A
        conditional write per order, so two processes never claim the same one."""

    async def claim_releases(self, now: datetime, until: datetime, limit: int) -> list[Order]:
        """Like `claim_pending`, for orders whose stock is still to be released."""

    async def release_done(self, order_id: str, now: datetime) -> None: ...


class IdempotencyRepository(Protocol):
    async def get(self, user_id: str, key: str) -> IdempotencyRecord | None: ...

    async def add(self, record: IdempotencyRecord) -> None:
        """Raises `IdempotencyKeyTaken` if (user_id, key) exists."""

    async def complete(self, order_id: str, outcome: Outcome) -> None:
        """Store the answer for the record of `order_id`, unless one is stored already."""

    async def discard(self, user_id: str, key: str) -> None: ...

    async def discard_for_order(self, order_id: str) -> None:
        """Forget the key of an order that failed for a transient reason, so that a retry
        with the same key tries again."""

    async def purge(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` records created before `before`; how many went."""


class UnitOfWork(Transaction, Protocol):
    # Read-only properties, so an adapter may narrow them to its own repository types.
    @property
    def orders(self) -> OrderRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...


class ProductCatalog(Protocol):
    async def lookup(self, product_ids: Sequence[str]) -> dict[str, CatalogEntry]:
        """The products that exist among `product_ids`; raises `ServiceUnavailable`."""


class StockReservations(Protocol):
    async def reserve(self, reservation_id: str, lines: Sequence[LineRequest]) -> None:
        """All lines or none, idempotent by `reservation_id`. Raises `InsufficientStock`,
        `UnknownProduct` or `ReservationReleased` (refusals) or `ServiceUnavailable`."""

    async def release(self, reservation_id: str) -> None:
        """Give the stock back; idempotent, and fences a reservation never made."""


Units = UnitOfWorkFactory[UnitOfWork]


@dataclass(frozen=True, slots=True)
class OrdersDeps:
    """What orders' use cases work with: the first argument of every one of them. Built
    once, in the lifespan, and shared by every request and recovery pass.

    A use case opens a unit of work per transaction from `units`. Reads outside a write
    take `units(readonly=True)`: on SQLite a writing unit takes the write lock at BEGIN,
    so a read in one would queue behind (and hold up) every writer."""

    units: Units
    catalog: ProductCatalog
    stock: StockReservations
    policy: Policy = field(default_factory=Policy)
    clock: Callable[[], datetime] = utc_now
