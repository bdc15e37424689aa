"""Use cases that read: one order, and a page of them."""

from __future__ import annotations

from retail.kernel.security import Principal
from retail.orders.domain import Order, OrderQuery, OrderStatus, Page
from retail.orders.ports import OrdersDeps
from retail.orders.service import saga


async def get_order(deps: OrdersDeps, *, viewer: Principal, order_id: str) -> Order:
    """Their own order for a customer, any for an admin; else a 404 (`OrderNotFound`)."""
    return await saga.visible_order(deps, viewer, order_id)


async def list_orders(
    deps: OrdersDeps,
    *,
    viewer: Principal,
    status: OrderStatus | None,
    offset: int,
    limit: int,
) -> Page[Order]:
    """Newest first. A customer sees their own and, unless they ask for them, not the
    failed ones (attempts that never became orders); an admin sees everything."""
    query = OrderQuery(
        user_id=None if viewer.is_admin else viewer.user_id,
        status=status,
        hide_failed=not viewer.is_admin and status is None,
    )
    async with deps.units(readonly=True) as uow:
        return await uow.orders.page(query, offset=offset, limit=limit)
