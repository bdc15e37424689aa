"""Products in domain terms: what a product is, independent of storage and HTTP.

Money is integer cents and tax is basis points (DESIGN.md decision 4); the wire turns
them into numbers with at most two decimals. `stock` is a read model of inventory's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

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
    # Where the image store keeps the image; what a replacement or a delete removes.
    image_key: str | None = None

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
            "created_at": _utc_iso(self.created_at),
        }

    def as_event_data(self) -> dict[str, Any]:
        """The feed's data: the wire shape plus exact money (docs/architecture.md, Feeds)."""
        return {**self.as_wire(), "price_cents": self.price_cents, "tax_bp": self.tax_bp}


def _utc_iso(moment: datetime) -> str:
    # Spelled as the API spells it ("...Z"), so that followers such as search, which copy
    # the feed's product into their own answers, answer exactly what products answers.
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ProductSort(StrEnum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    TITLE = "title"


@dataclass(frozen=True, slots=True)
class ProductQuery:
    offset: int = 0
    limit: int = 20
    category_id: str | None = None
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    sort: ProductSort = ProductSort.NEWEST


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
