"""After placing: cancelling, and an admin moving an order along the status table.

Every change is a conditional write (`WHERE status = :expected`): of two admins, or an admin
and a customer, racing on one order exactly one wins and the other gets a 409.

Cancelling marks the order `cancelled` with a release due, in one transaction, and only
then releases the stock. Releasing first would leave a window in which the order moves on
(is shipped, say) after its stock went back; this way the cancellation is decided by one
conditional write, and a release that inventory could not take now is retried by recovery.
"""

from __future__ import annotations

from dataclasses import replace

from retail.kernel.metrics import ORDERS
from retail.kernel.security import Principal
from retail.orders.domain import (
    ADMIN_CANCELLABLE,
    OWNER_CANCELLABLE,
    TRANSITIONS,
    Order,
    OrderStatus,
    can_transition,
)
from retail.orders.exceptions import InvalidStatusTransition
from retail.orders.ports import OrdersDeps
from retail.orders.service import saga

# Re-reading after a lost conditional write; more losses in a row than this means the
# order is changing under us faster than it is sensible to chase.
MAX_RACES = 3


def invalid_transition(
    current: OrderStatus, new: OrderStatus, allowed: frozenset[OrderStatus]
) -> InvalidStatusTransition:
    return InvalidStatusTransition(
        f"An order that is {current} cannot become {new}",
        details={"from": current, "to": new, "allowed": sorted(allowed)},
    )


async def cancel_order(deps: OrdersDeps, *, caller: Principal, order_id: str) -> Order:
    """The owner while pending or confirmed; an admin until shipped."""
    allowed = ADMIN_CANCELLABLE if caller.is_admin else OWNER_CANCELLABLE
    for _ in range(MAX_RACES):
        order = await saga.visible_order(deps, caller, order_id)
        if order.status not in allowed:
            raise invalid_transition(order.status, "cancelled", allowed)
        cancelled = await _mark_cancelled(deps, order)
        if cancelled is not None:
            if await saga.release_stock(deps, cancelled):
                return cancelled.moved_to("cancelled", cancelled.updated_at, release_due=False)
            return cancelled
    raise InvalidStatusTransition("The order kept changing; try again")


async def _mark_cancelled(deps: OrdersDeps, order: Order) -> Order | None:
    now = deps.clock()
    lease = now + deps.policy.pending_grace  # our own release goes before recovery's
    async with deps.units() as uow:
        won = await uow.orders.transition(
            order.id, order.status, "cancelled", now, release_due=True, lease_until=lease
        )
        await uow.commit()
    if not won:
        return None
    ORDERS.labels(outcome="cancelled").inc()
    return replace(order.moved_to("cancelled", now, release_due=True), recovery_lease_until=lease)


async def change_status(
    deps: OrdersDeps, *, admin: Principal, order_id: str, new: OrderStatus
) -> Order:
    """An admin's move along `TRANSITIONS`. Cancelling releases the stock; confirming a
    pending order finishes its saga (reserves first) instead of confirming without stock."""
    order = await saga.visible_order(deps, admin, order_id)
    if not can_transition(order.status, new):
        raise invalid_transition(order.status, new, TRANSITIONS[order.status])
    if new == "cancelled":
        return await cancel_order(deps, caller=admin, order_id=order_id)
    if order.status == "pending":
        return await saga.finish_pending(deps, order)
    now = deps.clock()
    async with deps.units() as uow:
        won = await uow.orders.transition(order.id, order.status, new, now)
        await uow.commit()
    if not won:
        latest = await saga.current(deps, order_id)
        raise invalid_transition(latest.status, new, TRANSITIONS[latest.status])
    return order.moved_to(new, now, release_due=order.release_due)
