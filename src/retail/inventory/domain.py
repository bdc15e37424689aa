"""Inventory in domain terms: stock levels, their movements, and reservations of orders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from retail.kernel.pagination import Page as Page  # one Page for every service

MovementKind = Literal["initial", "admin_set", "reservation", "release"]
ReservationStatus = Literal["reserved", "released"]
# What a release did: gave stock back (or had before), or found nothing reserved.
ReleaseOutcome = Literal["released", "none"]

INITIAL_REASON = "initial stock"
PRODUCTS_SET_REASON = "set via products"
RESERVED_REASON = "reserved for order"
RELEASED_REASON = "released from order"
PRODUCTS_ACTOR = "service:products"


@dataclass(slots=True)
class StockLevel:
    product_id: str
    title: str
    category_id: str | None
    stock: int
    low_stock_threshold: int | None
    updated_at: datetime

    def is_low(self, default_threshold: int) -> bool:
        threshold = self.low_stock_threshold
        return self.stock <= (default_threshold if threshold is None else threshold)


@dataclass(frozen=True, slots=True, kw_only=True)
class Movement:
    """One change of one level, kept as history and announced as `stock.changed`. Built
    by keyword only: eight fields, four of them strings, are too easy to swap by position."""

    product_id: str
    kind: MovementKind
    before: int
    after: int
    reason: str
    actor: str
    order_id: str | None
    created_at: datetime
    id: int | None = None

    @property
    def change(self) -> int:
        return self.after - self.before

    def as_event_data(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "stock": self.after,
            "change": self.change,
            "reason": self.reason,
            "order_id": self.order_id,
        }


@dataclass(frozen=True, slots=True)
class Threshold:
    """A new low-stock threshold; `None` falls back to the service default."""

    value: int | None


@dataclass(frozen=True, slots=True)
class ReservationLine:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Reservation:
    order_id: str
    status: ReservationStatus
    lines: tuple[ReservationLine, ...]
    created_at: datetime


def merge_lines(lines: Iterable[ReservationLine]) -> tuple[ReservationLine, ...]:
    """One line per product, in product-id order: every transaction then takes its row
    locks in the same order, so two orders naming the same products cannot deadlock."""
    totals: Counter[str] = Counter()
    for line in lines:
        totals[line.product_id] += line.quantity
    return tuple(ReservationLine(p, q) for p, q in sorted(totals.items()))


# --- what the products feed tells us, in domain terms --------------------------------------


@dataclass(frozen=True, slots=True)
class ProductCreated:
    product_id: str
    title: str
    category_id: str | None
    initial_stock: int


@dataclass(frozen=True, slots=True)
class ProductUpdated:
    product_id: str
    title: str
    category_id: str | None
    stock_set: int | None


@dataclass(frozen=True, slots=True)
class ProductDeleted:
    product_id: str


ProductChange = ProductCreated | ProductUpdated | ProductDeleted
