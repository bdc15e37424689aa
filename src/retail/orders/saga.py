"""The steps of the order saga (DESIGN.md decision 6), shared by placing, reordering,
admin confirmation and recovery.

1. `open_order`: the order is stored `pending`, with the caller's idempotency key, and
   committed before any stock moves. From here on a crash leaves a trace to recover from.
2. `try_reserve`: all lines at inventory in one all-or-nothing call, idempotent by the
   order's reservation id. Never inside a database transaction.
3. `confirm` on success; `fail` on a refusal; `abandon` when a peer is down.

Every status change is conditional (`WHERE status = 'pending'`), so the request that placed
an order, a recovery pass and a cancelling customer can race without two of them winning.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from retail.kernel.errors import AppError, ServiceUnavailable
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
    InsufficientStock,
    OrderNotFound,
    OrderNumberTaken,
    UnknownProduct,
    failure_of,
)
from retail.orders.idempotency import KeyClaim
from retail.orders.ports import Context

logger = logging.getLogger("retail.orders")

# 40 random bits per number: a second collision in a row means something else is wrong.
ORDER_NUMBER_DRAWS = 5


def draft_order(
    ctx: Context,
    user_id: str,
    lines: tuple[OrderLine, ...],
    shipping_address: ShippingAddress,
    skipped: tuple[SkippedItem, ...] = (),
) -> Order:
    now = ctx.clock()
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
        recovery_lease_until=now + ctx.policy.pending_grace,
        skipped=skipped,
    )


async def open_order(ctx: Context, order: Order, claim: KeyClaim | None) -> Order:
    """Step 1. Raises `IdempotencyKeyTaken` if another request holds the key."""
    for _ in range(ORDER_NUMBER_DRAWS):
        try:
            await _insert_pending(ctx, order, claim)
        except OrderNumberTaken:
            order = replace(order, order_number=new_order_number())
            continue
        except IdempotencyKeyTaken:
            assert claim is not None  # only a claimed key can be taken
            if not await _discard_if_expired(ctx, claim):
                raise
            continue
        return order
    raise ServiceUnavailable("Could not store the order; try again")


async def _insert_pending(ctx: Context, order: Order, claim: KeyClaim | None) -> None:
    async with ctx.uow:
        if claim is not None:
            # Inserted without a look first: the key's unique index is the guard, and the
            # caller has just seen the key unused (`idempotency.replay`).
            record = IdempotencyRecord(
                claim.user_id, claim.key, claim.request_hash, order.id, order.created_at
            )
            await ctx.uow.idempotency.add(record)
        await ctx.uow.orders.add(order)
        await ctx.uow.commit()


async def _discard_if_expired(ctx: Context, claim: KeyClaim) -> bool:
    """A key past its time to live is free again; True if it was, and is now gone."""
    async with ctx.uow:
        existing = await ctx.uow.idempotency.get(claim.user_id, claim.key)
        if existing is None or existing.expired(ctx.clock(), ctx.policy.idempotency_ttl):
            await ctx.uow.idempotency.discard(claim.user_id, claim.key)
            await ctx.uow.commit()
            return True
    return False


async def try_reserve(ctx: Context, order: Order) -> AppError | None:
    """Step 2. The refusal (explained for the client), or None once the stock is held.
    A peer that is down raises: what to do about it is the caller's decision."""
    try:
        await ctx.stock.reserve(order.reservation_id, order.reservation_lines())
    except REFUSALS as refusal:
        return explained(order, refusal)
    return None


async def reserve_or_abandon(ctx: Context, order: Order) -> AppError | None:
    """Step 2 for a client waiting on the answer: if inventory is down, give up now."""
    try:
        return await try_reserve(ctx, order)
    except AppError:
        await abandon(ctx, order)
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


async def confirm(ctx: Context, order: Order) -> Order:
    """Step 3. The order as it now is: confirmed, or whatever a racing writer made it."""
    confirmed = order.moved_to("confirmed", ctx.clock(), release_due=False)
    try:
        async with ctx.uow:
            won = await ctx.uow.orders.transition(
                order.id, "pending", "confirmed", confirmed.updated_at
            )
            if won:
                await ctx.uow.idempotency.complete(order.id, confirmed)
                await ctx.uow.commit()
                return confirmed
    except ServiceUnavailable as busy:  # our own database: the stock is held, recovery confirms
        raise unsettled(order) from busy
    # Cancelled meanwhile (its release gave the stock back), or confirmed by someone else.
    latest = await current(ctx, order.id)
    async with ctx.uow:
        await ctx.uow.idempotency.complete(order.id, latest)
        await ctx.uow.commit()
    return latest


async def fail(ctx: Context, order: Order, refusal: AppError, *, release: bool) -> None:
    """Step 3 after a refusal: `failed`, and the refusal kept as the key's answer. Inventory
    holds nothing for a refused reservation; `release` fences it anyway (recovery does)."""
    now = ctx.clock()
    lease = now + ctx.policy.pending_grace if release else None
    async with ctx.uow:
        await ctx.uow.orders.transition(
            order.id, "pending", "failed", now, release_due=release, lease_until=lease
        )
        await ctx.uow.idempotency.complete(order.id, failure_of(refusal))
        await ctx.uow.commit()
    if release:
        await release_stock(ctx, order)


async def abandon(ctx: Context, order: Order) -> None:
    """Step 3 when a peer is down: stock may or may not be held (a lost answer), so the
    order fails with a release due, and its key is forgotten so that a retry tries anew."""
    now = ctx.clock()
    lease = now + ctx.policy.pending_grace
    try:
        async with ctx.uow:
            failed = await ctx.uow.orders.transition(
                order.id, "pending", "failed", now, release_due=True, lease_until=lease
            )
            if failed:
                await ctx.uow.idempotency.discard_for_order(order.id)
            await ctx.uow.commit()
    except ServiceUnavailable as busy:  # still pending: recovery settles it either way
        raise unsettled(order) from busy
    if failed:
        await release_stock(ctx, order)


def unsettled(order: Order) -> ServiceUnavailable:
    """The answer when the order is stored but its outcome is not: recovery settles it
    within moments, and a retry with the same Idempotency-Key then gets that outcome."""
    return ServiceUnavailable(
        "The order was received but is not settled yet; retry with the same "
        "Idempotency-Key shortly to get its outcome",
        details={"order_id": order.id},
    )


async def release_stock(ctx: Context, order: Order) -> bool:
    """Give the order's stock back. If inventory is down the release stays due, and
    recovery retries it once the order's lease runs out."""
    try:
        await ctx.stock.release(order.reservation_id)
    except AppError as exc:
        logger.warning("release of order %s deferred: %s", order.id, exc.message)
        return False
    async with ctx.uow:
        await ctx.uow.orders.release_done(order.id, ctx.clock())
        await ctx.uow.commit()
    return True


async def current(ctx: Context, order_id: str) -> Order:
    async with ctx.reader as uow:
        order = await uow.orders.get(order_id)
    if order is None:
        raise OrderNotFound()
    return order
