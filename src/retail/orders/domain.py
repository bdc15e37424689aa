"""Orders in domain terms: lines snapshotted from the catalogue, exact totals in cents, the
status table, and the idempotency records that make placing an order safe to retry."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from retail.kernel.money import line_tax_cents
from retail.kernel.pagination import Page as Page  # one Page for every service

OrderStatus = Literal[
    "pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "failed"
]
SkipReason = Literal["unavailable", "insufficient_stock"]
# A free text (what the old storefront sent) or a flat object of text fields; kept as sent.
ShippingAddress = str | Mapping[str, str | None]

MAX_QUANTITY = 100
MAX_LINES = 50

# What an admin may do (PATCH .../status). `failed` is terminal and set only by the saga.
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    "pending": frozenset({"confirmed", "cancelled"}),
    "confirmed": frozenset({"processing", "cancelled"}),
    "processing": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"delivered"}),
    "delivered": frozenset(),
    "cancelled": frozenset(),
    "failed": frozenset(),
}
# A customer may cancel only before anyone started working on the order; an admin until
# it has shipped.
OWNER_CANCELLABLE: frozenset[OrderStatus] = frozenset({"pending", "confirmed"})
ADMIN_CANCELLABLE: frozenset[OrderStatus] = frozenset(
    status for status, targets in TRANSITIONS.items() if "cancelled" in targets
)

# Crockford's base32: no I, L, O or U, so a number read over the phone is unambiguous.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    return new in TRANSITIONS[current]


def new_order_number() -> str:
    """`RP-7K3M-9QX2`: 40 random bits, so numbers reveal nothing about volume or sequence.
    The database's unique index settles the rare collision (the caller draws again)."""
    bits = secrets.randbits(40)
    chars = "".join(_CROCKFORD[(bits >> shift) & 31] for shift in range(35, -1, -5))
    return f"RP-{chars[:4]}-{chars[4:]}"


@dataclass(frozen=True, slots=True)
class LineRequest:
    product_id: str
    quantity: int


def merge_lines(items: Iterable[LineRequest]) -> tuple[LineRequest, ...]:
    """One line per product, in the order first named. Raises ValueError past the limits,
    which apply to the merged lines (two lines of 60 are one line of 120)."""
    merged: dict[str, int] = {}
    for item in items:
        merged[item.product_id] = merged.get(item.product_id, 0) + item.quantity
    for product_id, quantity in merged.items():
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValueError(
                f"quantity of product {product_id} must be 1..{MAX_QUANTITY} (merged: {quantity})"
            )
    if len(merged) > MAX_LINES:
        raise ValueError(f"at most {MAX_LINES} distinct products per order")
    return tuple(LineRequest(pid, quantity) for pid, quantity in merged.items())


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What the customer asked for: merged lines (see `merge_lines`), an address."""

    lines: tuple[LineRequest, ...]
    shipping_address: ShippingAddress

    def fingerprint(self) -> dict[str, Any]:
        return {
            "items": [[line.product_id, line.quantity] for line in self.lines],
            "shipping_address": self.shipping_address,
        }


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """What products says about a product at the moment of ordering."""

    product_id: str
    title: str
    price_cents: int
    tax_bp: int


@dataclass(frozen=True, slots=True)
class OrderLine:
    """A line as bought: title, unit price and tax rate copied from the catalogue."""

    product_id: str
    title: str
    unit_price_cents: int
    quantity: int
    tax_bp: int

    @classmethod
    def of(cls, entry: CatalogEntry, quantity: int) -> OrderLine:
        return cls(entry.product_id, entry.title, entry.price_cents, quantity, entry.tax_bp)

    @property
    def subtotal_cents(self) -> int:
        return self.unit_price_cents * self.quantity

    @property
    def tax_cents(self) -> int:
        return line_tax_cents(self.unit_price_cents, self.quantity, self.tax_bp)

    @property
    def total_cents(self) -> int:
        return self.subtotal_cents + self.tax_cents


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """A line of a past order that a reorder left out, and why."""

    product_id: str
    title: str
    quantity: int
    reason: SkipReason
    available: int | None = None


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    order_number: str
    user_id: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    shipping_address: ShippingAddress
    created_at: datetime
    updated_at: datetime
    # The key of the stock held at inventory. It is the order id, except when a reorder
    # retried with fewer lines: a refused reservation id is never reused.
    reservation_id: str
    # Before this moment no recovery pass may touch the order: whoever holds it (the request
    # that placed it, or a recovery pass that claimed it) is still working on it.
    recovery_lease_until: datetime
    # Stock may still be held for an order that no longer needs it; recovery releases it.
    release_due: bool = False
    skipped: tuple[SkippedItem, ...] = field(default=())

    @property
    def subtotal_cents(self) -> int:
        return sum(line.subtotal_cents for line in self.lines)

    @property
    def tax_cents(self) -> int:
        return sum(line.tax_cents for line in self.lines)

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    def reservation_lines(self) -> tuple[LineRequest, ...]:
        return tuple(LineRequest(line.product_id, line.quantity) for line in self.lines)

    def line_of(self, product_id: str) -> OrderLine | None:
        return next((line for line in self.lines if line.product_id == product_id), None)

    def moved_to(self, status: OrderStatus, now: datetime, *, release_due: bool) -> Order:
        return replace(self, status=status, updated_at=now, release_due=release_due)


@dataclass(frozen=True, slots=True)
class Failure:
    """A refusal as answered to the client, kept so that a retry gets the same answer."""

    status_code: int
    error_code: str
    message: str
    details: dict[str, Any] | None = None


# What a request with an idempotency key answered: the order as placed, or a refusal.
Outcome = Order | Failure


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    user_id: str
    key: str
    request_hash: str
    order_id: str
    created_at: datetime
    outcome: Outcome | None = None

    def expired(self, now: datetime, ttl: timedelta) -> bool:
        return self.created_at <= now - ttl


@dataclass(frozen=True, slots=True)
class Policy:
    """The saga's knobs, from the settings."""

    pending_grace: timedelta = timedelta(seconds=30)
    idempotency_ttl: timedelta = timedelta(hours=24)
    idempotency_wait_seconds: float = 5.0
    reorder_max_attempts: int = 5


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """Whose orders, in which status. `hide_failed` is the customer's default view."""

    user_id: str | None = None
    status: OrderStatus | None = None
    hide_failed: bool = False
