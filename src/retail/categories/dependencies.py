"""`Annotated` dependencies: the use cases' `CategoriesDeps` (whose units of work are of
whichever back end the kernel opened), and loading by id (404 if absent)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from retail.categories import service
from retail.categories.domain import Category
from retail.categories.ports import CategoriesDeps
from retail.categories.ports import Units as Units  # where the tests look for it
from retail.kernel.events import Event, EventReader
from retail.kernel.storage import service_deps

# Built once in the lifespan; the use cases open their own units of work from it.
Deps = Annotated[CategoriesDeps, Depends(service_deps)]


async def valid_category(category_id: str, deps: Deps) -> Category:
    return await service.get_category(deps, category_id=category_id)


ExistingCategory = Annotated[Category, Depends(valid_category)]


async def event_reader(deps: Deps) -> EventReader:
    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(deps, after=after, limit=limit)

    return read
