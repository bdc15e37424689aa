"""`Annotated` dependencies: the use cases' `InventoryDeps` (whose units of work are of
whichever back end the kernel opened), loading a level by product id (404 if absent), the
low-stock default, and the feed reader."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from retail.inventory import service
from retail.inventory.config import InventorySettings
from retail.inventory.domain import StockLevel
from retail.inventory.ports import InventoryDeps
from retail.inventory.ports import Units as Units  # where main.py and the tests look for it
from retail.kernel.events import Event, EventReader
from retail.kernel.storage import service_deps

# Built once in the lifespan; the use cases open their own units of work from it.
Deps = Annotated[InventoryDeps, Depends(service_deps)]


async def low_stock_default(request: Request) -> int:
    settings: InventorySettings = request.app.state.settings
    return settings.low_stock_threshold


LowStockDefault = Annotated[int, Depends(low_stock_default)]


async def valid_level(product_id: str, deps: Deps) -> StockLevel:
    return await service.get_level(deps, product_id=product_id)


ExistingLevel = Annotated[StockLevel, Depends(valid_level)]


async def event_reader(deps: Deps) -> EventReader:
    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(deps, after=after, limit=limit)

    return read
