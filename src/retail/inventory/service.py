"""Use cases, `(deps: InventoryDeps, *, ...)`. Each owns its transaction; every movement
writes a history row and a `stock.changed` event in the same transaction as the stock it
moved (outbox). The feed appliers handed to the kernel's follower are not use cases: they
keep its `(uow, batch)` signature."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from retail.inventory.domain import (
    INITIAL_REASON,
    PRODUCTS_ACTOR,
    PRODUCTS_SET_REASON,
    RELEASED_REASON,
    RESERVED_REASON,
    Movement,
    Page,
    ProductChange,
    ProductCreated,
    ProductUpdated,
    ReleaseOutcome,
    Reservation,
    ReservationLine,
    StockLevel,
    Threshold,
    merge_lines,
)
from retail.inventory.exceptions import (
    InsufficientStock,
    ProductNotFound,
    ReservationExists,
    ReservationReleased,
    StockChanged,
    UnknownProduct,
)
from retail.inventory.ports import InventoryDeps, UnitOfWork
from retail.kernel.clock import utc_now
from retail.kernel.errors import ServiceUnavailable
from retail.kernel.events import Event
from retail.kernel.following import Batch, apply_batch_together, read_cursor
from retail.kernel.metrics import STOCK_RELEASES, STOCK_RESERVATIONS

logger = logging.getLogger("retail.inventory")

PRODUCTS_FEED = "products"
# Losing a race repeatedly only happens on back ends that do not serialize writers
# (PostgreSQL); SQLite's BEGIN IMMEDIATE means the first attempt always wins.
MAX_ATTEMPTS = 5


# --- reading ----------------------------------------------------------------------------


async def list_levels(
    deps: InventoryDeps, *, low_stock: int | None, offset: int, limit: int
) -> Page[StockLevel]:
    async with deps.units(readonly=True) as uow:
        return await uow.stock.page(low_stock=low_stock, offset=offset, limit=limit)


async def count_low_stock(deps: InventoryDeps, *, default_threshold: int) -> int:
    """Products at or below their low-stock threshold (their own, or the default): /metrics."""
    page = await list_levels(deps, low_stock=default_threshold, offset=0, limit=1)
    return page.total


async def get_level(deps: InventoryDeps, *, product_id: str) -> StockLevel:
    async with deps.units(readonly=True) as uow:
        level = await uow.stock.get(product_id)
    if level is None:
        raise ProductNotFound()
    return level


async def history(
    deps: InventoryDeps, *, product_id: str, offset: int, limit: int
) -> Page[Movement]:
    """A removed product keeps its history; only a product never seen is a 404."""
    async with deps.units(readonly=True) as uow:
        page = await uow.movements.page(product_id, offset=offset, limit=limit)
        if page.total == 0 and await uow.stock.get(product_id) is None:
            raise ProductNotFound()
    return page


async def read_events(deps: InventoryDeps, *, after: int, limit: int) -> list[Event]:
    async with deps.units(readonly=True) as uow:
        return await uow.events.read_after(after, limit)


# --- admin ------------------------------------------------------------------------------


async def set_stock(
    deps: InventoryDeps,
    *,
    product_id: str,
    stock: int,
    reason: str,
    actor: str,
    expected: int | None = None,
    threshold: Threshold | None = None,
) -> StockLevel:
    now = deps.clock()
    async with deps.units() as uow:
        before = await _swap_stock(uow, product_id, stock, expected, now)
        if threshold is not None:
            await uow.stock.set_threshold(product_id, threshold.value)
        movement = _set_movement(
            product_id, before=before, after=stock, reason=reason, actor=actor, now=now
        )
        await _record(uow, movement)
        level = await uow.stock.get(product_id)
        await uow.commit()
    assert level is not None  # we hold the write lock on it
    return level


async def _swap_stock(
    uow: UnitOfWork, product_id: str, stock: int, expected: int | None, now: datetime
) -> int:
    """Compare-and-set the level and return what it was. Without `expected`, compare with
    the value just read, so the history's `before` is exact even if a reservation slips in."""
    if expected is not None:
        if await uow.stock.compare_and_set(product_id, expected, stock, now):
            return expected
        actual = await uow.stock.get(product_id)
        if actual is None:
            raise ProductNotFound()
        raise StockChanged(details={"expected": expected, "actual": actual.stock})
    for _ in range(MAX_ATTEMPTS):
        current = await uow.stock.get(product_id)
        if current is None:
            raise ProductNotFound()
        if await uow.stock.compare_and_set(product_id, current.stock, stock, now):
            return current.stock
    raise ServiceUnavailable("The stock is changing too fast; try again")


# --- reservations (orders -> inventory) ------------------------------------------------


async def reserve_stock(
    deps: InventoryDeps, *, order_id: str, lines: Sequence[ReservationLine], actor: str
) -> Reservation:
    """All lines or none, once per order_id; a repeat answers as the first call did."""
    wanted = merge_lines(lines)
    try:
        return await _reserve_once(deps, order_id, wanted, actor)
    except ReservationExists:
        # A repeat, or a concurrent call with this order_id that committed first: answer
        # as the stored reservation's repeat.
        async with deps.units(readonly=True) as uow:
            existing = await uow.reservations.get(order_id)
        if existing is None:
            raise
        return _as_repeat(existing)


async def _reserve_once(
    deps: InventoryDeps, order_id: str, lines: tuple[ReservationLine, ...], actor: str
) -> Reservation:
    now = deps.clock()
    async with deps.units() as uow:
        reservation = Reservation(order_id, "reserved", lines, now)
        # Inserted before any stock moves: the order_id key is the guard against duplicates.
        # A repeat fails here with ReservationExists, and `reserve_stock` answers it from
        # what is stored: no read before the insert, which a first call (nearly every call)
        # would pay for nothing.
        await uow.reservations.add(reservation)
        for line in lines:
            await _take(uow, line, order_id, actor, now)
        await uow.commit()
    STOCK_RESERVATIONS.labels(outcome="reserved").inc()
    return reservation


def _as_repeat(existing: Reservation) -> Reservation:
    if existing.status == "released":
        raise ReservationReleased(details={"order_id": existing.order_id})
    return existing


async def _take(
    uow: UnitOfWork, line: ReservationLine, order_id: str, actor: str, now: datetime
) -> None:
    after = await uow.stock.decrement(line.product_id, line.quantity, now)
    if after is None:
        # Only to explain the refusal; the conditional write above already decided it.
        level = await uow.stock.get(line.product_id)
        if level is None:
            raise UnknownProduct(details={"product_id": line.product_id})
        STOCK_RESERVATIONS.labels(outcome="refused").inc()
        raise InsufficientStock(
            details={
                "product_id": line.product_id,
                "requested": line.quantity,
                "available": level.stock,
            }
        )
    before = after + line.quantity
    movement = Movement(
        product_id=line.product_id,
        kind="reservation",
        before=before,
        after=after,
        reason=RESERVED_REASON,
        actor=actor,
        order_id=order_id,
        created_at=now,
    )
    await _record(uow, movement)


async def release_reservation(deps: InventoryDeps, *, order_id: str, actor: str) -> ReleaseOutcome:
    """Give the order's stock back once. 'released', or 'none' if nothing was reserved."""
    for _ in range(MAX_ATTEMPTS):
        try:
            return await _release_once(deps, order_id, actor)
        except ReservationExists:
            continue  # its reservation committed while we fenced it: release that one
    raise ServiceUnavailable("The reservation is changing; try again")


async def _release_once(deps: InventoryDeps, order_id: str, actor: str) -> ReleaseOutcome:
    now = deps.clock()
    async with deps.units() as uow:
        reservation = await uow.reservations.get(order_id)
        if reservation is None:
            # Fence the order_id: a reserve call still on its way (a slow or retried one)
            # must not take stock for an order that has been given up.
            await uow.reservations.add(Reservation(order_id, "released", (), now))
            await uow.commit()
            STOCK_RELEASES.labels(outcome="nothing_reserved").inc()
            return "none"
        if not await uow.reservations.mark_released(order_id, now):
            return "released"  # released before: nothing more to give back
        for line in reservation.lines:
            await _give_back(uow, line, order_id, actor, now)
        await uow.commit()
    STOCK_RELEASES.labels(outcome="released").inc()
    return "released"


async def _give_back(
    uow: UnitOfWork, line: ReservationLine, order_id: str, actor: str, now: datetime
) -> None:
    after = await uow.stock.increment(line.product_id, line.quantity, now)
    if after is None:
        logger.info("release of order %s: product %s is gone", order_id, line.product_id)
        return
    before = after - line.quantity
    movement = Movement(
        product_id=line.product_id,
        kind="release",
        before=before,
        after=after,
        reason=RELEASED_REASON,
        actor=actor,
        order_id=order_id,
        created_at=now,
    )
    await _record(uow, movement)


async def get_reservation(deps: InventoryDeps, *, order_id: str) -> Reservation | None:
    async with deps.units(readonly=True) as uow:
        return await uow.reservations.get(order_id)


async def _record(uow: UnitOfWork, movement: Movement) -> None:
    await uow.movements.add(movement)
    await uow.events.append("stock.changed", movement.product_id, movement.as_event_data())


# --- following the products feed -------------------------------------------------------


async def feed_cursor(deps: InventoryDeps, *, feed: str) -> int:
    return await read_cursor(deps.units(readonly=True), feed)


async def apply_product_changes(uow: UnitOfWork, batch: Batch[ProductChange]) -> int:
    """Apply a batch of (seq, change) from the products feed with its cursor, in one
    transaction; what another process already applied is skipped. Returns how many
    events were new. `None` stands for an event type inventory does not need."""
    return await apply_batch_together(uow, PRODUCTS_FEED, batch, apply_product_changes_together)


async def apply_product_changes_together(uow: UnitOfWork, changes: Sequence[ProductChange]) -> None:
    """A page of the products feed in order, each run of creations written together: an
    import's page of 500 new products is a few statements, not four per product."""
    created: list[ProductCreated] = []
    for change in changes:
        if isinstance(change, ProductCreated):
            created.append(change)
            continue
        await _create_levels(uow, created)
        created = []
        await apply_product_change(uow, change)
    await _create_levels(uow, created)


async def _create_levels(uow: UnitOfWork, created: Sequence[ProductCreated]) -> None:
    if not created:
        return
    now = utc_now()
    levels = [
        StockLevel(c.product_id, c.title, c.category_id, c.initial_stock, None, now)
        for c in created
    ]
    movements = [
        _initial_movement(level.product_id, level.stock, now)
        for level in await uow.stock.add_many(levels)
    ]
    await uow.movements.add_many(movements)
    await uow.events.append_many(
        [("stock.changed", m.product_id, m.as_event_data()) for m in movements]
    )


async def apply_product_change(uow: UnitOfWork, change: ProductChange) -> None:
    now = utc_now()
    if isinstance(change, ProductCreated):
        await _create_level(uow, change, now)
    elif isinstance(change, ProductUpdated):
        await _update_level(uow, change, now)
    elif await uow.stock.remove(change.product_id):
        await uow.events.append(
            "stock.removed", change.product_id, {"product_id": change.product_id}
        )


async def _create_level(uow: UnitOfWork, change: ProductCreated, now: datetime) -> None:
    pid, stock = change.product_id, change.initial_stock
    level = StockLevel(pid, change.title, change.category_id, stock, None, now)
    if await uow.stock.add(level):
        await _record(uow, _initial_movement(pid, stock, now))


def _set_movement(
    product_id: str, *, before: int, after: int, reason: str, actor: str, now: datetime
) -> Movement:
    """A level set outright (by an admin, or by products handing over a stock)."""
    return Movement(
        product_id=product_id,
        kind="admin_set",
        before=before,
        after=after,
        reason=reason,
        actor=actor,
        order_id=None,
        created_at=now,
    )


def _initial_movement(product_id: str, stock: int, now: datetime) -> Movement:
    return Movement(
        product_id=product_id,
        kind="initial",
        before=0,
        after=stock,
        reason=INITIAL_REASON,
        actor=PRODUCTS_ACTOR,
        order_id=None,
        created_at=now,
    )


async def _update_level(uow: UnitOfWork, change: ProductUpdated, now: datetime) -> None:
    pid, stock = change.product_id, change.stock_set
    if not await uow.stock.describe(pid, change.title, change.category_id, now):
        logger.warning("product.updated for %s, which has no stock level", pid)
        return
    if stock is not None:
        before = await _swap_stock(uow, pid, stock, None, now)
        movement = _set_movement(
            pid,
            before=before,
            after=stock,
            reason=PRODUCTS_SET_REASON,
            actor=PRODUCTS_ACTOR,
            now=now,
        )
        await _record(uow, movement)
