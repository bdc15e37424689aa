"""HTTP layer: parse, call a use case, shape the answer. No queries, no commits here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, status
from starlette.responses import Response

from retail.kernel.responses import model_response
from retail.kernel.security import AdminUser, CurrentUser
from retail.orders import service
from retail.orders.dependencies import Deps, IdempotencyKey, ListQuery, VisibleOrder
from retail.orders.schemas import (
    OrderCreate,
    OrderList,
    OrderRead,
    ReorderCreate,
    ReorderRead,
    StatusChange,
)

router = APIRouter(prefix="/api/orders", tags=["orders"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not signed in"},
    404: {"description": "No such order, or not yours (ORDER_NOT_FOUND)"},
}
_PLACING: dict[int | str, dict[str, Any]] = {
    401: _AUTH[401],
    409: {
        "description": "INSUFFICIENT_STOCK (details: product_id, requested, available), "
        "IDEMPOTENT_REQUEST_IN_PROGRESS (retry after Retry-After)"
    },
    422: {"description": "UNKNOWN_PRODUCT, IDEMPOTENCY_KEY_REUSED, VALIDATION_ERROR"},
    503: {"description": "Products or inventory unavailable; nothing is held"},
}
_TRANSITION: dict[int | str, dict[str, Any]] = {409: {"description": "INVALID_STATUS_TRANSITION"}}


@router.post("", response_model=OrderRead, status_code=status.HTTP_201_CREATED, responses=_PLACING)
async def place_order(
    body: OrderCreate, customer: CurrentUser, request: Request, key: IdempotencyKey = None
) -> Response:
    # The hot path: deps read from app.state (not a dependency) and the answer serialised
    # once (kernel/responses.py); both cost per request.
    order = await service.place_order(
        request.app.state.deps, customer=customer, request=body.to_request(), idempotency_key=key
    )
    return model_response(OrderRead.of(order), status.HTTP_201_CREATED)


@router.get("", response_model=OrderList, responses={401: _AUTH[401]})
async def list_orders(viewer: CurrentUser, deps: Deps, query: ListQuery) -> Response:
    """Newest first. A customer sees their own (failed attempts only when asking for
    `status=failed`); an admin sees every order."""
    found = await service.list_orders(
        deps, viewer=viewer, status=query.status, offset=query.offset, limit=query.limit
    )
    return model_response(OrderList.of(found, query))  # serialised once: a page is large


@router.get("/{order_id}", response_model=OrderRead, responses=_AUTH)
async def get_order(order: VisibleOrder) -> OrderRead:
    return OrderRead.of(order)


@router.post(
    "/{order_id}/reorder",
    response_model=ReorderRead,
    status_code=status.HTTP_201_CREATED,
    responses={**_PLACING, **_AUTH, 409: {"description": "NOTHING_TO_REORDER, or as placing"}},
)
async def reorder(
    order_id: str,
    caller: CurrentUser,
    deps: Deps,
    body: Annotated[ReorderCreate | None, Body()] = None,
    key: IdempotencyKey = None,
) -> ReorderRead:
    """Today's titles and prices; lines that are gone or short are listed in
    `skipped_items` instead."""
    address = body.shipping_address if body is not None else None
    order = await service.reorder(
        deps, caller=caller, source_id=order_id, shipping_address=address, idempotency_key=key
    )
    return ReorderRead.of(order)


@router.post("/{order_id}/cancel", response_model=OrderRead, responses={**_AUTH, **_TRANSITION})
async def cancel_order(order_id: str, caller: CurrentUser, deps: Deps) -> OrderRead:
    """The owner while pending or confirmed, an admin until shipped. The stock goes back."""
    return OrderRead.of(await service.cancel_order(deps, caller=caller, order_id=order_id))


@router.patch(
    "/{order_id}/status",
    response_model=OrderRead,
    responses={**_AUTH, **_TRANSITION, 403: {"description": "Not an admin"}},
)
async def change_status(
    order_id: str, body: StatusChange, admin: AdminUser, deps: Deps
) -> OrderRead:
    """pending -> confirmed -> processing -> shipped -> delivered; cancelled from pending,
    confirmed or processing."""
    changed = await service.change_status(deps, admin=admin, order_id=order_id, new=body.status)
    return OrderRead.of(changed)
