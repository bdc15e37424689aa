"""`Annotated` dependencies: the unit of work per request, loading a level by product id
(404 if absent), the low-stock default, and the feed reader. The unit of work is of
whichever back end the kernel opened."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from retail.inventory import service
from retail.inventory.config import InventorySettings
from retail.inventory.domain import StockLevel
from retail.inventory.ports import UnitOfWork
from retail.kernel.events import Event, EventReader
from retail.kernel.storage import UnitOfWorkFactory, read_only_unit_of_work, unit_of_work

Units = UnitOfWorkFactory[UnitOfWork]
UoW = Annotated[UnitOfWork, Depends(unit_of_work)]
ReadUoW = Annotated[UnitOfWork, Depends(read_only_unit_of_work)]


async def low_stock_default(request: Request) -> int:
    settings: InventorySettings = request.app.state.settings
    return settings.low_stock_threshold


LowStockDefault = Annotated[int, Depends(low_stock_default)]


async def valid_level(product_id: str, uow: ReadUoW) -> StockLevel:
    return await service.get_level(uow, product_id)


ExistingLevel = Annotated[StockLevel, Depends(valid_level)]


async def event_reader(uow: ReadUoW) -> EventReader:
    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(uow, after, limit)

    return read
