"""What only the SQL adapter has: the database's own CHECKs, migrations that match the tables,
the counts the database keeps by trigger, and the customer's page answered from an index.
Everything the back ends share is in test_repository_contract.py."""

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
from tests.orders.test_repository_contract import T0, an_order
from tests.support import make_settings, migrate_to, rows_of


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


_KEPT = "SELECT user_id, status, n FROM order_counts WHERE n != 0 ORDER BY user_id, status"
_COUNTED = (
    "SELECT user_id, status, count(*) FROM orders GROUP BY user_id, status ORDER BY user_id, status"
)


async def test_the_counts_follow_every_write_to_orders_whoever_makes_it(
    engine: SqlDatabase,
) -> None:
    async with OrdersUnitOfWork(engine) as uow:
        for n in range(8):
            await uow.orders.add(an_order(n, status="pending", user="alice" if n < 6 else "bob"))
        await uow.commit()
    async with OrdersUnitOfWork(engine) as uow:
        assert await uow.orders.transition(an_order(0).id, "pending", "confirmed", T0)
        assert await uow.orders.transition(an_order(1).id, "pending", "failed", T0)
        assert not await uow.orders.transition(an_order(1).id, "pending", "cancelled", T0)
        # Writes outside the repository: an operator's SQL, a row removed, a status set to
        # what it already was, an order moved to another customer.
        for sql, n in [
            ("UPDATE orders SET status = 'shipped' WHERE id = :id", 0),
            ("DELETE FROM orders WHERE id = :id", 2),
            ("UPDATE orders SET status = status WHERE id != :id", 0),
            ("UPDATE orders SET user_id = 'carol' WHERE id = :id", 7),
        ]:
            await uow.session.execute(text(sql), {"id": an_order(n).id})
        await uow.commit()
    kept, counted = await rows_of(engine, _KEPT, _COUNTED)
    assert kept == counted
    assert kept == [
        ("alice", "failed", 1),
        ("alice", "pending", 3),
        ("alice", "shipped", 1),
        ("bob", "pending", 1),
        ("carol", "pending", 1),
    ]


async def test_the_migration_counts_the_orders_already_there(engine: SqlDatabase) -> None:
    async with OrdersUnitOfWork(engine) as uow:
        for n, status in enumerate(["pending", "confirmed", "confirmed", "failed"]):
            await uow.orders.add(an_order(n, status=status, user="alice" if n else "bob"))  # type: ignore[arg-type]
        await uow.commit()
    await migrate_to(engine, MIGRATIONS, "0002")
    async with OrdersUnitOfWork(engine) as uow:  # an order written before the counts exist
        await uow.orders.add(an_order(9, status="pending"))
        await uow.commit()
    await migrate_to(engine, MIGRATIONS, "head")
    kept, counted = await rows_of(engine, _KEPT, _COUNTED)
    assert kept == counted
    assert kept == [
        ("alice", "confirmed", 2),
        ("alice", "failed", 1),
        ("alice", "pending", 1),
        ("bob", "pending", 1),
    ]


@pytest.mark.parametrize(
    "where",
    [
        # The customer's own page: newest first, failed attempts hidden, its total summed from
        # the customer's counts.
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
    total = await plan_of(f"SELECT sum(n) FROM order_counts {where}")  # noqa: S608
    assert "SEARCH order_counts USING PRIMARY KEY" in total or "autoindex" in total, total
