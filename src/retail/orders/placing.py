"""Placing an order: look the products up, store the order pending, reserve, confirm."""

from __future__ import annotations

from collections.abc import Mapping

from retail.kernel.security import Principal
from retail.orders import saga
from retail.orders.domain import CatalogEntry, LineRequest, Order, OrderLine, OrderRequest
from retail.orders.exceptions import (
    IdempotencyKeyTaken,
    IdempotentRequestInProgress,
    UnknownProduct,
)
from retail.orders.idempotency import KeyClaim, claim_for, replay
from retail.orders.ports import Context


async def place_order(
    ctx: Context, customer: Principal, request: OrderRequest, idempotency_key: str | None
) -> Order:
    """Raises `UnknownProduct` (nothing stored), `InsufficientStock` (the order is failed),
    or `ServiceUnavailable` (nothing stored if products is down; failed and released if
    inventory is)."""
    claim = claim_for(customer.user_id, idempotency_key, "place", request.fingerprint())
    if claim is not None and (first := await replay(ctx, claim)) is not None:
        return first
    catalog = await ctx.catalog.lookup([line.product_id for line in request.lines])
    lines = snapshot_lines(request.lines, catalog)
    order = saga.draft_order(ctx, customer.user_id, lines, request.shipping_address)
    stored = await open_or_replay(ctx, order, claim)
    if stored.id != order.id:
        return stored  # the answer to a concurrent request with the same key
    refusal = await saga.reserve_or_abandon(ctx, stored)
    if refusal is not None:
        await saga.fail(ctx, stored, refusal, release=False)
        raise refusal
    return await saga.confirm(ctx, stored)


def snapshot_lines(
    lines: tuple[LineRequest, ...], catalog: Mapping[str, CatalogEntry]
) -> tuple[OrderLine, ...]:
    """Titles, prices and tax rates as they are now; they never change on the order."""
    unknown = [line.product_id for line in lines if line.product_id not in catalog]
    if unknown:
        raise UnknownProduct(
            f"Unknown product: {unknown[0]}",
            details={"product_id": unknown[0], "product_ids": unknown},
        )
    return tuple(OrderLine.of(catalog[line.product_id], line.quantity) for line in lines)


async def open_or_replay(ctx: Context, order: Order, claim: KeyClaim | None) -> Order:
    """Step 1 of the saga; or, if a concurrent request with this key got there first, the
    answer it gave (waited for briefly)."""
    try:
        return await saga.open_order(ctx, order, claim)
    except IdempotencyKeyTaken:
        assert claim is not None  # only a claimed key can be taken
        first = await replay(ctx, claim)
    if first is None:  # the winner failed transiently and gave its key back: retry later
        raise IdempotentRequestInProgress()
    return first
