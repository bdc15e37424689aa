"""SQL adapter: tables, repositories (domain objects in and out), the unit of work.

The indexes serve the list queries: each sort key (created_at, price, title) has an index
`(key, id)`, alone and behind `category_id` for the category filter, walked forwards for
ascending and backwards for descending; the price indexes also serve the
`min_price`/`max_price` ranges. `is_active` trails each, so the shoppers' filter is decided
from the index. A list's total is read from `product_counts`, which triggers keep (migration
0004); with a price, sku or brand filter it is counted from the same index.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ColumnElement,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UnaryExpression,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from retail.kernel.db import (
    SqlSession,
    SqlUnitOfWork,
    UtcDateTime,
    is_unique_violation,
    rows_affected,
)
from retail.kernel.events import SqlCursorStore, SqlEventLog, cursor_table, outbox_table
from retail.kernel.prepared import Prepared
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
    Column("is_active", Boolean, nullable=False, server_default=true()),
    Column("sku", String(64), nullable=True),
    Column("brand", String(100), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    CheckConstraint("price_cents > 0", name="ck_products_price_positive"),
    CheckConstraint("tax_bp >= 0 AND tax_bp <= 10000", name="ck_products_tax_range"),
    CheckConstraint("stock >= 0", name="ck_products_stock_not_negative"),
    Index("ix_products_created", "created_at", "id", "is_active"),
    Index("ix_products_price", "price_cents", "id", "is_active"),
    Index("ix_products_title", "title_key", "id", "is_active"),
    Index("ix_products_category_created", "category_id", "created_at", "id", "is_active"),
    Index("ix_products_category_price", "category_id", "price_cents", "id", "is_active"),
    Index("ix_products_category_title", "category_id", "title_key", "id", "is_active"),
    # Unique where set: NULLs (no sku) never collide, on SQLite and PostgreSQL alike.
    Index("ux_products_sku", "sku", unique=True),
    Index("ix_products_brand", "brand", "created_at", "id", "is_active"),
)
# Products counted by (is_active, category; '' for none), kept by triggers on `products`
# (migration 0004): a list page's total without counting its products.
product_counts = Table(
    "product_counts",
    metadata,
    Column("is_active", Boolean, nullable=False),
    Column("category_key", String(64), nullable=False),
    Column("n", Integer, nullable=False),
    PrimaryKeyConstraint("is_active", "category_key", name="pk_product_counts"),
)
deleted_categories = Table(
    "deleted_categories",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("deleted_at", UtcDateTime(), nullable=False),
)
outbox = outbox_table(metadata)
feed_cursors = cursor_table(metadata)

_SORT_COLUMNS = {
    SortKey.CREATED_AT: products.c.created_at,
    SortKey.PRICE: products.c.price_cents,
    SortKey.TITLE: products.c.title_key,
}


def _order(sort: ProductSort) -> tuple[UnaryExpression[Any], ...]:
    # The id goes the key's way: (key, id) indexes are then walked one way or the other.
    columns = (_SORT_COLUMNS[sort.key], products.c.id)
    return tuple(c.desc() if sort.descending else c.asc() for c in columns)


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
        is_active=row["is_active"],
        sku=row["sku"],
        brand=row["brand"],
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
        "is_active": product.is_active,
        "sku": product.sku,
        "brand": product.brand,
        "updated_at": product.updated_at,
    }


class _PageShape(NamedTuple):
    """Which filters a list query has, and its order; the filters' values travel as
    parameters, so each shape's statements are built and compiled once."""

    active_only: bool
    category: bool
    min_price: bool
    max_price: bool
    sku: bool
    brand: bool
    sort: ProductSort


class _PageStatements(NamedTuple):
    total: Prepared
    rows: Prepared


# Each filter: whether the query has it, its condition, and the parameter that carries it.
_FILTERS: tuple[tuple[str, ColumnElement[bool]], ...] = (
    ("category", products.c.category_id == bindparam("p_category")),
    ("min_price", products.c.price_cents >= bindparam("p_min_price")),
    ("max_price", products.c.price_cents <= bindparam("p_max_price")),
    ("sku", products.c.sku == bindparam("p_sku")),
    ("brand", products.c.brand == bindparam("p_brand")),
)


def _page_params(query: ProductQuery) -> tuple[_PageShape, dict[str, Any]]:
    values = {
        "category": query.category_id,
        "min_price": query.min_price_cents,
        "max_price": query.max_price_cents,
        "sku": query.sku,
        "brand": query.brand,
    }
    shape = _PageShape(
        active_only=not query.include_inactive,
        category=query.category_id is not None,
        min_price=query.min_price_cents is not None,
        max_price=query.max_price_cents is not None,
        sku=query.sku is not None,
        brand=query.brand is not None,
        sort=query.sort,
    )
    params = {f"p_{name}": value for name, value in values.items() if value is not None}
    return shape, params | {"p_offset": query.offset, "p_limit": query.limit}


@functools.cache
def _page_statements(shape: _PageShape) -> _PageStatements:
    """A list page's two statements, built once per shape (a few hundred at most): the
    total and the rows. SQLAlchemy building, caching and compiling them on every request
    was about a fifth of an uncached list page's CPU. Without a price, sku or brand filter,
    the total is read from `product_counts` instead of counting the products."""
    conditions: list[ColumnElement[bool]] = [true()]
    if shape.active_only:
        conditions.append(products.c.is_active.is_(True))
    conditions += [condition for name, condition in _FILTERS if getattr(shape, name)]
    if shape.sku or shape.brand or shape.min_price or shape.max_price:
        total = select(func.count()).select_from(products).where(*conditions)
    else:  # the storefront's lists: a sum of kept counts (one per category; two at most in one)
        kept: list[ColumnElement[bool]] = [true()]
        if shape.active_only:
            kept.append(product_counts.c.is_active.is_(True))
        if shape.category:
            kept.append(product_counts.c.category_key == bindparam("p_category"))
        total = select(func.coalesce(func.sum(product_counts.c.n), 0)).where(*kept)
    rows = (
        select(products)
        .where(*conditions)
        .order_by(*_order(shape.sort))
        .offset(bindparam("p_offset"))
        .limit(bindparam("p_limit"))
    )
    return _PageStatements(Prepared(total), Prepared(rows))


# The by-id read, built once: the hot path of the catalogue and of every order's lookup.
_BY_ID = Prepared(select(products).where(products.c.id == bindparam("p_id")))
# Up to this many ids, a lookup is that many prepared by-id reads: an IN list cannot be
# prepared, and SQLAlchemy building one costs more than several indexed reads.
_BY_ID_LOOKUPS = 8
# Bound parameters per IN list: well under every back end's limit.
_IN_CHUNK = 500
_UPDATE_BY_ID = update(products).where(products.c.id == bindparam("p_id"))


def _sku_taken(exc: IntegrityError) -> None:
    if is_unique_violation(exc) and "sku" in str(exc.orig).lower():
        raise SkuTaken() from None


class SqlProductRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, product: Product) -> None:
        await self.add_many([product])

    async def add_many(self, many: Sequence[Product]) -> None:
        if not many:
            return
        rows = [{"id": p.id, "created_at": p.created_at, **_columns(p)} for p in many]
        try:
            await self._session.execute(insert(products), rows)
        except IntegrityError as exc:
            _sku_taken(exc)
            raise

    async def update_many(self, many: Sequence[Product]) -> None:
        if not many:
            return
        # Column names set the values; `p_id` (not a column's name) picks the row.
        rows = [{"p_id": p.id, **_columns(p)} for p in many]
        try:
            await self._session.execute(_UPDATE_BY_ID, rows)
        except IntegrityError as exc:
            _sku_taken(exc)
            raise

    async def by_skus(self, skus: Sequence[str]) -> list[Product]:
        wanted = list(dict.fromkeys(skus))
        found: list[Product] = []
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            result = await self._session.execute(select(products).where(products.c.sku.in_(chunk)))
            found += [_product(row) for row in result.mappings()]
        return found

    async def after_id(self, after: str | None, limit: int) -> list[Product]:
        statement = select(products).order_by(products.c.id).limit(limit)
        if after is not None:
            statement = statement.where(products.c.id > after)
        result = await self._session.execute(statement)
        return [_product(row) for row in result.mappings()]

    async def set_stocks(self, levels: Sequence[StockLevel]) -> None:
        if levels:
            rows = [{"p_id": level.product_id, "stock": level.stock} for level in levels]
            await self._session.execute(_UPDATE_BY_ID, rows)

    async def get(self, product_id: str) -> Product | None:
        result = await self._session.execute(_BY_ID, {"p_id": product_id})
        row = result.mappings().first()
        return _product(row) if row else None

    async def get_many(self, product_ids: Sequence[str]) -> list[Product]:
        if not product_ids:
            return []
        wanted = list(dict.fromkeys(product_ids))
        if len(wanted) <= _BY_ID_LOOKUPS:
            each = [await self.get(product_id) for product_id in wanted]
            return [product for product in each if product is not None]
        found: list[Product] = []
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            result = await self._session.execute(select(products).where(products.c.id.in_(chunk)))
            found += [_product(row) for row in result.mappings()]
        return found

    async def page(self, query: ProductQuery) -> ProductPage:
        shape, params = _page_params(query)
        statements = _page_statements(shape)
        total = await self._session.scalar(statements.total, params)
        result = await self._session.execute(statements.rows, params)
        return ProductPage([_product(row) for row in result.mappings()], int(total or 0))

    async def update(self, product: Product) -> None:
        statement = update(products).where(products.c.id == product.id)
        try:
            await self._session.execute(statement.values(_columns(product)))
        except IntegrityError as exc:
            _sku_taken(exc)
            raise

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
    def __init__(self, session: SqlSession) -> None:
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


class ProductsUnitOfWork(SqlUnitOfWork):
    products: SqlProductRepository
    deleted_categories: SqlDeletedCategories
    cursors: SqlCursorStore
    events: SqlEventLog
    stock: OutboxStockHandOver

    def _bind(self, session: SqlSession) -> None:
        self.products = SqlProductRepository(session)
        self.deleted_categories = SqlDeletedCategories(session)
        self.cursors = SqlCursorStore(session, feed_cursors)
        self.events = SqlEventLog(session, outbox)
        self.stock = OutboxStockHandOver(self.events)
