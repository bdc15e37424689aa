"""SQL adapter: tables, repositories (domain objects in and out), the unit of work.

The indexes serve the list queries: each sort (newest, price, title) has an index ending in
`id`, the tie-breaker, alone and behind `category_id` for the category filter; the price
indexes also serve the `min_price`/`max_price` ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ColumnElement,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UnaryExpression,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from retail.kernel.db import SqlUnitOfWork, UtcDateTime, rows_affected
from retail.kernel.events import SqlCursorStore, SqlEventLog, cursor_table, outbox_table
from retail.products.adapters.outbox import OutboxStockHandOver
from retail.products.domain import (
    AddOn,
    Combo,
    Product,
    ProductPage,
    ProductQuery,
    ProductSort,
)

metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("title", String(200), nullable=False),
    # Sorting by title is case-insensitive: on this casefolded copy, which an index can serve.
    Column("title_key", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("price_cents", BigInteger, nullable=False),
    Column("tax_bp", Integer, nullable=False),
    Column("category_id", String(64), nullable=True),
    Column("stock", Integer, nullable=False),
    Column("add_ons", JSON, nullable=False),
    Column("combos", JSON, nullable=False),
    Column("image_url", String(2048), nullable=True),
    Column("image_key", String(255), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    CheckConstraint("price_cents > 0", name="ck_products_price_positive"),
    CheckConstraint("tax_bp >= 0 AND tax_bp <= 10000", name="ck_products_tax_range"),
    CheckConstraint("stock >= 0", name="ck_products_stock_not_negative"),
    Index("ix_products_created", "created_at", "id"),
    Index("ix_products_price", "price_cents", "id"),
    Index("ix_products_title", "title_key", "id"),
    Index("ix_products_category_created", "category_id", "created_at", "id"),
    Index("ix_products_category_price", "category_id", "price_cents", "id"),
    Index("ix_products_category_title", "category_id", "title_key", "id"),
)
deleted_categories = Table(
    "deleted_categories",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("deleted_at", UtcDateTime(), nullable=False),
)
outbox = outbox_table(metadata)
feed_cursors = cursor_table(metadata)

_ORDER: dict[ProductSort, tuple[UnaryExpression[Any], ...]] = {
    ProductSort.NEWEST: (products.c.created_at.desc(), products.c.id.desc()),
    ProductSort.PRICE_ASC: (products.c.price_cents.asc(), products.c.id.asc()),
    ProductSort.PRICE_DESC: (products.c.price_cents.desc(), products.c.id.desc()),
    ProductSort.TITLE: (products.c.title_key.asc(), products.c.id.asc()),
}


def _product(row: RowMapping) -> Product:
    return Product(
        id=row["id"],
        title=row["title"],
        description=row["description"],
        price_cents=row["price_cents"],
        tax_bp=row["tax_bp"],
        category_id=row["category_id"],
        stock=row["stock"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        add_ons=tuple(AddOn(a["name"], a["price_cents"]) for a in row["add_ons"]),
        combos=tuple(Combo(c["product_id"], c["quantity"]) for c in row["combos"]),
        image_url=row["image_url"],
        image_key=row["image_key"],
    )


def _columns(product: Product) -> dict[str, Any]:
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
        "updated_at": product.updated_at,
    }


def _filters(query: ProductQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.category_id is not None:
        conditions.append(products.c.category_id == query.category_id)
    if query.min_price_cents is not None:
        conditions.append(products.c.price_cents >= query.min_price_cents)
    if query.max_price_cents is not None:
        conditions.append(products.c.price_cents <= query.max_price_cents)
    return conditions


class SqlProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, product: Product) -> None:
        values = {"id": product.id, "created_at": product.created_at, **_columns(product)}
        await self._session.execute(insert(products).values(values))

    async def get(self, product_id: str) -> Product | None:
        result = await self._session.execute(select(products).where(products.c.id == product_id))
        row = result.mappings().first()
        return _product(row) if row else None

    async def get_many(self, product_ids: Sequence[str]) -> list[Product]:
        if not product_ids:
            return []
        result = await self._session.execute(
            select(products).where(products.c.id.in_(list(product_ids)))
        )
        return [_product(row) for row in result.mappings()]

    async def page(self, query: ProductQuery) -> ProductPage:
        conditions = _filters(query)
        total = await self._session.scalar(
            select(func.count()).select_from(products).where(*conditions)
        )
        result = await self._session.execute(
            select(products)
            .where(*conditions)
            .order_by(*_ORDER[query.sort])
            .offset(query.offset)
            .limit(query.limit)
        )
        return ProductPage([_product(row) for row in result.mappings()], int(total or 0))

    async def update(self, product: Product) -> None:
        statement = update(products).where(products.c.id == product.id)
        await self._session.execute(statement.values(_columns(product)))

    async def delete(self, product_id: str) -> bool:
        result = await self._session.execute(delete(products).where(products.c.id == product_id))
        return rows_affected(result) > 0

    async def set_stock(self, product_id: str, stock: int) -> bool:
        result = await self._session.execute(
            update(products).where(products.c.id == product_id).values(stock=stock)
        )
        return rows_affected(result) > 0

    async def clear_category(self, category_id: str, now: datetime) -> list[Product]:
        # RETURNING: exactly the rows this statement changed, with no window for another
        # writer between finding them and clearing them.
        result = await self._session.execute(
            update(products)
            .where(products.c.category_id == category_id)
            .values(category_id=None, updated_at=now)
            .returning(*products.c)
        )
        return sorted((_product(row) for row in result.mappings()), key=lambda p: p.id)


class SqlDeletedCategories:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, category_id: str) -> None:
        if not await self.contains(category_id):
            await self._session.execute(
                insert(deleted_categories).values(id=category_id, deleted_at=datetime.now(UTC))
            )

    async def contains(self, category_id: str) -> bool:
        found = await self._session.scalar(
            select(deleted_categories.c.id).where(deleted_categories.c.id == category_id)
        )
        return found is not None


class SqlFeedCursors(SqlCursorStore):
    async def advance_from(self, feed: str, expected: int, seq: int) -> bool:
        t = feed_cursors
        result = await self._session.execute(
            update(t).where(t.c.feed == feed, t.c.seq == expected).values(seq=seq)
        )
        if rows_affected(result) == 1:
            return True
        if expected != 0:
            return False
        try:  # the feed's first batch: the primary key lets only one process insert it
            async with self._session.begin_nested():
                await self._session.execute(insert(t).values(feed=feed, seq=seq))
        except IntegrityError:
            return False
        return True


class ProductsUnitOfWork(SqlUnitOfWork):
    products: SqlProductRepository
    deleted_categories: SqlDeletedCategories
    cursors: SqlFeedCursors
    events: SqlEventLog
    stock: OutboxStockHandOver

    def _bind(self, session: AsyncSession) -> None:
        self.products = SqlProductRepository(session)
        self.deleted_categories = SqlDeletedCategories(session)
        self.cursors = SqlFeedCursors(session, feed_cursors)
        self.events = SqlEventLog(session, outbox)
        self.stock = OutboxStockHandOver(self.events)
