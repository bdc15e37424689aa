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
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from retail.kernel.errors import NotNull, ValidationFailed, field_name
from retail.kernel.money import (
    Amount,
    Price,
    PriceFilter,
    TaxPercent,
    WholeNumber,
    tax_basis_points,
    to_cents,
)
from retail.kernel.pagination import PageRequest, total_pages
from retail.products.domain import (
    AddOn,
    BulkItem,
    BulkResult,
    Combo,
    InvalidItem,
    ItemError,
    Product,
    ProductDraft,
    ProductPage,
    ProductSort,
    SortKey,
)

MAX_EXTRAS = 20


# Lengths are checked after trimming: "  x  " is a one-character title.
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
AddOnName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=10_000)]
Stock = Annotated[int, Field(ge=0, le=1_000_000_000), WholeNumber]  # no true, no "3"
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_IMAGE_URL = 2048  # the column's length
# The shop's own product id: what an import matches a row by. Trimmed; letters, digits and
# . _ - / (the characters SKUs are written with), so it is safe in a URL's query and in CSV.
SKU_PATTERN = r"^[A-Za-z0-9._/-]+$"
Sku = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=SKU_PATTERN)
]


def _no_blank_brand(brand: str | None) -> str | None:
    return brand or None  # "" (an empty CSV cell) means no brand, as null does


Brand = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, max_length=100),
    AfterValidator(_no_blank_brand),
]


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
    quantity: Annotated[int, Field(ge=1, le=100), WholeNumber] = 1


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
    sku: Sku | None = None
    brand: Brand = None

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
            sku=self.sku,
            brand=self.brand,
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
    sku: Sku | None = None  # null: no SKU
    brand: Brand = None  # null: no brand

    @model_validator(mode="before")
    @classmethod
    def _name_is_title(cls, data: Any) -> Any:
        return _title_from_name(data)

    @model_validator(mode="after")
    def _something_to_change(self) -> ProductUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        nullable = {"category_id", "description", "image_url", "is_combo", "sku", "brand"}
        nulls = sorted(f for f in self.model_fields_set - nullable if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self

    def to_changes(self) -> dict[str, Any]:
        """The changes in domain terms (cents, basis points, tuples)."""
        sent = self.model_fields_set
        kept_as_sent = {"title", "stock", "category_id", "image_url", "is_active", "sku", "brand"}
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
    sku: str | None
    brand: str | None
    created_at: datetime

    @staticmethod
    def fields_of(product: Product) -> dict[str, object]:
        return {**product.as_wire(), "created_at": product.created_at}

    @classmethod
    def of(cls, product: Product) -> ProductRead:
        return cls.model_validate(cls.fields_of(product))


class ProductList(BaseModel):
    products: list[ProductRead]
    total: int
    page: int
    limit: int
    total_pages: int

    @classmethod
    def of(cls, found: ProductPage, paging: PageRequest) -> ProductList:
        # One validation for the page, not one model per product.
        return cls.model_validate(
            {
                "products": [ProductRead.fields_of(product) for product in found.items],
                "total": found.total,
                "page": paging.page,
                "limit": paging.limit,
                "total_pages": total_pages(found.total, paging.limit),
            }
        )


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


class ListParameters(BaseModel):
    """The filters and order of `GET /api/products` (its page is `Pagination`), read from the
    query string in one call (kernel/queries.py): the storefront's most frequent list."""

    category_id: str | None = Field(None, max_length=64)
    sort: str | None = Field(
        None,
        max_length=32,
        description="newest, created_at, price, title, name (or price_asc, price_desc)",
    )
    order: str | None = Field(
        None, max_length=8, description="asc or desc; each sort has a default"
    )
    min_price: PriceFilter | None = Field(None, description="e.g. 19.99")
    max_price: PriceFilter | None = Field(None, description="e.g. 19.99")
    include_inactive: bool = Field(False, description="Admins only: list inactive products too")
    sku: str | None = Field(None, max_length=64, description="The product with this sku")
    brand: str | None = Field(None, max_length=100, description="Products of this brand")


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


# ---- bulk upsert by sku ----------------------------------------------------------------

MAX_BULK_ITEMS = 1000
CategoryName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


def _image_or_own(url: str | None) -> str | None:
    """An external image, or an uploaded image's own URL (`/media/...`) as the export writes
    it: the use case keeps that one only if it is the product's own."""
    if url and url.startswith("/") and url.isprintable() and " " not in url:
        return url
    return _external_image(url)


BulkImageUrl = Annotated[str | None, Field(max_length=MAX_IMAGE_URL), AfterValidator(_image_or_own)]
# Wire name -> the draft field it sets (`category` names a category instead of giving its id).
_BULK_FIELDS = {
    "title": "title",
    "description": "description",
    "price": "price_cents",
    "tax_percent": "tax_bp",
    "category_id": "category_id",
    "category": "category_id",
    "stock": "stock",
    "add_ons": "add_ons",
    "combos": "combos",
    "image_url": "image_url",
    "is_active": "is_active",
    "sku": "sku",
    "brand": "brand",
}


class BulkItemIn(BaseModel):
    """An item of `POST /api/products/bulk`: the create fields, plus `category` (a name) as
    an alternative to `category_id`. For a product already stored (by sku), only the fields
    given are changed; `stock` absent leaves the stock as it is."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku | None = None
    title: Title
    description: Description | None = None
    brand: Brand = None
    price: Price
    tax_percent: TaxPercent = Decimal(0)
    stock: Stock | None = None
    category: CategoryName | None = None
    category_id: Id | None = None
    image_url: BulkImageUrl = None
    add_ons: AddOns = Field(default_factory=list)
    combos: Combos = Field(default_factory=list)
    is_active: bool = True
    is_combo: bool | None = Field(default=None, description="Accepted and ignored: see combos")

    @model_validator(mode="before")
    @classmethod
    def _name_is_title(cls, data: Any) -> Any:
        return _title_from_name(data)

    @model_validator(mode="after")
    def _one_category(self) -> BulkItemIn:
        if self.category is not None and self.category_id is not None:
            raise ValueError("give category (a name) or category_id, not both")
        return self

    def to_item(self, index: int) -> BulkItem:
        draft = ProductDraft(
            title=self.title,
            description=self.description or "",
            price_cents=to_cents(self.price),
            tax_bp=tax_basis_points(self.tax_percent),
            category_id=self.category_id,
            stock=self.stock or 0,
            add_ons=_add_ons(self.add_ons),
            combos=_combos(self.combos),
            image_url=self.image_url,
            is_active=self.is_active,
            sku=self.sku,
            brand=self.brand,
        )
        sent = frozenset(_BULK_FIELDS[f] for f in self.model_fields_set if f in _BULK_FIELDS)
        if self.stock is None:
            sent -= {"stock"}
        return BulkItem(index, draft, sent, category_name=self.category)


def bulk_item(index: int, raw: Any) -> BulkItem | InvalidItem:
    """An item of the request, validated on its own: one bad item fails alone."""
    try:
        return BulkItemIn.model_validate(raw).to_item(index)
    except ValidationError as exc:
        sku = raw.get("sku") if isinstance(raw, dict) else None
        errors = tuple(
            ItemError(field_name(tuple(e["loc"])), e["msg"], e["type"])
            for e in exc.errors()
            if e["type"] != "none_required"
        )
        return InvalidItem(index, sku if isinstance(sku, str) else None, errors)


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    products: list[dict[str, Any]] = Field(
        max_length=MAX_BULK_ITEMS,
        description="Up to 1,000 items, each shaped as BulkItemIn; each is validated alone",
    )


class ItemErrorRead(BaseModel):
    field: str
    message: str
    type: str


class BulkItemResult(BaseModel):
    index: int
    status: Literal["created", "updated", "unchanged", "failed"]
    id: str | None
    sku: str | None
    errors: list[ItemErrorRead]


class BulkResponse(BaseModel):
    created: int
    updated: int
    unchanged: int
    failed: int
    results: list[BulkItemResult]

    @classmethod
    def of(cls, result: BulkResult) -> BulkResponse:
        return cls(
            created=result.count("created"),
            updated=result.count("updated"),
            unchanged=result.count("unchanged"),
            failed=result.count("failed"),
            results=[
                BulkItemResult(
                    index=o.index,
                    status=o.status,
                    id=o.id,
                    sku=o.sku,
                    errors=[
                        ItemErrorRead(field=e.field, message=e.message, type=e.type)
                        for e in o.errors
                    ],
                )
                for o in result.results
            ],
        )
