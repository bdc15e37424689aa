"""Reordering: a new order from a past one, at today's prices.

Products that are gone are left out at lookup. Then reservation is tried; a line refused
for stock is left out (not reduced to what is available: a customer who wanted 3 may not
want 1, and `available` in `skipped_items` lets the storefront offer it) and the rest is
tried again under a new reservation id, since inventory answers a repeated id as it did
the first time. Every skipped line is listed with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from retail.kernel.errors import AppError
from retail.kernel.security import Principal
from retail.orders.domain import (
    CatalogEntry,
    Order,
    OrderLine,
    ShippingAddress,
    SkippedItem,
)
from retail.orders.exceptions import InsufficientStock, NothingToReorder, UnknownProduct
from retail.orders.ports import OrdersDeps
from retail.orders.service import saga
from retail.orders.service.idempotency import claim_for, replay


async def reorder(
    deps: OrdersDeps,
    *,
    caller: Principal,
    source_id: str,
    shipping_address: ShippingAddress | None,
    idempotency_key: str | None,
) -> Order:
    """The new order belongs to the past order's owner (an admin may reorder for them);
    the idempotency key is the caller's. Raises `NothingToReorder` if no line is left."""
    payload = {"order_id": source_id, "shipping_address": shipping_address}
    claim = claim_for(caller.user_id, idempotency_key, "reorder", payload)
    if claim is not None and (first := await replay(deps, claim)) is not None:
        return first
    source = await saga.visible_order(deps, caller, source_id)
    catalog = await deps.catalog.lookup([line.product_id for line in source.lines])
    lines, skipped = _still_sold(source, catalog)
    if not lines:
        raise _nothing_left(skipped)
    address = source.shipping_address if shipping_address is None else shipping_address
    order = saga.draft_order(deps, source.user_id, lines, address, skipped)
    stored = await saga.open_or_replay(deps, order, claim)
    if stored.id != order.id:
        return stored
    return await _reserve_what_is_left(deps, stored, keyed=claim is not None)


def _still_sold(
    source: Order, catalog: Mapping[str, CatalogEntry]
) -> tuple[tuple[OrderLine, ...], tuple[SkippedItem, ...]]:
    lines: list[OrderLine] = []
    skipped: list[SkippedItem] = []
    for line in source.lines:
        entry = catalog.get(line.product_id)
        if entry is None:
            skipped.append(SkippedItem(line.product_id, line.title, line.quantity, "unavailable"))
        else:
            lines.append(OrderLine.of(entry, line.quantity))
    return tuple(lines), tuple(skipped)


async def _reserve_what_is_left(deps: OrdersDeps, order: Order, *, keyed: bool) -> Order:
    attempts = deps.policy.reorder_max_attempts
    for attempt in range(1, attempts + 1):
        refusal = await saga.reserve_or_abandon(deps, order, keyed=keyed)
        if refusal is None:
            return await saga.confirm(deps, order, keyed=keyed)
        narrowed = _without_refused(order, refusal, attempt, deps)
        if narrowed is None or attempt == attempts:
            await saga.fail(deps, order, refusal, release=False, keyed=keyed)
            raise refusal
        if not narrowed.lines:
            nothing = _nothing_left(narrowed.skipped)
            await saga.fail(deps, order, nothing, release=False, keyed=keyed)
            raise nothing
        async with deps.units() as uow:
            stored = await uow.orders.replace_lines(narrowed)
            await uow.commit()
        if not stored:  # cancelled by its owner meanwhile: that is the answer now
            return await saga.current(deps, order.id)
        order = narrowed
    raise AssertionError("unreachable: the last attempt returns or raises")


def _without_refused(
    order: Order, refusal: AppError, attempt: int, deps: OrdersDeps
) -> Order | None:
    """The order less the refused line, under a new reservation id; None if the refusal
    is not about one line (then nothing can be left out)."""
    details: dict[str, Any] = refusal.details or {}
    line = order.line_of(str(details.get("product_id", "")))
    if line is None or not isinstance(refusal, InsufficientStock | UnknownProduct):
        return None
    if isinstance(refusal, InsufficientStock):
        available = details.get("available")
        item = SkippedItem(
            line.product_id,
            line.title,
            line.quantity,
            "insufficient_stock",
            available if isinstance(available, int) else None,
        )
    else:
        item = SkippedItem(line.product_id, line.title, line.quantity, "unavailable")
    return replace(
        order,
        lines=tuple(kept for kept in order.lines if kept is not line),
        skipped=(*order.skipped, item),
        reservation_id=f"{order.id}.{attempt}",
        updated_at=deps.clock(),
    )


def _nothing_left(skipped: tuple[SkippedItem, ...]) -> NothingToReorder:
    return NothingToReorder(details={"skipped_items": [skipped_json(item) for item in skipped]})


def skipped_json(item: SkippedItem) -> dict[str, Any]:
    data: dict[str, Any] = {
        "product_id": item.product_id,
        "title": item.title,
        "quantity": item.quantity,
        "reason": item.reason,
    }
    if item.available is not None:
        data["available"] = item.available
    return data
