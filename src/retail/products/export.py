"""The catalogue as CSV (`GET /api/products/export?format=csv`), in the columns `retail
import` reads, so that export then import changes nothing.

The catalogue is walked a page at a time by id, each page in its own short read transaction,
so a large export never holds the database; the CSV is produced as it is read. Categories
are named (one call to the categories service per export). A product without a sku is
written under its id, which an import matches to that product (`bulk.py`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence

from retail.products.domain import Product
from retail.products.ports import ProductsDeps

COLUMNS = (
    "sku",
    "title",
    "description",
    "brand",
    "price",
    "tax_percent",
    "stock",
    "category",
    "image_url",
)
PAGE = 1000


def _decimal(hundredths: int) -> str:
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def _row(product: Product, category_names: dict[str, str]) -> list[str]:
    category = category_names.get(product.category_id or "", "")
    return [
        product.sku or product.id,
        product.title,
        product.description,
        product.brand or "",
        _decimal(product.price_cents),
        _decimal(product.tax_bp),
        str(product.stock),
        category,
        product.image_url or "",
    ]


def _csv(rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


async def category_names(deps: ProductsDeps) -> dict[str, str]:
    """Asked before the answer starts: a categories service that is down is then a 503,
    not a CSV cut short."""
    return {category.id: category.name for category in await deps.categories.all()}


async def export_csv(deps: ProductsDeps, *, names: dict[str, str]) -> AsyncIterator[bytes]:
    """The header, then the catalogue a page at a time (inactive products included)."""
    yield _csv([COLUMNS])
    after: str | None = None
    while True:
        async with deps.units(readonly=True) as uow:
            page = await uow.products.after_id(after, PAGE)
        if not page:
            return
        yield _csv([_row(product, names) for product in page])
        after = page[-1].id
