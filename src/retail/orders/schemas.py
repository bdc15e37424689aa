"""Wire models. The order shape is fixed by DESIGN.md (`{id, user_id, items: [{product_id,
title, price, quantity, tax_percent}], subtotal, tax_total, total, status, shipping_address,
created_at}`); `order_number`, `updated_at` and per-line `line_total` are additions.

`shipping_address` is what the storefront sent, kept and answered as sent: a free text of
1..500 characters, or a flat object of text fields (recommended keys: name, line1, line2,
city, state, postal_code, country, phone). The old storefront sent either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from retail.kernel.money import WholeNumber, from_cents, percent_from_basis_points
from retail.kernel.pagination import PageRequest, total_pages
from retail.orders.domain import (
    MAX_QUANTITY,
    LineRequest,
    Order,
    OrderLine,
    OrderRequest,
    OrderStatus,
    Page,
    ShippingAddress,
    SkippedItem,
    SkipReason,
    merge_lines,
)

# Before merging: duplicates may repeat a product, but a body stays bounded.
MAX_ITEMS_SENT = 200
MAX_ADDRESS_FIELDS = 20


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _some_field_filled(value: dict[str, str | None]) -> dict[str, str | None]:
    if not any(v and v.strip() for v in value.values()):
        raise ValueError("give at least one address field")
    return value


AddressText = Annotated[
    str, Field(min_length=1, max_length=500, pattern=r"\S"), AfterValidator(_not_blank)
]
AddressKey = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$")]
AddressValue = Annotated[str, Field(max_length=200)]
AddressFields = Annotated[
    dict[AddressKey, AddressValue | None],
    # Pydantic publishes the key pattern as patternProperties; other keys are refused too.
    Field(
        min_length=1,
        max_length=MAX_ADDRESS_FIELDS,
        json_schema_extra={"additionalProperties": False},
    ),
    AfterValidator(_some_field_filled),
]
Address = AddressText | AddressFields
ProductId = Annotated[str, Field(min_length=1, max_length=64)]


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY), WholeNumber]  # no true, no "3"


class OrderCreate(BaseModel):
    """Lines naming the same product are merged; limits apply to the merged lines."""

    # The old storefront may send a postal code as a number inside an address object.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=MAX_ITEMS_SENT)]
    shipping_address: Address

    @model_validator(mode="after")
    def _merged_lines_within_limits(self) -> OrderCreate:
        merge_lines(self._requested())  # raises ValueError, answered as a 422
        return self

    def _requested(self) -> list[LineRequest]:
        return [LineRequest(item.product_id, item.quantity) for item in self.items]

    def to_request(self) -> OrderRequest:
        return OrderRequest(merge_lines(self._requested()), self.shipping_address)


class ReorderCreate(BaseModel):
    """Optional body of a reorder: ship somewhere else than the past order did."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    shipping_address: Address | None = None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: OrderStatus


class OrderItemRead(BaseModel):
    product_id: str
    title: str
    price: float = Field(description="Unit price when ordered")
    quantity: int
    tax_percent: float
    line_total: float = Field(description="price x quantity plus this line's tax")

    @staticmethod
    def fields_of(line: OrderLine) -> dict[str, object]:
        return {
            "product_id": line.product_id,
            "title": line.title,
            "price": from_cents(line.unit_price_cents),
            "quantity": line.quantity,
            "tax_percent": percent_from_basis_points(line.tax_bp),
            "line_total": from_cents(line.total_cents),
        }


class OrderRead(BaseModel):
    id: str
    order_number: str
    user_id: str
    items: list[OrderItemRead]
    subtotal: float
    tax_total: float
    total: float
    status: OrderStatus
    shipping_address: ShippingAddress
    created_at: datetime
    updated_at: datetime

    @classmethod
    def fields_of(cls, order: Order) -> dict[str, object]:
        """The answer as plain values, validated in one call with whatever holds it."""
        subtotal, tax = order.subtotal_cents, order.tax_cents
        return {
            "id": order.id,
            "order_number": order.order_number,
            "user_id": order.user_id,
            "items": [OrderItemRead.fields_of(line) for line in order.lines],
            "subtotal": from_cents(subtotal),
            "tax_total": from_cents(tax),
            "total": from_cents(subtotal + tax),
            "status": order.status,
            "shipping_address": order.shipping_address,
            "created_at": order.created_at,
            "updated_at": order.updated_at,
        }

    @classmethod
    def of(cls, order: Order) -> OrderRead:
        return cls.model_validate(cls.fields_of(order))


class SkippedItemRead(BaseModel):
    product_id: str
    title: str
    quantity: int
    reason: SkipReason
    available: int | None = Field(None, description="Only when reason is insufficient_stock")

    @model_serializer(mode="wrap")
    def _available_only_when_known(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self.available is None and isinstance(data, dict):
            data.pop("available", None)
        return data

    @classmethod
    def of(cls, item: SkippedItem) -> SkippedItemRead:
        return cls(
            product_id=item.product_id,
            title=item.title,
            quantity=item.quantity,
            reason=item.reason,
            available=item.available,
        )


class ReorderRead(OrderRead):
    skipped_items: list[SkippedItemRead]

    @classmethod
    def of(cls, order: Order) -> ReorderRead:
        skipped = [SkippedItemRead.of(item) for item in order.skipped]
        return cls.model_validate({**cls.fields_of(order), "skipped_items": skipped})


class ListParameters(PageRequest):
    """`GET /api/orders`' query string, its page and its filter read in one call
    (kernel/queries.py): every signed-in customer's orders page."""

    status: OrderStatus | None = Field(None, description="Only orders in this status")


class OrderList(BaseModel):
    orders: list[OrderRead]
    total: int
    page: int
    limit: int
    total_pages: int

    @classmethod
    def of(cls, found: Page[Order], paging: PageRequest) -> OrderList:
        # One validation for the page, not one per order and per line: a third of the cost.
        return cls.model_validate(
            {
                "orders": [OrderRead.fields_of(order) for order in found.items],
                "total": found.total,
                "page": paging.page,
                "limit": paging.limit,
                "total_pages": total_pages(found.total, paging.limit),
            }
        )
