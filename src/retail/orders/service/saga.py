"""The steps of the order saga (DESIGN.md decision 6), which the use cases call downward:
placing, reordering, an admin's confirmation and recovery all run through these.

1. `open_order`: the order is stored `pending`, with the caller's idempotency key, and
   committed before any stock moves. From here on a crash leaves a trace to recover from.
2. `try_reserve`: all lines at inventory in one all-or-nothing call, idempotent by the
   order's reservation id. Never inside a database transaction.
3. `confirm` on success; `fail` on a refusal; `abandon` when a peer is down. Each is one
   transaction that also stores the key's outcome.

Every status change is conditional (`WHERE status = 'pending'`), so the request that placed
an order, a recovery pass and a cancelling customer can race without two of them winning.

`keyed=False` tells a step that no idempotency key names the order (a request sent without
one), so its transaction skips the key's statement. Recovery and admins do not know, and
keep the default.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from retail.kernel.errors import AppError, ServiceUnavailable
from retail.kernel.metrics import ORDERS
from retail.kernel.security import Principal
from retail.orders.domain import (
    IdempotencyRecord,
    Order,
    OrderLine,
    ShippingAddress,
    SkippedItem,
    new_order_number,
)
from retail.orders.exceptions import (
    REFUSALS,
    IdempotencyKeyTaken,
    IdempotentRequestInProgress,
    InsufficientStock,
    OrderNotFound,
    OrderNumberTaken,
    UnknownProduct,
    failure_of,
)
from retail.orders.ports import OrdersDeps
from retail.orders.service.idempotency import KeyClaim, replay

logger = logging.getLogger("retail.orders")

# 40 random bits per number: a second collision in a row means something else is wrong.
ORDER_NUMBER_DRAWS = 5


def draft_order(
    deps: OrdersDeps,
    user_id: str,
    lines: tuple[OrderLine, ...],
    shipping_address: ShippingAddress,
    skipped: tuple[SkippedItem, ...] = (),
) -> Order:
    now = deps.clock()
    order_id = str(uuid.uuid4())
    return Order(
        id=order_id,
        order_number=new_order_number(),
        user_id=user_id,
        status="pending",
        lines=lines,
        shipping_address=shipping_address,
        created_at=now,
        updated_at=now,
        reservation_id=order_id,
        recovery_lease_until=now + deps.policy.pending_grace,
        skipped=skipped,
    )


async def open_or_replay(deps: OrdersDeps, order: Order, claim: KeyClaim | None) -> Order:
    """Step 1; or, if a concurrent request with this key got there first, the answer it
    gave (waited for briefly). The caller tells them apart by the id."""
    try:
        return await open_order(deps, order, claim)
    except IdempotencyKeyTaken:
        assert claim is not None  # only a claimed key can be taken
        first = await replay(deps, claim)
    if first is None:  # the winner failed transiently and gave its key back: retry later
        raise IdempotentRequestInProgress()
    return first


async def open_order(deps: OrdersDeps, order: Order, claim: KeyClaim | None) -> Order:
    """Step 1. Raises `IdempotencyKeyTaken` if another request holds the key."""
    for _ in range(ORDER_NUMBER_DRAWS):
        try:
            await _insert_pending(deps, order, claim)
        except OrderNumberTaken:
            order = replace(order, order_number=new_order_number())
            continue
        except IdempotencyKeyTaken:
            assert claim is not None  # only a claimed key can be taken
            if not await _discard_if_expired(deps, claim):
                raise
            continue
        return order
    raise ServiceUnavailable("Could not store the order; try again")


async def _insert_pending(deps: OrdersDeps, order: Order, claim: KeyClaim | None) -> None:
    async with deps.units() as uow:
        if claim is not None:
            # Inserted without a look first: the key's unique index is the guard, and the
            # caller has just seen the key unused (`idempotency.replay`).
            record = IdempotencyRecord(
                claim.user_id, claim.key, claim.request_hash, order.id, order.created_at
            )
            await uow.idempotency.add(record)
        await uow.orders.add(order)
        await uow.commit()


async def _discard_if_expired(deps: OrdersDeps, claim: KeyClaim) -> bool:
    """A key past its time to live is free again; True if it was, and is now gone."""
    async with deps.units() as uow:
        existing = await uow.idempotency.get(claim.user_id, claim.key)
        if existing is None or existing.expired(deps.clock(), deps.policy.idempotency_ttl):
            await uow.idempotency.discard(claim.user_id, claim.key)
            await uow.commit()
            return True
    return False


async def try_reserve(deps: OrdersDeps, order: Order) -> AppError | None:
    """Step 2. The refusal (explained for the client), or None once the stock is held.
    A peer that is down raises: what to do about it is the caller's decision."""
    try:
        await deps.stock.reserve(order.reservation_id, order.reservation_lines())
    except REFUSALS as refusal:
        return explained(order, refusal)
    return None


async def reserve_or_abandon(deps: OrdersDeps, order: Order, *, keyed: bool) -> AppError | None:
    """Step 2 for a client waiting on the answer: if inventory is down, give up now."""
    try:
        return await try_reserve(deps, order)
    except AppError:
        await abandon(deps, order, keyed=keyed)
        raise


def explained(order: Order, refusal: AppError) -> AppError:
    """The refusal, naming the product by its title as the customer knows it."""
    details = refusal.details or {}
    line = order.line_of(str(details.get("product_id", "")))
    if line is None:
        return refusal
    if isinstance(refusal, InsufficientStock):
        message = (
            f"Not enough stock of {line.title!r}: requested {details.get('requested')}, "
            f"available {details.get('available')}"
        )
        return InsufficientStock(message, details=details)
    if isinstance(refusal, UnknownProduct):
        return UnknownProduct(f"{line.title!r} is no longer sold", details=details)
    return refusal


async def confirm(deps: OrdersDeps, order: Order, *, keyed: bool = True) -> Order:
    """Step 3. The order as it now is: confirmed, or whatever a racing writer made it."""
    confirmed = order.moved_to("confirmed", deps.clock(), release_due=False)
    try:
        async with deps.units() as uow:
            won = await uow.orders.transition(
                order.id, "pending", "confirmed", confirmed.updated_at
            )
            if won:
                if keyed:  # the key's answer commits with the status it answers
                    await uow.idempotency.complete(order.id, confirmed)
                await uow.commit()
                ORDERS.labels(outcome="confirmed").inc()
                return confirmed
    except ServiceUnavailable as busy:  # our own database: the stock is held, recovery confirms
        raise unsettled(order) from busy
    # Cancelled meanwhile (its release gave the stock back), or confirmed by someone else.
    latest = await current(deps, order.id)
    if keyed:
        async with deps.units() as uow:
            await uow.idempotency.complete(order.id, latest)
            await uow.commit()
    return latest


async def fail(
    deps: OrdersDeps, order: Order, refusal: AppError, *, release: bool, keyed: bool = True
) -> None:
    """Step 3 after a refusal: `failed`, and the refusal kept as the key's answer. Inventory
    holds nothing for a refused reservation; `release` fences it anyway (recovery does)."""
    now = deps.clock()
    lease = now + deps.policy.pending_grace if release else None
    async with deps.units() as uow:
        failed = await uow.orders.transition(
            order.id, "pending", "failed", now, release_due=release, lease_until=lease
        )
        if keyed:
            await uow.idempotency.complete(order.id, failure_of(refusal))
        await uow.commit()
    if failed:
        ORDERS.labels(outcome="failed").inc()
    if release:
        await release_stock(deps, order)


async def abandon(deps: OrdersDeps, order: Order, *, keyed: bool = True) -> None:
    """Step 3 when a peer is down: stock may or may not be held (a lost answer), so the
    order fails with a release due, and its key is forgotten so that a retry tries anew."""
    now = deps.clock()
    lease = now + deps.policy.pending_grace
    try:
        async with deps.units() as uow:
            failed = await uow.orders.transition(
                order.id, "pending", "failed", now, release_due=True, lease_until=lease
            )
            if failed and keyed:
                await uow.idempotency.discard_for_order(order.id)
            await uow.commit()
    except ServiceUnavailable as busy:  # still pending: recovery settles it either way
        raise unsettled(order) from busy
    if failed:
        ORDERS.labels(outcome="failed").inc()
        await release_stock(deps, order)


def unsettled(order: Order) -> ServiceUnavailable:
    """The answer when the order is stored but its outcome is not: recovery settles it
    within moments, and a retry with the same Idempotency-Key then gets that outcome."""
    return ServiceUnavailable(
        "The order was received but is not settled yet; retry with the same "
        "Idempotency-Key shortly to get its outcome",
        details={"order_id": order.id},
    )


async def finish_pending(deps: OrdersDeps, order: Order) -> Order:
    """Steps 2 and 3 for an order already stored (recovery, an admin's confirmation):
    reserve again (idempotent) and settle. Raises the refusal after failing the order,
    fenced by a release, or `ServiceUnavailable` leaving it pending."""
    refusal = await try_reserve(deps, order)
    if refusal is not None:
        await fail(deps, order, refusal, release=True)
        raise refusal
    return await confirm(deps, order)


async def release_stock(deps: OrdersDeps, order: Order) -> bool:
    """Give the order's stock back. If inventory is down the release stays due, and
    recovery retries it once the order's lease runs out."""
    try:
        await deps.stock.release(order.reservation_id)
    except AppError as exc:
        logger.warning("release of order %s deferred: %s", order.id, exc.message)
        return False
    async with deps.units() as uow:
        await uow.orders.release_done(order.id, deps.clock())
        await uow.commit()
    return True


async def current(deps: OrdersDeps, order_id: str) -> Order:
    async with deps.units(readonly=True) as uow:
        order = await uow.orders.get(order_id)
    if order is None:
        raise OrderNotFound()
    return order


async def visible_order(deps: OrdersDeps, viewer: Principal, order_id: str) -> Order:
    """The order if the viewer may see it: their own, or any for an admin. Someone else's
    order is a 404 like a missing one, so ids cannot be probed."""
    async with deps.units(readonly=True) as uow:
        order = await uow.orders.get(order_id)
    if order is None or not (viewer.is_admin or order.user_id == viewer.user_id):
        raise OrderNotFound()
    return order
