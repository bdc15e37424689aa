"""Use cases of the signed-in customer's cart (DESIGN.md: /api/auth/me/cart), called as every
use case is: `(deps: AuthDeps, *, user_id=..., ...)`.

The cart stores product ids, quantities and when they were added, nothing else: name, price,
tax and image are looked up in the catalogue each time the cart is answered, so it shows
today's prices, as the order will charge them. The catalogue is asked before anything is
written, so when products is down the answer is a 503 and the cart is unchanged.

Stock is checked against what products shows: a read model of inventory's stock, a moment
behind it. A cart holds no stock; the order's reservation at inventory is what decides.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from retail.auth.domain import (
    MAX_CART_LINES,
    MAX_CART_QUANTITY,
    CartLine,
    CartView,
    CatalogProduct,
)
from retail.auth.exceptions import (
    AccountGone,
    CartFull,
    CartItemNotFound,
    CartLineLimit,
    InsufficientStock,
    UnknownProduct,
)
from retail.auth.ports import AuthDeps, UnitOfWork
from retail.kernel.errors import AppError, ServiceUnavailable

# The most ids products' lookup takes at once.
LOOKUP_BATCH = 100
logger = logging.getLogger("retail.auth.cart")


async def view_cart(deps: AuthDeps, *, user_id: str) -> CartView:
    async with deps.units(readonly=True) as uow:
        lines = await uow.cart.lines(user_id)
    return await _priced(deps, user_id, lines, {})


async def add_item(deps: AuthDeps, *, user_id: str, product_id: str, quantity: int) -> CartView:
    """Add to the product's line (or start one). The sum is checked against stock and the
    per-line cap in the same conditional write that makes it, so two adds at once both
    count and together cannot pass the limit."""
    product = await _existing(deps, product_id)
    async with deps.units() as uow:
        await _lock_account(uow, user_id)
        line = CartLine(user_id, product_id, quantity, deps.clock())
        if await uow.cart.add(line, limit=_limit(product)) is None:
            current = await uow.cart.get(user_id, product_id)
            raise _too_many(product, quantity + (current.quantity if current else 0))
        if await uow.cart.count(user_id) > MAX_CART_LINES:  # leaving uncommitted undoes it
            raise CartFull(details={"limit": MAX_CART_LINES})
        lines = await uow.cart.lines(user_id)
        await uow.commit()
    return await _priced(deps, user_id, lines, {product.id: product})


async def set_quantity(deps: AuthDeps, *, user_id: str, product_id: str, quantity: int) -> CartView:
    async with deps.units(readonly=True) as uow:
        if await uow.cart.get(user_id, product_id) is None:
            raise CartItemNotFound()
    product = await _existing(deps, product_id)
    if quantity > _limit(product):
        raise _too_many(product, quantity)
    async with deps.units() as uow:
        await _lock_account(uow, user_id)
        if not await uow.cart.set_quantity(user_id, product_id, quantity):
            raise CartItemNotFound()  # removed meanwhile
        lines = await uow.cart.lines(user_id)
        await uow.commit()
    return await _priced(deps, user_id, lines, {product.id: product})


async def remove_item(deps: AuthDeps, *, user_id: str, product_id: str) -> CartView:
    async with deps.units(readonly=True) as uow:
        before = await uow.cart.lines(user_id)
    if all(line.product_id != product_id for line in before):
        raise CartItemNotFound()
    known = await _lookup(
        deps, [line.product_id for line in before if line.product_id != product_id]
    )
    async with deps.units() as uow:
        if not await uow.cart.remove(user_id, product_id):
            raise CartItemNotFound()
        lines = await uow.cart.lines(user_id)
        await uow.commit()
    return await _priced(deps, user_id, lines, known)


async def clear_cart(deps: AuthDeps, *, user_id: str) -> CartView:
    async with deps.units() as uow:
        await uow.cart.clear(user_id)
        await uow.commit()
    return CartView([], [])


# --- helpers ----------------------------------------------------------------------------


async def _existing(deps: AuthDeps, product_id: str) -> CatalogProduct:
    product = (await deps.catalog.lookup([product_id])).get(product_id)
    if product is None:
        raise UnknownProduct(details={"product_id": product_id})
    return product


def _limit(product: CatalogProduct) -> int:
    return max(0, min(product.stock, MAX_CART_QUANTITY))


def _too_many(product: CatalogProduct, requested: int) -> AppError:
    if requested > product.stock:
        available = max(0, product.stock)
        details = {"product_id": product.id, "requested": requested, "available": available}
        return InsufficientStock(details=details)
    limit = {"product_id": product.id, "requested": requested, "limit": MAX_CART_QUANTITY}
    return CartLineLimit(details=limit)


async def _lock_account(uow: UnitOfWork, user_id: str) -> None:
    if await uow.users.lock(user_id) is None:
        raise AccountGone()


async def _lookup(deps: AuthDeps, product_ids: Sequence[str]) -> dict[str, CatalogProduct]:
    found: dict[str, CatalogProduct] = {}
    for start in range(0, len(product_ids), LOOKUP_BATCH):
        found |= await deps.catalog.lookup(product_ids[start : start + LOOKUP_BATCH])
    return found


async def _priced(
    deps: AuthDeps, user_id: str, lines: list[CartLine], known: dict[str, CatalogProduct]
) -> CartView:
    """Price the lines (looking up those not `known` yet). Lines whose product has left the
    catalogue are reported once and dropped: the product will not come back under its id."""
    missing = [line.product_id for line in lines if line.product_id not in known]
    view = CartView.of(lines, {**known, **await _lookup(deps, missing)})
    if view.unavailable:
        try:
            await _drop(deps, user_id, view.unavailable)
        except ServiceUnavailable as exc:  # the answer stands; the next one drops them
            logger.warning("could not drop unavailable cart lines: %s", exc)
    return view


async def _drop(deps: AuthDeps, user_id: str, lines: list[CartLine]) -> None:
    async with deps.units() as uow:
        for line in lines:
            await uow.cart.remove(user_id, line.product_id)
        await uow.commit()
