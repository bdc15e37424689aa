"""What only the SQL adapter has: the database's own CHECKs, migrations that match the
tables, and list queries that SQLite answers from an index. Everything the back ends share
is in test_repository_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from retail.kernel.db import SqlDatabase, engine_for, migrate
from retail.products.adapters.sql import (
    ProductsUnitOfWork,
    _page_params,
    _page_statements,
    metadata,
)
from retail.products.config import ProductsSettings
from retail.products.domain import ProductQuery, ProductSort, SortKey
from retail.products.main import MIGRATIONS
from tests.products.test_repository_contract import product
from tests.support import make_settings, migrate_to, rows_of


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    """The service's SQL database: a SQLite file, or a PostgreSQL schema when the suite
    runs there."""
    engine = engine_for(make_settings(ProductsSettings, tmp_path, backend="sql"))
    await migrate(engine, MIGRATIONS)
    yield engine
    await engine.dispose()


async def test_the_migration_matches_the_tables(engine: SqlDatabase) -> None:
    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    assert await engine.run_sync(differences) == []


@pytest.mark.parametrize(
    "change", ["price_cents = 0", "tax_bp = 10001", "tax_bp = -1", "stock = -1"]
)
async def test_the_database_itself_refuses_impossible_values(
    engine: SqlDatabase, change: str
) -> None:
    sessions = engine
    made = product(1, stock=2)
    async with ProductsUnitOfWork(sessions) as uow:
        await uow.products.add(made)
        await uow.commit()
    async with ProductsUnitOfWork(sessions) as uow:
        with pytest.raises(IntegrityError, match=r"(?i)check"):
            # Constant fragments from this module, not input.
            await uow.session.execute(text(f"UPDATE products SET {change}"))  # noqa: S608
    async with ProductsUnitOfWork(sessions, readonly=True) as uow:
        assert await uow.products.get(made.id) == made


ORDERS = {
    "newest": "ORDER BY created_at DESC, id DESC",
    "oldest": "ORDER BY created_at, id",
    "price_asc": "ORDER BY price_cents, id",
    "price_desc": "ORDER BY price_cents DESC, id DESC",
    "title": "ORDER BY title_key, id",
    "title_desc": "ORDER BY title_key DESC, id DESC",
}
# What shoppers' lists ask (active products only; the adapter's `IS 1`), and admins' lists
# with include_inactive (no filter).
ACTIVE = "is_active IS 1"
LIST_QUERIES = [
    *((f"{name}", f"WHERE {ACTIVE}", order) for name, order in ORDERS.items()),
    *((f"{name}-all", "", order) for name, order in ORDERS.items()),
    *(
        (f"{name}-in-category", f"WHERE {ACTIVE} AND category_id = 'c'", order)
        for name, order in ORDERS.items()
    ),
    ("price-range", f"WHERE {ACTIVE} AND price_cents BETWEEN 100 AND 900", ORDERS["price_asc"]),
    ("price-range-desc", f"WHERE {ACTIVE} AND price_cents >= 100", ORDERS["price_desc"]),
]


@pytest.mark.parametrize(
    ("where", "order"), [q[1:] for q in LIST_QUERIES], ids=[q[0] for q in LIST_QUERIES]
)
async def test_list_queries_use_an_index_not_a_sort(
    engine: SqlDatabase, where: str, order: str
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite")
    # Constant fragments from this module, not input.
    explain = text(f"EXPLAIN QUERY PLAN SELECT * FROM products {where} {order} LIMIT 20")  # noqa: S608
    plan = await engine.run_sync(lambda connection: connection.execute(explain).all())
    details = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX" in details, details
    assert "TEMP B-TREE" not in details, details


SORTS = [ProductSort(key, descending) for key in SortKey for descending in (False, True)]
ADAPTER_QUERIES = [
    *(ProductQuery(sort=sort) for sort in SORTS),
    *(ProductQuery(sort=sort, include_inactive=True) for sort in SORTS),
    *(ProductQuery(sort=sort, category_id="c") for sort in SORTS),
    ProductQuery(sort=ProductSort.PRICE_ASC, min_price_cents=100, max_price_cents=900),
    ProductQuery(sort=ProductSort.PRICE_DESC, min_price_cents=100),
]


@pytest.mark.parametrize("query", ADAPTER_QUERIES)
async def test_the_adapters_own_list_statements_use_an_index(
    engine: SqlDatabase, query: ProductQuery
) -> None:
    # The statements page() runs, as compiled once per shape with bound parameters.
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite")
    shape, params = _page_params(query)
    statements = _page_statements(shape)
    checks = [(statements.rows, "USING INDEX")]
    if shape.min_price or shape.max_price:  # counted from the price index
        checks.append((statements.total, "COVERING INDEX"))
    elif shape.active_only:  # summed from the kept counts (at most one per category)
        checks.append((statements.total, "SEARCH product_counts USING"))
    else:  # every kept count: one row per category and activity
        checks.append((statements.total, "product_counts"))
    for prepared, wanted in checks:
        plan = prepared.plan(engine.dialect, frozenset(params))
        assert plan is not None
        explain, values = f"EXPLAIN QUERY PLAN {plan.sql}", tuple(plan.bind(params))

        def explained(
            connection: Connection, sql: str = explain, bound: tuple[object, ...] = values
        ) -> list[Row[Any]]:
            return list(connection.exec_driver_sql(sql, bound).all())

        rows = await engine.run_sync(explained)
        details = " ".join(str(row[-1]) for row in rows)
        assert wanted in details, details
        assert "TEMP B-TREE" not in details, details


_KEPT = "SELECT is_active, category_key, n FROM product_counts WHERE n != 0 ORDER BY 1, 2"
_COUNTED = (
    "SELECT is_active, coalesce(category_id, ''), count(*) FROM products"
    " GROUP BY is_active, coalesce(category_id, '') ORDER BY 1, 2"
)


async def _kept_counts(engine: SqlDatabase) -> list[tuple[bool, str, int]]:
    """The kept counts that are not zero, once they are checked against a live count."""
    kept, counted = await rows_of(engine, _KEPT, _COUNTED)
    assert kept == counted
    return [(bool(active), key, n) for active, key, n in kept]


async def test_the_counts_follow_every_write_to_products_whoever_makes_it(
    engine: SqlDatabase,
) -> None:
    async with ProductsUnitOfWork(engine) as uow:
        await uow.products.add_many(
            [product(n, category_id="a" if n < 5 else None) for n in range(1, 9)]
        )
        await uow.commit()
    async with ProductsUnitOfWork(engine) as uow:
        # Writes outside the repository: an operator's SQL moving, hiding, removing and
        # re-setting rows to what they already were.
        for sql in [
            "UPDATE products SET category_id = 'b' WHERE price_cents = 100",
            "UPDATE products SET is_active = false WHERE price_cents IN (200, 500)",
            "UPDATE products SET category_id = NULL WHERE price_cents = 300",
            "DELETE FROM products WHERE price_cents = 600",
            "UPDATE products SET category_id = category_id, is_active = is_active",
            "UPDATE products SET stock = 5, price_cents = price_cents + 1",
        ]:
            await uow.session.execute(text(sql))
        await uow.commit()
    assert await _kept_counts(engine) == [
        (False, "", 1),
        (False, "a", 1),
        (True, "", 3),
        (True, "a", 1),
        (True, "b", 1),
    ]


async def test_the_migration_counts_the_products_already_there(engine: SqlDatabase) -> None:
    async with ProductsUnitOfWork(engine) as uow:
        await uow.products.add_many(
            [product(n, category_id="a" if n % 2 else None, is_active=n != 3) for n in range(1, 6)]
        )
        await uow.commit()
    await migrate_to(engine, MIGRATIONS, "0003")
    async with ProductsUnitOfWork(engine) as uow:  # a product written before the counts exist
        await uow.products.add(product(9, category_id="a"))
        await uow.commit()
    await migrate_to(engine, MIGRATIONS, "head")
    assert await _kept_counts(engine) == [
        (False, "a", 1),
        (True, "", 2),
        (True, "a", 3),
    ]
