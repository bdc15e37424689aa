"""Placing an order: look the products up, store the order pending, reserve, confirm."""

from __future__ import annotations

from collections.abc import Mapping

from retail.kernel.security import Principal
from retail.orders.domain import CatalogEntry, LineRequest, Order, OrderLine, OrderRequest
from retail.orders.exceptions import UnknownProduct
from retail.orders.ports import OrdersDeps
from retail.orders.service import saga
from retail.orders.service.idempotency import claim_for, replay


async def place_order(
    deps: OrdersDeps,
    *,
    customer: Principal,
    request: OrderRequest,
    idempotency_key: str | None,
) -> Order:
    """Raises `UnknownProduct` (nothing stored), `InsufficientStock` (the order is failed),
    or `ServiceUnavailable` (nothing stored if products is down; failed and released if
    inventory is)."""
    claim = claim_for(customer.user_id, idempotency_key, "place", request.fingerprint())
    if claim is not None and (first := await replay(deps, claim)) is not None:
        return first
    catalog = await deps.catalog.lookup([line.product_id for line in request.lines])
    lines = snapshot_lines(request.lines, catalog)
    order = saga.draft_order(deps, customer.user_id, lines, request.shipping_address)
    stored = await saga.open_or_replay(deps, order, claim)
    if stored.id != order.id:
        return stored  # the answer to a concurrent request with the same key
    keyed = claim is not None
    refusal = await saga.reserve_or_abandon(deps, stored, keyed=keyed)
    if refusal is not None:
        await saga.fail(deps, stored, refusal, release=False, keyed=keyed)
        raise refusal
    return await saga.confirm(deps, stored, keyed=keyed)


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
