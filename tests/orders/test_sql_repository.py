"""What only the SQL adapter has: the database's own CHECKs, and migrations that match the
tables, and the customer's page answered from an index. Everything the back ends share is in
test_repository_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from retail.kernel.db import SqlDatabase, engine_for, migrate
from retail.orders.adapters.sql import OrdersUnitOfWork
from retail.orders.adapters.tables import metadata
from retail.orders.config import OrdersSettings
from retail.orders.main import MIGRATIONS
from tests.orders.test_repository_contract import an_order
from tests.support import make_settings


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    """The service's SQL database: a SQLite file, or a PostgreSQL schema when the suite
    runs there."""
    engine = engine_for(make_settings(OrdersSettings, tmp_path, backend="sql"))
    await migrate(engine, MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE orders SET status = 'lost'",
        "UPDATE order_lines SET quantity = 0",
        "UPDATE order_lines SET unit_price_cents = -1",
    ],
)
async def test_the_database_itself_refuses_bad_rows(engine: SqlDatabase, statement: str) -> None:
    sessions = engine
    async with OrdersUnitOfWork(sessions) as uow:
        await uow.orders.add(an_order(1))
        await uow.commit()
    async with OrdersUnitOfWork(sessions) as uow:
        with pytest.raises(IntegrityError, match=r"(?i)check"):
            await uow.session.execute(text(statement))
    async with OrdersUnitOfWork(sessions, readonly=True) as uow:
        assert await uow.orders.get(an_order(1).id) == an_order(1)


async def test_the_migration_matches_the_tables(engine: SqlDatabase) -> None:
    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    assert await engine.run_sync(differences) == []


@pytest.mark.parametrize(
    "where",
    [
        # The customer's own page: newest first, failed attempts hidden, counted from the index.
        "WHERE user_id = 'u' AND status != 'failed'",
        "WHERE user_id = 'u' AND status = 'cancelled'",
        "WHERE user_id = 'u'",
    ],
)
async def test_the_customers_page_is_read_from_one_index(engine: SqlDatabase, where: str) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans are checked on SQLite")

    async def plan_of(sql: str) -> str:
        explain = text(f"EXPLAIN QUERY PLAN {sql}")
        rows = await engine.run_sync(lambda connection: connection.execute(explain).all())
        return " ".join(str(row[-1]) for row in rows)

    # Constant fragments from this module, not input.
    page = await plan_of(
        f"SELECT * FROM orders {where} ORDER BY created_at DESC, id DESC LIMIT 10 OFFSET 20"  # noqa: S608
    )
    assert "ix_orders_user_created" in page, page
    assert "TEMP B-TREE" not in page, page
    count = await plan_of(f"SELECT count(*) FROM orders {where}")  # noqa: S608
    assert "COVERING INDEX ix_orders_user_created" in count, count
