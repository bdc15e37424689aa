"""`Annotated` dependencies: the unit of work per request, and loading by id (404 if absent).

The lifespan keeps a `UnitOfWorkFactory` on `app.state.unit_of_work` for the configured
back end (SQL or MongoDB); nothing here or in the router knows which one it is."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from retail.categories import service
from retail.categories.domain import Category
from retail.categories.ports import UnitOfWork
from retail.kernel.events import Event, EventReader


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, readonly: bool = False) -> UnitOfWork: ...


def unit_of_work(request: Request) -> UnitOfWork:
    factory: UnitOfWorkFactory = request.app.state.unit_of_work
    return factory()


def read_only_unit_of_work(request: Request) -> UnitOfWork:
    factory: UnitOfWorkFactory = request.app.state.unit_of_work
    return factory(readonly=True)


UoW = Annotated[UnitOfWork, Depends(unit_of_work)]
ReadUoW = Annotated[UnitOfWork, Depends(read_only_unit_of_work)]


async def valid_category(category_id: str, uow: ReadUoW) -> Category:
    return await service.get_category(uow, category_id)


ExistingCategory = Annotated[Category, Depends(valid_category)]


def event_reader(uow: ReadUoW) -> EventReader:
    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(uow, after, limit)

    return read
