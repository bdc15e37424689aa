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


def test_migration_0003_normalises_stored_emails(tmp_path: Path) -> None:
    """Rows stored under the older spelling (NFC, lowercased) take the NFKC case-folded
    one; a row whose new spelling another row already has is left as it was (no account
    is merged or lost); every user is active at token version 0."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, insert, select

    engine = create_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    rows = [
        ("1", "\uff41\uff44\uff41@shop.test", 1),  # full-width: stored as is before 0003
        ("2", "stra\u00dfe@shop.test", 2),  # folds into "3"'s address: kept as it was
        ("3", "strasse@shop.test", 3),
        ("4", "plain@shop.test", 4),
    ]
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        for user_id, email, minute in rows:
            at = NOW.replace(minute=minute)
            values = {"id": user_id, "email": email, "name": "n", "role": "customer"}
            connection.execute(
                insert(users).values(**values, password_hash="h", created_at=at, updated_at=at)
            )
        command.upgrade(config, "head")
        found = connection.execute(
            select(users.c.id, users.c.email, users.c.is_active, users.c.token_version).order_by(
                users.c.id
            )
        ).all()
    engine.dispose()
    assert [tuple(row) for row in found] == [
        ("1", "ada@shop.test", True, 0),
        ("2", "stra\u00dfe@shop.test", True, 0),
        ("3", "strasse@shop.test", True, 0),
        ("4", "plain@shop.test", True, 0),
    ]
