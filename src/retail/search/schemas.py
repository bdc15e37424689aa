"""Wire models: search answers a JSON array of products in the product shape of DESIGN.md."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from retail.kernel.money import PriceFilter
from retail.search.engine.model import MAX_OFFSET

# Published, not enforced by the model: the router answers a blank q with INVALID_QUERY.
NOT_BLANK: dict[str, Any] = {"pattern": r"\S"}


class ProductHit(BaseModel):
    id: str
    title: str
    description: str
    price: float
    tax_percent: float
    image_url: str | None
    category_id: str | None
    stock: int
    add_ons: list[Any]
    combos: list[Any]
    created_at: str
    sku: str | None = None
    brand: str | None = None


class SearchParameters(BaseModel):
    """The query string of `GET /api/search`, read in one call (kernel/queries.py)."""

    q: str = Field(description="What the shopper typed", json_schema_extra=NOT_BLANK)
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    page: int | None = Field(None, ge=1, le=MAX_OFFSET, description="from 1; overrides offset")
    category_id: str | None = Field(None, max_length=64)
    min_price: PriceFilter | None = None
    max_price: PriceFilter | None = None
    in_stock: bool | None = None


class ReindexResult(BaseModel):
    events_applied: int
    products_indexed: int
