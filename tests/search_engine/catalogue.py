"""A small fixed catalogue whose words are chosen for the rules under test."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from retail.search.engine import IndexedProduct, ProductIndex, SearchQuery

CATEGORIES = {
    "cat-kitchen": "Kitchen",
    "cat-shirts": "Men's T-Shirts",
    "cat-fruit": "Fresh Fruit",
    "cat-home": "Home",
}


def product(
    product_id: str,
    title: str,
    description: str = "",
    *,
    price_cents: int = 1000,
    category_id: str | None = "cat-home",
    stock: int = 5,
    created_at: str = "2024-01-01T00:00:00+00:00",
) -> IndexedProduct:
    document: dict[str, Any] = {
        "id": product_id,
        "title": title,
        "description": description,
        "price": price_cents / 100,
        "category_id": category_id,
        "stock": stock,
        "created_at": created_at,
    }
    return IndexedProduct(
        product_id, title, description, price_cents, category_id, stock, created_at, document
    )


PRODUCTS = (
    product("tee", "Organic Cotton Crew-Neck T-Shirt - Navy Blue", "A soft everyday tee.",
            price_cents=2500, category_id="cat-shirts", stock=10),
    product("oxford", "Oxford Shirt - White", "Crisp cotton for the office.",
            price_cents=4500, category_id="cat-shirts", stock=0),
    product("jacket", "Rain Jacket - Olive", "Pairs well with a linen shirt.",
            price_cents=9900, category_id=None),
    product("shorts", "Linen Shorts - Sand", "Light and airy.", price_cents=3500,
            category_id=None),
    product("chef-knife", "Chef Knife", "Forged steel blade.", price_cents=5900,
            category_id="cat-kitchen"),
    product("pocket-knife", "Pocket Knife", "Handy in the kitchen and outdoors.",
            price_cents=2900, category_id=None),
    product("boxes", "Storage Boxes", "Three stackable crates.", price_cents=1900,
            category_id="cat-kitchen"),
    product("berries", "Frozen Berries", "A mix of blueberry and raspberry.", price_cents=699,
            category_id="cat-fruit", stock=40),
    product("creme", "Crème Brûlée Kit", "Everything for a classic dessert.", price_cents=1500,
            category_id="cat-kitchen"),
    product("lamp", "Table Lamp - Brass", "Warm light for reading.", price_cents=7900),
    product("chocolate", "Dark Chocolate Bar", "Single origin cocoa.", price_cents=450,
            category_id="cat-fruit"),
    product("mug", "Blue Mug", "Holds a big coffee.", price_cents=1200),
    product("cafe-stool", "Café Stool", "Seats one at a counter.", price_cents=8900),
    product("everyday-bag", "Everyday Tote", "Canvas bag.", price_cents=2200),
)  # fmt: skip


def open_index(directory: Path, products: tuple[IndexedProduct, ...] = PRODUCTS) -> ProductIndex:
    index = ProductIndex(directory)
    with index.batch() as batch:
        for category_id, name in CATEGORIES.items():
            batch.set_category_name(category_id, name)
    index.upsert(products)
    return index


def ids(index: ProductIndex, text: str, **filters: Any) -> list[str]:
    return [str(document["id"]) for document in index.search(SearchQuery(text, **filters))]


def with_stock(base: IndexedProduct, stock: int) -> IndexedProduct:
    return replace(base, stock=stock, document={**base.document, "stock": stock})
