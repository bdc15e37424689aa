"""Use cases that read. The ones that write live by what they do: `placing` and
`reordering` (the saga, in `saga`), `lifecycle` (cancel, admin status changes) and
`recovery` (pending orders left behind, stock still to release)."""

from __future__ import annotations

from retail.kernel.security import Principal
from retail.orders.domain import Order, OrderQuery, OrderStatus, Page
from retail.orders.exceptions import OrderNotFound
from retail.orders.ports import UnitOfWork


async def visible_order(uow: UnitOfWork, viewer: Principal, order_id: str) -> Order:
    """The order if the viewer may see it: their own, or any for an admin. Someone else's
    order is a 404 like a missing one, so ids cannot be probed."""
    async with uow:
        order = await uow.orders.get(order_id)
    if order is None or not (viewer.is_admin or order.user_id == viewer.user_id):
        raise OrderNotFound()
    return order


async def list_orders(
    uow: UnitOfWork, viewer: Principal, *, status: OrderStatus | None, offset: int, limit: int
) -> Page[Order]:
    """Newest first. A customer sees their own and, unless they ask for them, not the
    failed ones (attempts that never became orders); an admin sees everything."""
    query = OrderQuery(
        user_id=None if viewer.is_admin else viewer.user_id,
        status=status,
        hide_failed=not viewer.is_admin and status is None,
    )
    async with uow:
        return await uow.orders.page(query, offset=offset, limit=limit)
