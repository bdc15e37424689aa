"""Wire models. The list shape is fixed by DESIGN.md: `{items: [{product_id, title, stock,
category_id}], total}`; the reservation API is fixed by docs/architecture.md."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from retail.inventory.domain import (
    Movement,
    MovementKind,
    Page,
    ReleaseOutcome,
    Reservation,
    StockLevel,
)
from retail.kernel.money import WholeNumber
from retail.kernel.pagination import PageRequest, total_pages

MAX_STOCK = 1_000_000_000
MAX_LINES = 100
MAX_QUANTITY = 10_000
# Orders uses UUIDs; anything id-like is accepted, nothing that needs escaping anywhere.
ORDER_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


Reason = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
Quantity = Annotated[int, Field(ge=0, le=MAX_STOCK), WholeNumber]  # no true, no "3"
ProductId = Annotated[str, Field(min_length=1, max_length=64)]
OrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=ORDER_ID_PATTERN)]


class InventoryItem(BaseModel):
    product_id: str
    title: str
    stock: int
    category_id: str | None
    low_stock_threshold: int | None
    updated_at: datetime

    @classmethod
    def of(cls, level: StockLevel) -> InventoryItem:
        return cls(
            product_id=level.product_id,
            title=level.title,
            stock=level.stock,
            category_id=level.category_id,
            low_stock_threshold=level.low_stock_threshold,
            updated_at=level.updated_at,
        )


class InventoryList(BaseModel):
    items: list[InventoryItem]
    total: int
    page: int
    limit: int
    total_pages: int

    @classmethod
    def of(cls, found: Page[StockLevel], paging: PageRequest) -> InventoryList:
        return cls(
            items=[InventoryItem.of(level) for level in found.items],
            total=found.total,
            page=paging.page,
            limit=paging.limit,
            total_pages=total_pages(found.total, paging.limit),
        )


class StockUpdate(BaseModel):
    """PATCH body. With `expected_stock` the write is a compare-and-set; an explicit
    `low_stock_threshold: null` returns the product to the service default."""

    model_config = ConfigDict(extra="forbid")

    stock: Quantity
    reason: Reason
    expected_stock: Quantity | None = None
    low_stock_threshold: Quantity | None = None


class MovementRead(BaseModel):
    id: int
    product_id: str
    type: MovementKind
    before: int
    after: int
    change: int
    reason: str
    actor: str
    order_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, movement: Movement) -> MovementRead:
        return cls(
            id=movement.id or 0,
            product_id=movement.product_id,
            type=movement.kind,
            before=movement.before,
            after=movement.after,
            change=movement.change,
            reason=movement.reason,
            actor=movement.actor,
            order_id=movement.order_id,
            created_at=movement.created_at,
        )


class MovementList(BaseModel):
    items: list[MovementRead]
    total: int
    page: int
    limit: int
    total_pages: int

    @classmethod
    def of(cls, found: Page[Movement], paging: PageRequest) -> MovementList:
        return cls(
            items=[MovementRead.of(m) for m in found.items],
            total=found.total,
            page=paging.page,
            limit=paging.limit,
            total_pages=total_pages(found.total, paging.limit),
        )


# --- internal reservation API ----------------------------------------------------------


class ReservationLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY), WholeNumber]


class ReservationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: OrderId
    lines: Annotated[list[ReservationLineIn], Field(min_length=1, max_length=MAX_LINES)]


class ReservationLineRead(BaseModel):
    product_id: str
    quantity: int


class ReservationRead(BaseModel):
    order_id: str
    status: Literal["reserved", "released", "none"]
    lines: list[ReservationLineRead]

    @classmethod
    def of(cls, reservation: Reservation) -> ReservationRead:
        return cls(
            order_id=reservation.order_id,
            status=reservation.status,
            lines=[
                ReservationLineRead(product_id=line.product_id, quantity=line.quantity)
                for line in reservation.lines
            ],
        )

    @classmethod
    def none(cls, order_id: str) -> ReservationRead:
        return cls(order_id=order_id, status="none", lines=[])


class ReleaseRead(BaseModel):
    order_id: str
    status: ReleaseOutcome
