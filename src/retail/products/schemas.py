"""Wire models. The product shape is fixed by DESIGN.md:
`{id, title, description, price, tax_percent, image_url, category_id, stock, add_ons,
combos, created_at}`; the list adds `{total, page, limit, total_pages}`.

`add_ons` are `[{name, price}]` (at most 20, names unique), `combos` are
`[{product_id, quantity}]` (at most 20, products unique, not the product itself).

What the RetailHub admin console sends besides (docs/storefront-compatibility.md) is named
here one by one, not let through wholesale: `name` for `title`, `image_url` (an external
image), `is_active`, and `is_combo`, which is accepted and ignored (`combos` says it).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from retail.kernel.errors import NotNull, ValidationFailed
from retail.kernel.money import Amount, Price, TaxPercent, tax_basis_points, to_cents
from retail.products.domain import AddOn, Combo, Product, ProductDraft, ProductSort, SortKey

MAX_EXTRAS = 20


# Lengths are checked after trimming: "  x  " is a one-character title.
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
AddOnName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=10_000)]
Stock = Annotated[int, Field(ge=0, le=1_000_000_000)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_IMAGE_URL = 2048  # the column's length


def _external_image(url: str | None) -> str | None:
    """An absolute http(s) URL of an image kept elsewhere; "" means none, as null does.
    Other schemes (javascript:, data:, file:) and relative paths are refused: the
    storefront puts this straight into an <img src>."""
    if not url:
        return None
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http or https URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    return url


# The pattern tells clients (and the OpenAPI document) what _external_image accepts.
IMAGE_URL_PATTERN = r"^(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?)?$"
ImageUrl = Annotated[
    str | None,
    Field(max_length=MAX_IMAGE_URL, pattern=IMAGE_URL_PATTERN),
    AfterValidator(_external_image),
]


class AddOnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: AddOnName
    price: Amount


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


def _title_from_name(data: Any) -> Any:
    """The admin console's product form sends `name` where the API says `title`."""
    if not isinstance(data, dict) or "name" not in data:
        return data
    data = dict(data)
    name = data.pop("name")
    if "title" not in data:
        data["title"] = name
    elif data["title"] != name:
        raise ValueError("title and name differ; send title")
    return data


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None  # null: no description
    price: Price
    tax_percent: TaxPercent = Decimal(0)
    category_id: Id | None = None
    stock: Stock = 0
    add_ons: AddOns = Field(default_factory=list)
    combos: Combos = Field(default_factory=list)
    image_url: ImageUrl = None
    is_active: bool = True
    is_combo: bool | None = Field(default=None, description="Accepted and ignored: see combos")

    @model_validator(mode="before")
    @classmethod
    def _name_is_title(cls, data: Any) -> Any:
        return _title_from_name(data)

    def to_draft(self) -> ProductDraft:
        return ProductDraft(
            title=self.title,
            description=self.description or "",
            price_cents=to_cents(self.price),
            tax_bp=tax_basis_points(self.tax_percent),
            category_id=self.category_id,
            stock=self.stock,
            add_ons=_add_ons(self.add_ons),
            combos=_combos(self.combos),
            image_url=self.image_url,
            is_active=self.is_active,
        )


class ProductUpdate(BaseModel):
    """Partial update: only the fields sent are applied (`exclude_unset`). `category_id`,
    `description` and `image_url` may be null (no category, no description, no image); the
    others may not. `is_combo` alone changes nothing but is a valid (empty) update."""

    # NotNull: absent is "unchanged", but null is refused, so the schema does not offer it.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    title: Title | NotNull = None
    description: Description | None = None
    price: Price | NotNull = None
    tax_percent: TaxPercent | NotNull = None
    category_id: Id | None = None
    stock: Stock | NotNull = None
    add_ons: AddOns | NotNull = None
    combos: Combos | NotNull = None
    image_url: ImageUrl = None
    is_active: bool | NotNull = None
    is_combo: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_is_title(cls, data: Any) -> Any:
        return _title_from_name(data)

    @model_validator(mode="after")
    def _something_to_change(self) -> ProductUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        nullable = {"category_id", "description", "image_url", "is_combo"}
        nulls = sorted(f for f in self.model_fields_set - nullable if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self

    def to_changes(self) -> dict[str, Any]:
        """The changes in domain terms (cents, basis points, tuples)."""
        sent = self.model_fields_set
        kept_as_sent = {"title", "stock", "category_id", "image_url", "is_active"}
        changes: dict[str, Any] = {f: getattr(self, f) for f in sent & kept_as_sent}
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
    is_active: bool
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
    # False: withdrawn from sale; orders and the cart refuse it as unavailable.
    is_active: bool

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
            is_active=product.is_active,
        )


class LookupResult(BaseModel):
    products: list[LookupItem]


# ---- list order ------------------------------------------------------------------------

# Each name the API takes for `sort`: the key, and its direction when `order` is not given.
# `price_asc`/`price_desc` carry their direction; an `order` contradicting it is refused.
SORTS: dict[str, tuple[SortKey, bool]] = {
    "newest": (SortKey.CREATED_AT, True),
    "created_at": (SortKey.CREATED_AT, True),
    "price": (SortKey.PRICE, False),
    "price_asc": (SortKey.PRICE, False),
    "price_desc": (SortKey.PRICE, True),
    "title": (SortKey.TITLE, False),
    "name": (SortKey.TITLE, False),
}
_FIXED = {"price_asc", "price_desc"}
ORDERS = {"asc": False, "desc": True}


def sort_of(sort: str | None, order: str | None) -> ProductSort:
    """The list order a query asks for. Empty values count as absent and case is ignored.
    An unknown name is a 422 rather than a silent default: a list in another order than
    asked looks right and is wrong."""
    name = (sort or "newest").strip().lower()
    direction = (order or "").strip().lower()
    if name not in SORTS:
        raise invalid_query("sort", f"must be one of {', '.join(SORTS)}")
    if direction and direction not in ORDERS:
        raise invalid_query("order", "must be asc or desc")
    key, descending = SORTS[name]
    if direction:
        if name in _FIXED and ORDERS[direction] != descending:
            raise invalid_query("order", f"contradicts sort={name}")
        descending = ORDERS[direction]
    return ProductSort(key, descending)


def invalid_query(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid input: {name} {message}",
        details={"fields": [{"field": f"query.{name}", "message": message, "type": "value_error"}]},
    )
