"""What only the SQL adapter has: the database's own CHECK, and migrations that match the
tables. Everything the back ends share is in test_repository_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from retail.inventory import service
from retail.inventory.adapters.sql import InventoryUnitOfWork, metadata
from retail.inventory.config import InventorySettings
from retail.inventory.domain import ProductCreated
from retail.inventory.main import MIGRATIONS
from retail.inventory.ports import InventoryDeps
from retail.kernel.db import SqlDatabase, engine_for, migrate
from tests.support import make_settings


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[SqlDatabase]:
    """The service's SQL database: a SQLite file, or a PostgreSQL schema when the suite
    runs there."""
    settings = make_settings(InventorySettings, tmp_path, backend="sql")
    engine = engine_for(settings)
    await migrate(engine, MIGRATIONS)
    yield engine
    await engine.dispose()


async def test_the_database_itself_refuses_negative_stock(engine: SqlDatabase) -> None:
    sessions = engine
    batch = [(1, ProductCreated("a", "A", None, 1))]
    await service.apply_product_changes(InventoryUnitOfWork(sessions), batch)
    async with InventoryUnitOfWork(sessions) as work:
        with pytest.raises(IntegrityError, match=r"(?i)check"):
            await work.session.execute(text("UPDATE stock_levels SET stock = -1"))
    level = await service.get_level(
        InventoryDeps(partial(InventoryUnitOfWork, sessions)), product_id="a"
    )
    assert level.stock == 1


async def test_the_migration_matches_the_tables(engine: SqlDatabase) -> None:
    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    assert await engine.run_sync(differences) == []
