"""Products in domain terms: what a product is, independent of storage and HTTP.

Money is integer cents and tax is basis points (DESIGN.md decision 4); the wire turns
them into numbers with at most two decimals. `stock` is a read model of inventory's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from retail.kernel.money import from_cents, percent_from_basis_points


@dataclass(frozen=True, slots=True)
class AddOn:
    """An optional extra sold with the product (gift wrap, warranty): a name and a price."""

    name: str
    price_cents: int

    def as_wire(self) -> dict[str, Any]:
        return {"name": self.name, "price": from_cents(self.price_cents)}


@dataclass(frozen=True, slots=True)
class Combo:
    """Another product offered together with this one, in a quantity."""

    product_id: str
    quantity: int

    def as_wire(self) -> dict[str, Any]:
        return {"product_id": self.product_id, "quantity": self.quantity}


@dataclass(slots=True)
class Product:
    id: str
    title: str
    description: str
    price_cents: int
    tax_bp: int
    category_id: str | None
    stock: int
    created_at: datetime
    updated_at: datetime
    add_ons: tuple[AddOn, ...] = ()
    combos: tuple[Combo, ...] = ()
    image_url: str | None = None
    # Where the image store keeps the image; what a replacement or a delete removes. None
    # for an external image_url (an admin's link), which nothing here stores.
    image_key: str | None = None
    # An inactive product is withdrawn from sale: only admins see it; orders keep theirs.
    is_active: bool = True
    # The shop's own id (unique when set: what an import matches a row by), and the maker.
    sku: str | None = None
    brand: str | None = None

    def as_wire(self) -> dict[str, Any]:
        """The product as clients see it: DESIGN.md's product shape."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "price": from_cents(self.price_cents),
            "tax_percent": percent_from_basis_points(self.tax_bp),
            "image_url": self.image_url,
            "category_id": self.category_id,
            "stock": self.stock,
            "add_ons": [a.as_wire() for a in self.add_ons],
            "combos": [c.as_wire() for c in self.combos],
            "is_active": self.is_active,
            "sku": self.sku,
            "brand": self.brand,
            "created_at": _utc_iso(self.created_at),
        }

    def as_event_data(self) -> dict[str, Any]:
        """The feed's data: the wire shape plus exact money (docs/architecture.md, Feeds)."""
        return {**self.as_wire(), "price_cents": self.price_cents, "tax_bp": self.tax_bp}


def _utc_iso(moment: datetime) -> str:
    # Spelled as the API spells it ("...Z"), so that followers such as search, which copy
    # the feed's product into their own answers, answer exactly what products answers.
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class SortKey(StrEnum):
    CREATED_AT = "created_at"
    PRICE = "price"
    TITLE = "title"


@dataclass(frozen=True, slots=True)
class ProductSort:
    """What a list is ordered by; ties go by id in the same direction, so that one index
    (key, id) serves both directions, walked forwards or backwards."""

    key: SortKey
    descending: bool = False

    NEWEST: ClassVar[ProductSort]
    PRICE_ASC: ClassVar[ProductSort]
    PRICE_DESC: ClassVar[ProductSort]
    TITLE: ClassVar[ProductSort]


ProductSort.NEWEST = ProductSort(SortKey.CREATED_AT, descending=True)
ProductSort.PRICE_ASC = ProductSort(SortKey.PRICE)
ProductSort.PRICE_DESC = ProductSort(SortKey.PRICE, descending=True)
ProductSort.TITLE = ProductSort(SortKey.TITLE)


@dataclass(frozen=True, slots=True)
class ProductQuery:
    offset: int = 0
    limit: int = 20
    category_id: str | None = None
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    sort: ProductSort = ProductSort.NEWEST
    # False: active products only (what shoppers see); True: every product (admins).
    include_inactive: bool = False
    sku: str | None = None
    brand: str | None = None


@dataclass(frozen=True, slots=True)
class ProductPage:
    items: list[Product]
    total: int


@dataclass(frozen=True, slots=True)
class StockLevel:
    """What inventory's feed says a product's stock now is."""

    product_id: str
    stock: int


@dataclass(frozen=True, slots=True)
class CategoryDeleted:
    category_id: str


# The image formats the catalogue takes: Pillow's name for each -> (content type, extension).
IMAGE_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
}


@dataclass(frozen=True, slots=True)
class CleanImage:
    """An upload that is really an image, re-encoded without its metadata."""

    data: bytes
    content_type: str
    extension: str
    # Hex SHA-256 of `data`: names the stored file, so a name never changes content.
    digest: str


@dataclass(frozen=True, slots=True)
class ProductDraft:
    """What an admin gives to create a product."""

    title: str
    price_cents: int
    tax_bp: int
    description: str = ""
    category_id: str | None = None
    stock: int = 0
    add_ons: tuple[AddOn, ...] = ()
    combos: tuple[Combo, ...] = ()
    image_url: str | None = None
    is_active: bool = True
    sku: str | None = None
    brand: str | None = None


# ---- bulk upsert by SKU ------------------------------------------------------------------

BulkStatus = Literal["created", "updated", "unchanged", "failed"]


@dataclass(frozen=True, slots=True)
class CategoryRef:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why an item of a bulk request was not stored: the field (as the client named it, or
    "" for the item as a whole), a message, and a machine-readable type."""

    field: str
    message: str
    type: str


@dataclass(frozen=True, slots=True)
class BulkItem:
    """One valid item of a bulk upsert: a full draft (defaults where the item was silent),
    and which of the draft's fields it gave, the only ones an update of a stored product
    changes. `category_name` stands in for `category_id` when the item named a category."""

    index: int
    draft: ProductDraft
    sent: frozenset[str]
    category_name: str | None = None

    @property
    def sku(self) -> str | None:
        return self.draft.sku


@dataclass(frozen=True, slots=True)
class InvalidItem:
    """An item that failed validation before anything was looked up."""

    index: int
    sku: str | None
    errors: tuple[ItemError, ...]


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    index: int
    status: BulkStatus
    id: str | None
    sku: str | None
    errors: tuple[ItemError, ...] = ()


@dataclass(frozen=True, slots=True)
class BulkResult:
    results: tuple[BulkOutcome, ...]

    def count(self, status: BulkStatus) -> int:
        return sum(1 for outcome in self.results if outcome.status == status)


@dataclass(frozen=True, slots=True)
class Written:
    """A product a bulk upsert stored: created (with its initial stock), or updated (with the
    stock to set, if the item changed it). What its change event carries to the feed."""

    product: Product
    created: bool
    stock: int | None
