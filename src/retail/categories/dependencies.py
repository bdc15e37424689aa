"""`Annotated` dependencies: the unit of work per request, and loading by id (404 if absent)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from retail.categories import service
from retail.categories.adapters.sql import CategoriesUnitOfWork
from retail.categories.domain import Category
from retail.kernel.events import Event, EventReader


def unit_of_work(request: Request) -> CategoriesUnitOfWork:
    return CategoriesUnitOfWork(request.app.state.sessions)


def read_only_unit_of_work(request: Request) -> CategoriesUnitOfWork:
    return CategoriesUnitOfWork(request.app.state.sessions, readonly=True)


UoW = Annotated[CategoriesUnitOfWork, Depends(unit_of_work)]
ReadUoW = Annotated[CategoriesUnitOfWork, Depends(read_only_unit_of_work)]


async def valid_category(category_id: str, uow: ReadUoW) -> Category:
    return await service.get_category(uow, category_id)


ExistingCategory = Annotated[Category, Depends(valid_category)]


def event_reader(uow: ReadUoW) -> EventReader:
    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(uow, after, limit)

    return read
