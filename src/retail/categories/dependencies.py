"""`Annotated` dependencies: the unit of work per request (of whichever back end the kernel
opened), and loading by id (404 if absent)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from retail.categories import service
from retail.categories.domain import Category
from retail.categories.ports import UnitOfWork
from retail.kernel.events import Event, EventReader
from retail.kernel.storage import UnitOfWorkFactory, read_only_unit_of_work, unit_of_work

Units = UnitOfWorkFactory[UnitOfWork]

UoW = Annotated[UnitOfWork, Depends(unit_of_work)]
ReadUoW = Annotated[UnitOfWork, Depends(read_only_unit_of_work)]


async def valid_category(category_id: str, uow: ReadUoW) -> Category:
    return await service.get_category(uow, category_id)


ExistingCategory = Annotated[Category, Depends(valid_category)]


async def event_reader(uow: ReadUoW) -> EventReader:
    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(uow, after, limit)

    return read
