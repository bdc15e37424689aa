"""HTTP layer: parse, call a use case, shape the answer. No queries, no commits here.

`/api/inventory` is for admins; `/internal/reservations` is for services (orders) only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from retail.inventory import service
from retail.inventory.dependencies import Deps, ExistingLevel, LowStockDefault
from retail.inventory.domain import ReservationLine, Threshold
from retail.inventory.ports import InventoryDeps
from retail.inventory.schemas import (
    ORDER_ID_PATTERN,
    InventoryItem,
    InventoryList,
    MovementList,
    ReleaseRead,
    ReservationCreate,
    ReservationRead,
    StockUpdate,
)
from retail.kernel.openapi import DESCRIPTIONS
from retail.kernel.pagination import Pagination
from retail.kernel.responses import model_response
from retail.kernel.security import AdminUser, InternalCaller

router = APIRouter(prefix="/api/inventory", tags=["inventory"])
internal_router = APIRouter(prefix="/internal/reservations", tags=["internal"])

OrderIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=ORDER_ID_PATTERN)]
_RESERVE_ERRORS: dict[int | str, dict[str, str]] = {
    409: {"description": "INSUFFICIENT_STOCK or RESERVATION_RELEASED"},
    422: {"description": "UNKNOWN_PRODUCT or VALIDATION_ERROR"},
    # Declared: reserve opens its unit of work itself, so no dependency documents it.
    503: {"description": DESCRIPTIONS[503]},
}


@router.get("", response_model=InventoryList)
async def list_inventory(
    _admin: AdminUser,
    deps: Deps,
    paging: Pagination,
    default_threshold: LowStockDefault,
    low_stock: Annotated[
        bool, Query(description="Only levels at or below their low-stock threshold")
    ] = False,
) -> InventoryList:
    found = await service.list_levels(
        deps,
        low_stock=default_threshold if low_stock else None,
        offset=paging.offset,
        limit=paging.limit,
    )
    return InventoryList.of(found, paging)


@router.get("/{product_id}", response_model=InventoryItem)
async def get_inventory_item(_admin: AdminUser, level: ExistingLevel) -> InventoryItem:
    return InventoryItem.of(level)


@router.patch(
    "/{product_id}", response_model=InventoryItem, responses={409: {"description": "STOCK_CHANGED"}}
)
async def set_stock(
    admin: AdminUser, product_id: str, body: StockUpdate, deps: Deps
) -> InventoryItem:
    threshold = None
    if "low_stock_threshold" in body.model_fields_set:
        threshold = Threshold(body.low_stock_threshold)
    level = await service.set_stock(
        deps,
        product_id=product_id,
        stock=body.stock,
        reason=body.reason,
        actor=admin.user_id,
        expected=body.expected_stock,
        threshold=threshold,
    )
    return InventoryItem.of(level)


@router.get("/{product_id}/history", response_model=MovementList)
async def stock_history(
    _admin: AdminUser, product_id: str, deps: Deps, paging: Pagination
) -> MovementList:
    found = await service.history(
        deps, product_id=product_id, offset=paging.offset, limit=paging.limit
    )
    return MovementList.of(found, paging)


@internal_router.post("", response_model=ReservationRead, responses=_RESERVE_ERRORS)
async def reserve(caller: InternalCaller, body: ReservationCreate, request: Request) -> Response:
    # Every order calls this: the bundle comes straight from app.state and the answer is
    # serialised once (kernel/responses.py), each a per-request cost saved.
    deps: InventoryDeps = request.app.state.deps
    lines = [ReservationLine(line.product_id, line.quantity) for line in body.lines]
    reservation = await service.reserve_stock(
        deps, order_id=body.order_id, lines=lines, actor=f"service:{caller}"
    )
    return model_response(ReservationRead.of(reservation))


@internal_router.post("/{order_id}/release", response_model=ReleaseRead)
async def release(caller: InternalCaller, order_id: OrderIdPath, deps: Deps) -> ReleaseRead:
    status = await service.release_reservation(deps, order_id=order_id, actor=f"service:{caller}")
    return ReleaseRead(order_id=order_id, status=status)


@internal_router.get("/{order_id}", response_model=ReservationRead)
async def get_reservation(
    _caller: InternalCaller, order_id: OrderIdPath, deps: Deps
) -> ReservationRead:
    found = await service.get_reservation(deps, order_id=order_id)
    return ReservationRead.none(order_id) if found is None else ReservationRead.of(found)
