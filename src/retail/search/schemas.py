"""Wire models: search answers a JSON array of products in the product shape of DESIGN.md."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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


class ReindexResult(BaseModel):
    events_applied: int
    products_indexed: int
