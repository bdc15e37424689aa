"""Wire models. The product shape is fixed by DESIGN.md:
`{id, title, description, price, tax_percent, image_url, category_id, stock, add_ons,
combos, created_at}`; the list adds `{total, page, limit, total_pages}`.

`add_ons` are `[{name, price}]` (at most 20, names unique), `combos` are
`[{product_id, quantity}]` (at most 20, products unique, not the product itself).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from retail.kernel.money import Price, TaxPercent, tax_basis_points, to_cents
from retail.products.domain import AddOn, Combo, Product, ProductDraft

MAX_EXTRAS = 20


# Lengths are checked after trimming: "  x  " is a one-character title.
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
AddOnName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=10_000)]
Stock = Annotated[int, Field(ge=0, le=1_000_000_000)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
AddOnPrice = Annotated[Decimal, Field(ge=0, le=Decimal("99999999.99"), decimal_places=2)]


class AddOnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AddOnName
    price: AddOnPrice


class ComboIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Id
    quantity: Annotated[int, Field(ge=1, le=100)] = 1


def _unique_add_ons(items: list[AddOnIn]) -> list[AddOnIn]:
    if len({item.name.casefold() for item in items}) != len(items):
        raise ValueError("add-on names must be unique")
    return items


def _unique_combos(items: list[ComboIn]) -> list[ComboIn]:
    if len({item.product_id for item in items}) != len(items):
        raise ValueError("a product may appear in combos once")
    return items


AddOns = Annotated[list[AddOnIn], Field(max_length=MAX_EXTRAS), AfterValidator(_unique_add_ons)]
Combos = Annotated[list[ComboIn], Field(max_length=MAX_EXTRAS), AfterValidator(_unique_combos)]


def _add_ons(items: list[AddOnIn]) -> tuple[AddOn, ...]:
    return tuple(AddOn(item.name, to_cents(item.price)) for item in items)


def _combos(items: list[ComboIn]) -> tuple[Combo, ...]:
    return tuple(Combo(item.product_id, item.quantity) for item in items)


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    price: Price
    tax_percent: TaxPercent = Decimal(0)
    category_id: Id | None = None
    stock: Stock = 0
    add_ons: AddOns = Field(default_factory=list)
    combos: Combos = Field(default_factory=list)

    def to_draft(self) -> ProductDraft:
        return ProductDraft(
            title=self.title,
            description=self.description,
            price_cents=to_cents(self.price),
            tax_bp=tax_basis_points(self.tax_percent),
            category_id=self.category_id,
            stock=self.stock,
            add_ons=_add_ons(self.add_ons),
            combos=_combos(self.combos),
        )


class ProductUpdate(BaseModel):
    """Partial update: only the fields sent are applied (`exclude_unset`). `category_id`
    and `description` may be null (no category, empty description); the others may not."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    price: Price | None = None
    tax_percent: TaxPercent | None = None
    category_id: Id | None = None
    stock: Stock | None = None
    add_ons: AddOns | None = None
    combos: Combos | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ProductUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        nullable = {"category_id", "description"}
        nulls = sorted(f for f in self.model_fields_set - nullable if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self

    def to_changes(self) -> dict[str, Any]:
        """The changes in domain terms (cents, basis points, tuples)."""
        sent = self.model_fields_set
        changes: dict[str, Any] = {f: getattr(self, f) for f in sent & {"title", "stock"}}
        if "category_id" in sent:
            changes["category_id"] = self.category_id
        if "description" in sent:
            changes["description"] = self.description or ""
        if self.price is not None:
            changes["price_cents"] = to_cents(self.price)
        if self.tax_percent is not None:
            changes["tax_bp"] = tax_basis_points(self.tax_percent)
        if self.add_ons is not None:
            changes["add_ons"] = _add_ons(self.add_ons)
        if self.combos is not None:
            changes["combos"] = _combos(self.combos)
        return changes


class AddOnRead(BaseModel):
    name: str
    price: float


class ComboRead(BaseModel):
    product_id: str
    quantity: int


class ProductRead(BaseModel):
    id: str
    title: str
    description: str
    price: float
    tax_percent: float
    image_url: str | None
    category_id: str | None
    stock: int
    add_ons: list[AddOnRead]
    combos: list[ComboRead]
    created_at: datetime

    @classmethod
    def of(cls, product: Product) -> ProductRead:
        return cls.model_validate({**product.as_wire(), "created_at": product.created_at})


class ProductList(BaseModel):
    products: list[ProductRead]
    total: int
    page: int
    limit: int
    total_pages: int


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=100)]


class LookupItem(BaseModel):
    id: str
    title: str
    price_cents: int
    tax_bp: int
    stock: int
    image_url: str | None
    category_id: str | None

    @classmethod
    def of(cls, product: Product) -> LookupItem:
        return cls(
            id=product.id,
            title=product.title,
            price_cents=product.price_cents,
            tax_bp=product.tax_bp,
            stock=product.stock,
            image_url=product.image_url,
            category_id=product.category_id,
        )


class LookupResult(BaseModel):
    products: list[LookupItem]
