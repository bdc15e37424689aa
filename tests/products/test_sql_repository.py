"""The SQL adapter against a migrated database (SQLite, or PostgreSQL when configured):
filters, sorts, pages, the stock read model, category clearing, cursors, the indexes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from retail.kernel.db import engine_for, migrate, session_factory
from retail.products.adapters.sql import ProductsUnitOfWork
from retail.products.config import ProductsSettings
from retail.products.domain import AddOn, Combo, Product, ProductQuery, ProductSort
from retail.products.main import MIGRATIONS
from tests.support import make_settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = engine_for(make_settings(ProductsSettings, tmp_path))
    await migrate(engine, MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


def product(n: int, **fields: object) -> Product:
    values: dict[str, object] = {
        "id": f"{n:08d}-0000-4000-8000-{uuid.uuid4().hex[:12]}",
        "title": f"Product {n}",
        "description": "",
        "price_cents": 100 * n,
        "tax_bp": 2000,
        "category_id": None,
        "stock": 0,
        "created_at": T0 + timedelta(minutes=n),
        "updated_at": T0 + timedelta(minutes=n),
        **fields,
    }
    return Product(**values)  # type: ignore[arg-type]


async def store(sessions: async_sessionmaker[AsyncSession], *products: Product) -> None:
    async with ProductsUnitOfWork(sessions) as uow:
        for p in products:
            await uow.products.add(p)
        await uow.commit()


async def page(sessions: async_sessionmaker[AsyncSession], **query: object) -> list[Product]:
    async with ProductsUnitOfWork(sessions, readonly=True) as uow:
        return (await uow.products.page(ProductQuery(**query))).items  # type: ignore[arg-type]


async def test_a_product_round_trips(sessions: async_sessionmaker[AsyncSession]) -> None:
    made = product(
        1,
        category_id="c1",
        add_ons=(AddOn("Wrap", 150), AddOn("Warranty", 0)),
        combos=(Combo("other", 2),),
        image_url="https://img/x.png",
        image_key="x.png",
    )
    await store(sessions, made)
    async with ProductsUnitOfWork(sessions, readonly=True) as uow:
        assert await uow.products.get(made.id) == made
        assert await uow.products.get("ghost") is None
        assert await uow.products.get_many([made.id, "ghost"]) == [made]
        assert await uow.products.get_many([]) == []


async def test_sorts_break_ties_by_id(sessions: async_sessionmaker[AsyncSession]) -> None:
    same = [product(1, price_cents=500, title="same", created_at=T0) for _ in range(3)]
    by_id = sorted(p.id for p in same)
    await store(sessions, *same, product(2, price_cents=100, title="Apple"))
    newest = await page(sessions, sort=ProductSort.NEWEST)
    assert [p.id for p in newest[1:]] == by_id[::-1]
    cheap = await page(sessions, sort=ProductSort.PRICE_ASC)
    assert [p.id for p in cheap[1:]] == by_id
    dear = await page(sessions, sort=ProductSort.PRICE_DESC)
    assert [p.id for p in dear[:3]] == by_id[::-1]
    titled = await page(sessions, sort=ProductSort.TITLE)
    assert titled[0].title == "Apple"
    assert [p.id for p in titled[1:]] == by_id


async def test_title_sort_ignores_case(sessions: async_sessionmaker[AsyncSession]) -> None:
    await store(
        sessions, product(1, title="banana"), product(2, title="Apple"), product(3, title="cherry")
    )
    assert [p.title for p in await page(sessions, sort=ProductSort.TITLE)] == [
        "Apple",
        "banana",
        "cherry",
    ]


async def test_filters_and_pages(sessions: async_sessionmaker[AsyncSession]) -> None:
    await store(sessions, *(product(n, category_id="a" if n % 2 else "b") for n in range(1, 11)))
    in_a = await page(sessions, category_id="a", sort=ProductSort.PRICE_ASC)
    assert [p.price_cents for p in in_a] == [100, 300, 500, 700, 900]
    ranged = await page(
        sessions, min_price_cents=300, max_price_cents=600, sort=ProductSort.PRICE_ASC
    )
    assert [p.price_cents for p in ranged] == [300, 400, 500, 600]
    second = await page(sessions, offset=3, limit=3, sort=ProductSort.NEWEST)
    assert [p.price_cents for p in second] == [700, 600, 500]
    async with ProductsUnitOfWork(sessions, readonly=True) as uow:
        counted = await uow.products.page(ProductQuery(category_id="b", limit=1))
    assert counted.total == 5
    assert len(counted.items) == 1


async def test_stock_read_model_updates(sessions: async_sessionmaker[AsyncSession]) -> None:
    made = product(1, stock=3)
    await store(sessions, made)
    async with ProductsUnitOfWork(sessions) as uow:
        assert await uow.products.set_stock(made.id, 8)
        assert not await uow.products.set_stock("ghost", 8)
        await uow.commit()
    async with ProductsUnitOfWork(sessions, readonly=True) as uow:
        found = await uow.products.get(made.id)
    assert found is not None
    assert found.stock == 8


async def test_clear_category_returns_what_it_changed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    a1, a2, b = (
        product(1, category_id="a"),
        product(2, category_id="a"),
        product(3, category_id="b"),
    )
    await store(sessions, a1, a2, b)
    now = T0 + timedelta(days=1)
    async with ProductsUnitOfWork(sessions) as uow:
        cleared = await uow.products.clear_category("a", now)
        await uow.deleted_categories.add("a")
        await uow.deleted_categories.add("a")  # idempotent
        await uow.commit()
    assert sorted(p.id for p in cleared) == sorted([a1.id, a2.id])
    assert all(p.category_id is None and p.updated_at == now for p in cleared)
    assert [p.id for p in await page(sessions, category_id="b")] == [b.id]
    assert await page(sessions, category_id="a") == []
    async with ProductsUnitOfWork(sessions, readonly=True) as uow:
        assert await uow.deleted_categories.contains("a")
        assert not await uow.deleted_categories.contains("b")


async def test_update_and_delete(sessions: async_sessionmaker[AsyncSession]) -> None:
    made = product(1)
    await store(sessions, made)
    changed = replace(made, title="New", price_cents=42, combos=(Combo("x", 1),))
    async with ProductsUnitOfWork(sessions) as uow:
        await uow.products.update(changed)
        await uow.commit()
    async with ProductsUnitOfWork(sessions) as uow:
        assert await uow.products.get(made.id) == changed
        assert await uow.products.delete(made.id)
        assert not await uow.products.delete(made.id)
        await uow.commit()


async def test_nothing_is_kept_without_a_commit(sessions: async_sessionmaker[AsyncSession]) -> None:
    made = product(1)
    async with ProductsUnitOfWork(sessions) as uow:
        await uow.products.add(made)
        await uow.stock.product_created(made, 4)
    async with ProductsUnitOfWork(sessions, readonly=True) as uow:
        assert await uow.products.get(made.id) is None
        assert await uow.events.read_after(0, 10) == []


async def test_hand_over_writes_the_stock_into_the_outbox(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    made = product(1)
    async with ProductsUnitOfWork(sessions) as uow:
        await uow.products.add(made)
        await uow.stock.product_created(made, 4)
        await uow.stock.product_updated(made, 6)
        await uow.stock.product_updated(made)
        await uow.commit()
    async with ProductsUnitOfWork(sessions, readonly=True) as uow:
        created, set_, plain = await uow.events.read_after(0, 10)
    assert (created.type, created.data["initial_stock"]) == ("product.created", 4)
    assert (set_.type, set_.data["stock_set"]) == ("product.updated", 6)
    assert "stock_set" not in plain.data
    assert plain.data["price_cents"] == 100


async def test_cursors_advance_only_from_where_they_were(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with ProductsUnitOfWork(sessions) as uow:
        assert await uow.cursors.get("inventory") == 0
        assert await uow.cursors.advance_from("inventory", 0, 5)
        assert not await uow.cursors.advance_from("inventory", 0, 7)
        assert await uow.cursors.advance_from("inventory", 5, 9)
        await uow.commit()
    async with ProductsUnitOfWork(sessions, readonly=True) as uow:
        assert await uow.cursors.get("inventory") == 9
        assert await uow.cursors.get("categories") == 0


ORDERS = {
    "newest": "ORDER BY created_at DESC, id DESC",
    "price_asc": "ORDER BY price_cents, id",
    "price_desc": "ORDER BY price_cents DESC, id DESC",
    "title": "ORDER BY title_key, id",
}
LIST_QUERIES = [
    *((f"{name}", "", order) for name, order in ORDERS.items()),
    *((f"{name}-in-category", "WHERE category_id = 'c'", order) for name, order in ORDERS.items()),
    ("price-range", "WHERE price_cents BETWEEN 100 AND 900", ORDERS["price_asc"]),
    ("price-range-desc", "WHERE price_cents >= 100", ORDERS["price_desc"]),
]


@pytest.mark.parametrize(
    ("where", "order"), [q[1:] for q in LIST_QUERIES], ids=[q[0] for q in LIST_QUERIES]
)
async def test_list_queries_use_an_index_not_a_sort(
    engine: AsyncEngine, where: str, order: str
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite")
    async with engine.connect() as connection:
        plan = await connection.execute(
            # Constant fragments from this module, not input.
            text(f"EXPLAIN QUERY PLAN SELECT * FROM products {where} {order} LIMIT 20")  # noqa: S608
        )
        details = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX" in details, details
    assert "TEMP B-TREE" not in details, details
