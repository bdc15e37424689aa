"""What only the SQL adapter has: migrations that match the tables, and the database's own
constraints. Everything the back ends share is in test_repository_contract.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from retail.auth.adapters.sql import AuthUnitOfWork
from retail.auth.adapters.tables import cart_items, metadata, users
from retail.auth.config import AuthSettings
from retail.auth.domain import CartLine, User
from retail.auth.main import MIGRATIONS
from retail.kernel.db import SqlDatabase, engine_for, migrate
from tests.support import make_settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    """The service's SQL database: a SQLite file, or a PostgreSQL schema when the suite
    runs there."""
    engine = engine_for(make_settings(AuthSettings, tmp_path, backend="sql"))
    await migrate(engine, MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: SqlDatabase) -> SqlDatabase:
    return engine


async def test_the_migrations_match_the_tables(engine: SqlDatabase) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    assert await engine.run_sync(diff) == []


async def a_cart(sessions: SqlDatabase) -> str:
    user_id = str(uuid.uuid4())
    async with AuthUnitOfWork(sessions) as uow:
        await uow.users.add(User(user_id, "ada@shop.test", "Ada", "customer", "h", NOW, NOW))
        await uow.cart.add(CartLine(user_id, "lamp", 1, NOW), limit=10)
        await uow.commit()
    return user_id


async def test_the_database_itself_refuses_an_empty_line(
    sessions: SqlDatabase,
) -> None:
    user_id = await a_cart(sessions)
    async with AuthUnitOfWork(sessions) as uow:
        with pytest.raises(IntegrityError, match=r"(?i)check"):
            await uow.session.execute(update(cart_items).values(quantity=0))
    async with AuthUnitOfWork(sessions, readonly=True) as uow:
        assert [line.quantity for line in await uow.cart.lines(user_id)] == [1]


async def test_a_deleted_user_takes_their_cart_along(
    sessions: SqlDatabase,
) -> None:
    user_id = await a_cart(sessions)
    async with AuthUnitOfWork(sessions) as uow:
        await uow.session.execute(delete(users).where(users.c.id == user_id))
        await uow.commit()
    async with AuthUnitOfWork(sessions, readonly=True) as uow:
        assert await uow.cart.lines(user_id) == []
