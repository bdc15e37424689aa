"""SQL adapter: tables, the repository (domain objects in and out), the unit of work."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable

from retail.categories.domain import Category
from retail.categories.exceptions import CategoryNameTaken
from retail.kernel.db import (
    SqlSession,
    SqlUnitOfWork,
    UtcDateTime,
    is_unique_violation,
    rows_affected,
)
from retail.kernel.events import SqlEventLog, outbox_table
from retail.kernel.prepared import Prepared

metadata = MetaData()

categories = Table(
    "categories",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False),
    # Uniqueness is case-insensitive: enforced on the lowered name by the database itself.
    Column("name_key", String(100), nullable=False),
    Column("logo", String(2048), nullable=True),
    Column("description", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("uq_categories_name_key", "name_key", unique=True),
)
outbox = outbox_table(metadata)


# The storefront's category list, compiled once (kernel/prepared.py) as the products and
# orders pages are: building and caching a statement per request was a fifth of the read.
_ALL = Prepared(select(categories).order_by(categories.c.name_key))


def _category(row: RowMapping) -> Category:
    return Category(
        id=row["id"],
        name=row["name"],
        logo=row["logo"],
        description=row["description"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _columns(category: Category) -> dict[str, object]:
    return {
        "name": category.name,
        "name_key": category.name.casefold(),
        "logo": category.logo,
        "description": category.description,
        "updated_at": category.updated_at,
    }


class SqlCategoryRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, category: Category) -> None:
        values = {"id": category.id, "created_at": category.created_at, **_columns(category)}
        await self._write(insert(categories).values(values))

    async def get(self, category_id: str) -> Category | None:
        result = await self._session.execute(
            select(categories).where(categories.c.id == category_id)
        )
        row = result.mappings().first()
        return _category(row) if row else None

    async def list_all(self) -> list[Category]:
        result = await self._session.execute(_ALL)
        return [_category(row) for row in result.mappings()]

    async def update(self, category: Category) -> None:
        statement = update(categories).where(categories.c.id == category.id)
        await self._write(statement.values(_columns(category)))

    async def delete(self, category_id: str) -> bool:
        result = await self._session.execute(
            delete(categories).where(categories.c.id == category_id)
        )
        return rows_affected(result) > 0

    async def count(self) -> int:
        return int(await self._session.scalar(select(func.count()).select_from(categories)) or 0)

    async def _write(self, statement: Executable) -> None:
        try:
            await self._session.execute(statement)
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise CategoryNameTaken() from None
            raise


class CategoriesUnitOfWork(SqlUnitOfWork):
    categories: SqlCategoryRepository
    events: SqlEventLog

    def _bind(self, session: SqlSession) -> None:
        self.categories = SqlCategoryRepository(session)
        self.events = SqlEventLog(session, outbox)
