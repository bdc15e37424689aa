"""MongoDB adapter: collections and indexes, repositories (domain objects in and out), the
unit of work.

A product is one document, its id the `_id`, its add-ons and combos embedded and always
written whole (never `$push`ed). Money is integer cents and tax basis points, never
Decimal128. The stock is the read model inventory's feed sets; nothing else writes it.

The indexes serve the list queries as on SQL: each sort (newest, price, title) has an index
ending in the id, the tie-breaker, alone and behind `category_id` for the category filter;
the price indexes also serve the `min_price`/`max_price` ranges. Every page is then an
index walk, never an in-memory sort of the catalogue; `is_active` is checked on the
documents the walk reaches (inactive products are few), so the indexes did not change. The
id the indexes end in is `id`, a copy of `_id`: nx-27017 (CI's stand-in) fails every write
to a collection with a compound index over `_id`; on MongoDB either serves, and the copy
costs a few bytes a product.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from retail.kernel.clock import utc_now
from retail.kernel.mongo import (
    Document,
    IndexPlan,
    MongoCursorStore,
    MongoEventLog,
    MongoUnitOfWork,
    Unit,
    as_utc,
    duplicate_key_as,
)
from retail.products.adapters.outbox import OutboxStockHandOver
from retail.products.domain import (
    AddOn,
    Combo,
    Product,
    ProductPage,
    ProductQuery,
    ProductSort,
    SortKey,
    StockLevel,
)
from retail.products.exceptions import SkuTaken

PRODUCTS = "products"
DELETED_CATEGORIES = "deleted_categories"


def _sort_index(*keys: str) -> IndexModel:
    # Ascending keys; MongoDB walks an index either way, so one serves both directions.
    return IndexModel([(key, ASCENDING) for key in (*keys, "id")], name="_".join(keys))


INDEXES: IndexPlan = {
    PRODUCTS: [
        _sort_index("created_at"),
        _sort_index("price_cents"),
        _sort_index("title_key"),
        _sort_index("category_id", "created_at"),
        _sort_index("category_id", "price_cents"),
        _sort_index("category_id", "title_key"),
        # Sparse: a product without a sku has no `sku` field at all, so they never collide.
        IndexModel([("sku", ASCENDING)], name="sku", unique=True, sparse=True),
        _sort_index("brand", "created_at"),
    ],
}

_SORT_FIELDS = {
    SortKey.CREATED_AT: "created_at",
    SortKey.PRICE: "price_cents",
    SortKey.TITLE: "title_key",
}


def _order(sort: ProductSort) -> list[tuple[str, int]]:
    direction = DESCENDING if sort.descending else ASCENDING
    return [(_SORT_FIELDS[sort.key], direction), ("id", direction)]


def _product(document: Document) -> Product:
    return Product(
        id=document["_id"],
        title=document["title"],
        description=document["description"],
        price_cents=int(document["price_cents"]),
        tax_bp=int(document["tax_bp"]),
        category_id=document.get("category_id"),
        stock=int(document["stock"]),
        created_at=as_utc(document["created_at"]),
        updated_at=as_utc(document["updated_at"]),
        add_ons=tuple(AddOn(a["name"], int(a["price_cents"])) for a in document["add_ons"]),
        combos=tuple(Combo(c["product_id"], int(c["quantity"])) for c in document["combos"]),
        image_url=document.get("image_url"),
        image_key=document.get("image_key"),
        # Documents stored before products had the flag are active. bool(): nx-27017 hands
        # booleans back as 0 and 1.
        is_active=bool(document.get("is_active", True)),
        sku=document.get("sku"),
        brand=document.get("brand"),
    )


def _fields(product: Product) -> dict[str, Any]:
    """Everything but the id and created_at, which never change after the insert."""
    return {
        "title": product.title,
        "title_key": product.title.casefold(),
        "description": product.description,
        "price_cents": product.price_cents,
        "tax_bp": product.tax_bp,
        "category_id": product.category_id,
        "stock": product.stock,
        "add_ons": [{"name": a.name, "price_cents": a.price_cents} for a in product.add_ons],
        "combos": [{"product_id": c.product_id, "quantity": c.quantity} for c in product.combos],
        "image_url": product.image_url,
        "image_key": product.image_key,
        "is_active": product.is_active,
        "brand": product.brand,
        "updated_at": product.updated_at,
    }


def _document(product: Product) -> Document:
    document = {"_id": product.id, "id": product.id, "created_at": product.created_at}
    document |= _fields(product)
    if product.sku is not None:  # never stored as null: the sparse unique index skips it
        document["sku"] = product.sku
    return document


def _update(product: Product) -> Document:
    if product.sku is None:
        return {"$set": _fields(product), "$unset": {"sku": ""}}
    return {"$set": {**_fields(product), "sku": product.sku}}


def _filter(query: ProductQuery) -> Document:
    conditions: Document = {}
    if not query.include_inactive:
        # `$ne: False` rather than `True`: a document from before the flag counts as active.
        conditions["is_active"] = {"$ne": False}
    if query.category_id is not None:
        conditions["category_id"] = query.category_id
    price: Document = {}
    if query.min_price_cents is not None:
        price["$gte"] = query.min_price_cents
    if query.max_price_cents is not None:
        price["$lte"] = query.max_price_cents
    if price:
        conditions["price_cents"] = price
    if query.sku is not None:
        conditions["sku"] = query.sku
    if query.brand is not None:
        conditions["brand"] = query.brand
    return conditions


class MongoProductRepository:
    def __init__(self, unit: Unit) -> None:
        self._products = unit.collection(PRODUCTS)

    async def add(self, product: Product) -> None:
        with duplicate_key_as(SkuTaken):
            await self._products.insert_one(_document(product))

    async def add_many(self, products: Sequence[Product]) -> None:
        # One insert per document: the unit of work journals each write by its `_id`.
        for product in products:
            await self.add(product)

    async def update_many(self, products: Sequence[Product]) -> None:
        for product in products:
            await self.update(product)

    async def by_skus(self, skus: Sequence[str]) -> list[Product]:
        if not skus:
            return []
        found = await self._products.find({"sku": {"$in": list(dict.fromkeys(skus))}})
        return [_product(document) for document in found]

    async def after_id(self, after: str | None, limit: int) -> list[Product]:
        query: Document = {} if after is None else {"_id": {"$gt": after}}
        found = await self._products.find(query, sort=[("_id", ASCENDING)], limit=limit)
        return [_product(document) for document in found]

    async def set_stocks(self, levels: Sequence[StockLevel]) -> None:
        for level in levels:
            await self.set_stock(level.product_id, level.stock)

    async def get(self, product_id: str) -> Product | None:
        document = await self._products.find_one({"_id": product_id})
        return _product(document) if document else None

    async def get_many(self, product_ids: Sequence[str]) -> list[Product]:
        if not product_ids:
            return []
        found = await self._products.find({"_id": {"$in": list(product_ids)}})
        return [_product(document) for document in found]

    async def page(self, query: ProductQuery) -> ProductPage:
        conditions = _filter(query)
        total = await self._products.count(conditions)
        found = await self._products.find(
            conditions, sort=_order(query.sort), skip=query.offset, limit=query.limit
        )
        return ProductPage([_product(document) for document in found], total)

    async def update(self, product: Product) -> None:
        with duplicate_key_as(SkuTaken):
            await self._products.update_one({"_id": product.id}, _update(product))

    async def delete(self, product_id: str) -> bool:
        return await self._products.delete_one({"_id": product_id})

    async def set_stock(self, product_id: str, stock: int) -> bool:
        result = await self._products.update_one({"_id": product_id}, {"$set": {"stock": stock}})
        return result.matched_count == 1

    async def clear_category(self, category_id: str, now: datetime) -> list[Product]:
        # One conditional update per product, each answering the document it left: exactly
        # the products this call changed, whatever another writer did in between.
        cleared: list[Product] = []
        for document in await self._products.find({"category_id": category_id}):
            changed = await self._products.find_one_and_update(
                {"_id": document["_id"], "category_id": category_id},
                {"$set": {"category_id": None, "updated_at": now}},
            )
            if changed is not None:
                cleared.append(_product(changed))
        return sorted(cleared, key=lambda product: product.id)


class MongoDeletedCategories:
    def __init__(self, unit: Unit) -> None:
        self._deleted = unit.collection(DELETED_CATEGORIES)

    async def add(self, category_id: str) -> None:
        # An upsert that only inserts: a second add changes nothing and raises nothing.
        await self._deleted.update_one(
            {"_id": category_id}, {"$setOnInsert": {"deleted_at": utc_now()}}, upsert=True
        )

    async def contains(self, category_id: str) -> bool:
        return await self._deleted.find_one({"_id": category_id}) is not None


class MongoBatchEventLog(MongoEventLog):
    async def append_many(self, events: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        # Each event takes its seq from the counter, in order, within the unit of work.
        for event_type, key, data in events:
            await self.append(event_type, key, data)


class ProductsMongoUnitOfWork(MongoUnitOfWork):
    products: MongoProductRepository
    deleted_categories: MongoDeletedCategories
    cursors: MongoCursorStore
    events: MongoBatchEventLog
    stock: OutboxStockHandOver

    def _bind(self, unit: Unit) -> None:
        self.products = MongoProductRepository(unit)
        self.deleted_categories = MongoDeletedCategories(unit)
        self.cursors = MongoCursorStore(unit)
        self.events = MongoBatchEventLog(unit)
        self.stock = OutboxStockHandOver(self.events)
