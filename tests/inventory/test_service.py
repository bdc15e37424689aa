"""Use cases against in-memory fakes: reservations, releases, admin sets, the products feed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from retail.inventory import service
from retail.inventory.clients import product_change
from retail.inventory.domain import (
    ProductChange,
    ProductCreated,
    ProductDeleted,
    ProductUpdated,
    Reservation,
    ReservationLine,
    StockLevel,
    Threshold,
    merge_lines,
)
from retail.inventory.exceptions import (
    InsufficientStock,
    ProductNotFound,
    ReservationReleased,
    StockChanged,
    UnknownProduct,
)
from retail.kernel.errors import ServiceUnavailable
from retail.kernel.events import Event
from tests.inventory.fakes import FakeUnitOfWork, State, deps_over

ORDERS = "service:orders"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def stocked(**levels: int) -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    batch = [
        (n, ProductCreated(pid, pid.upper(), None, stock))
        for n, (pid, stock) in enumerate(levels.items(), 1)
    ]
    await service.apply_product_changes(uow, batch)
    return uow


def stock(uow: FakeUnitOfWork) -> dict[str, int]:
    return {pid: level.stock for pid, level in uow.state.levels.items()}


def lines(**quantities: int) -> list[ReservationLine]:
    return [ReservationLine(pid, q) for pid, q in quantities.items()]


def event_data(uow: FakeUnitOfWork) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.data) for e in uow.state.events.events]


def test_lines_are_merged_and_taken_in_product_order() -> None:
    merged = merge_lines([*lines(b=1, a=2), ReservationLine("b", 4)])
    assert merged == (ReservationLine("a", 2), ReservationLine("b", 5))


def test_a_level_is_low_at_its_own_threshold_or_the_default() -> None:
    level = StockLevel("a", "A", None, 5, None, NOW)
    assert level.is_low(5)
    assert not level.is_low(4)
    level.low_stock_threshold = 10
    assert level.is_low(0)


# --- reservations ---------------------------------------------------------------------


async def test_reserve_takes_every_line_and_records_it() -> None:
    uow = await stocked(a=5, b=2)
    done = await service.reserve_stock(
        deps_over(uow), order_id="o1", lines=lines(b=2, a=1), actor=ORDERS
    )
    assert done.lines == (ReservationLine("a", 1), ReservationLine("b", 2))
    assert stock(uow) == {"a": 4, "b": 0}
    moved = [(m.kind, m.product_id, m.change, m.actor, m.order_id) for m in uow.state.movements]
    assert moved[-2:] == [
        ("reservation", "a", -1, ORDERS, "o1"),
        ("reservation", "b", -2, ORDERS, "o1"),
    ]
    assert event_data(uow)[-1] == (
        "stock.changed",
        {"product_id": "b", "stock": 0, "change": -2, "reason": "reserved for order",
         "order_id": "o1"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("wanted", "error", "details"),
    [
        (lines(a=1, b=3), InsufficientStock, {"product_id": "b", "requested": 3, "available": 2}),
        (lines(a=6), InsufficientStock, {"product_id": "a", "requested": 6, "available": 5}),
        (lines(a=1, zzz=1), UnknownProduct, {"product_id": "zzz"}),
    ],
)
async def test_a_refused_line_takes_nothing(
    wanted: list[ReservationLine], error: type[Exception], details: dict[str, Any]
) -> None:
    uow = await stocked(a=5, b=2)
    events_before = len(uow.state.events.events)
    with pytest.raises(error) as caught:
        await service.reserve_stock(deps_over(uow), order_id="o1", lines=wanted, actor=ORDERS)
    assert getattr(caught.value, "details", None) == details
    assert stock(uow) == {"a": 5, "b": 2}
    assert "o1" not in uow.state.reservations
    assert len(uow.state.events.events) == events_before


async def test_a_repeat_answers_the_same_without_moving_stock() -> None:
    uow = await stocked(a=5)
    first = await service.reserve_stock(
        deps_over(uow), order_id="o1", lines=lines(a=2), actor=ORDERS
    )
    again = await service.reserve_stock(
        deps_over(uow), order_id="o1", lines=lines(a=4), actor=ORDERS
    )
    assert again == first
    assert stock(uow) == {"a": 3}


async def test_a_concurrent_duplicate_is_answered_as_a_repeat() -> None:
    uow = await stocked(a=5)
    theirs = Reservation("o1", "reserved", (ReservationLine("a", 2),), NOW)
    uow.state.duplicate_on_add = theirs
    assert (
        await service.reserve_stock(deps_over(uow), order_id="o1", lines=lines(a=2), actor=ORDERS)
        == theirs
    )
    assert stock(uow) == {"a": 5}  # ours rolled back; theirs moved stock in its own process


async def test_a_released_order_cannot_reserve_again() -> None:
    uow = await stocked(a=5)
    await service.reserve_stock(deps_over(uow), order_id="o1", lines=lines(a=2), actor=ORDERS)
    assert (
        await service.release_reservation(deps_over(uow), order_id="o1", actor=ORDERS) == "released"
    )
    with pytest.raises(ReservationReleased):
        await service.reserve_stock(deps_over(uow), order_id="o1", lines=lines(a=2), actor=ORDERS)
    assert stock(uow) == {"a": 5}


async def test_release_gives_back_once() -> None:
    uow = await stocked(a=5, b=5)
    await service.reserve_stock(deps_over(uow), order_id="o1", lines=lines(a=2, b=1), actor=ORDERS)
    assert (
        await service.release_reservation(deps_over(uow), order_id="o1", actor=ORDERS) == "released"
    )
    assert (
        await service.release_reservation(deps_over(uow), order_id="o1", actor=ORDERS) == "released"
    )
    assert stock(uow) == {"a": 5, "b": 5}
    releases = [m for m in uow.state.movements if m.kind == "release"]
    assert [(m.product_id, m.before, m.after) for m in releases] == [("a", 3, 5), ("b", 4, 5)]


async def test_release_skips_products_removed_meanwhile() -> None:
    uow = await stocked(a=5, b=5)
    await service.reserve_stock(deps_over(uow), order_id="o1", lines=lines(a=2, b=1), actor=ORDERS)
    await service.apply_product_changes(uow, [(3, ProductDeleted("a"))])
    assert (
        await service.release_reservation(deps_over(uow), order_id="o1", actor=ORDERS) == "released"
    )
    assert stock(uow) == {"b": 5}


async def test_releasing_an_unknown_order_answers_none_and_fences_it() -> None:
    uow = await stocked(a=5)
    assert await service.release_reservation(deps_over(uow), order_id="o9", actor=ORDERS) == "none"
    with pytest.raises(ReservationReleased):
        await service.reserve_stock(deps_over(uow), order_id="o9", lines=lines(a=1), actor=ORDERS)
    found = await service.get_reservation(deps_over(uow), order_id="o9")
    assert found is not None
    assert (found.status, found.lines) == ("released", ())


async def test_a_release_that_races_a_late_reservation_releases_it() -> None:
    uow = await stocked(a=5)
    await service.reserve_stock(deps_over(uow), order_id="o1", lines=lines(a=2), actor=ORDERS)
    # The release's `get` saw nothing; then the reservation committed, so its fence fails.
    late = uow.state.reservations.pop("o1")
    uow.state.duplicate_on_add = late
    assert (
        await service.release_reservation(deps_over(uow), order_id="o1", actor=ORDERS) == "released"
    )
    assert stock(uow) == {"a": 5}


# --- admin sets -------------------------------------------------------------------------


async def test_set_stock_records_before_and_after() -> None:
    uow = await stocked(a=5)
    level = await service.set_stock(
        deps_over(uow), product_id="a", stock=9, reason="delivery", actor="admin-1"
    )
    assert level.stock == 9
    last = uow.state.movements[-1]
    assert (last.kind, last.before, last.after, last.reason, last.actor) == (
        "admin_set", 5, 9, "delivery", "admin-1"
    )  # fmt: skip


async def test_set_stock_without_expected_reads_again_when_a_reservation_slips_in() -> None:
    uow = await stocked(a=5)
    uow.state.stock_moves_before_cas = [-2]
    await service.set_stock(
        deps_over(uow), product_id="a", stock=9, reason="count", actor="admin-1"
    )
    assert uow.state.movements[-1].before == 3
    assert stock(uow) == {"a": 9}


async def test_set_stock_gives_up_when_it_keeps_losing() -> None:
    uow = await stocked(a=5)
    uow.state.stock_moves_before_cas = [-1] * service.MAX_ATTEMPTS
    with pytest.raises(ServiceUnavailable):
        await service.set_stock(
            deps_over(uow), product_id="a", stock=9, reason="count", actor="admin-1"
        )
    assert stock(uow) == {"a": 5}


async def test_compare_and_set_refuses_a_stale_expectation() -> None:
    uow = await stocked(a=5)
    with pytest.raises(StockChanged) as caught:
        await service.set_stock(
            deps_over(uow), product_id="a", stock=9, reason="x", actor="admin-1", expected=4
        )
    assert caught.value.details == {"expected": 4, "actual": 5}
    level = await service.set_stock(
        deps_over(uow), product_id="a", stock=9, reason="x", actor="admin-1", expected=5
    )
    assert level.stock == 9


async def test_thresholds_are_set_cleared_or_kept() -> None:
    uow = await stocked(a=5)
    level = await service.set_stock(
        deps_over(uow), product_id="a", stock=5, reason="x", actor="u", threshold=Threshold(2)
    )
    assert level.low_stock_threshold == 2
    level = await service.set_stock(deps_over(uow), product_id="a", stock=5, reason="x", actor="u")
    assert level.low_stock_threshold == 2
    level = await service.set_stock(
        deps_over(uow), product_id="a", stock=5, reason="x", actor="u", threshold=Threshold(None)
    )
    assert level.low_stock_threshold is None


@pytest.mark.parametrize("expected", [None, 3])
async def test_setting_an_unknown_product_is_404(expected: int | None) -> None:
    with pytest.raises(ProductNotFound):
        await service.set_stock(
            deps_over(FakeUnitOfWork()),
            product_id="zz",
            stock=1,
            reason="x",
            actor="u",
            expected=expected,
        )


async def test_history_and_listing() -> None:
    uow = await stocked(a=1, b=9, c=5)
    low = await service.list_levels(deps_over(uow), low_stock=5, offset=0, limit=10)
    assert ([v.product_id for v in low.items], low.total) == (["a", "c"], 2)
    page = await service.list_levels(deps_over(uow), low_stock=None, offset=1, limit=1)
    assert ([v.product_id for v in page.items], page.total) == (["b"], 3)
    with pytest.raises(ProductNotFound):
        await service.history(deps_over(uow), product_id="zz", offset=0, limit=10)
    await service.apply_product_changes(uow, [(4, ProductDeleted("a"))])
    kept = await service.history(deps_over(uow), product_id="a", offset=0, limit=10)
    assert [m.kind for m in kept.items] == ["initial"]


# --- the products feed -----------------------------------------------------------------


async def test_product_changes_create_rename_set_and_remove_levels() -> None:
    uow = FakeUnitOfWork()
    batch = [
        (1, ProductCreated("a", "Apple", "c1", 4)),
        (2, None),
        (3, ProductUpdated("a", "Green apple", "c2", None)),
        (4, ProductUpdated("a", "Green apple", "c2", 7)),
        (5, ProductCreated("b", "Banana", None, 0)),
        (6, ProductDeleted("b")),
        (7, ProductUpdated("ghost", "Ghost", None, 3)),
    ]
    assert await service.apply_product_changes(uow, batch) == 7
    assert uow.state.cursors == {"products": 7}
    level = uow.state.levels["a"]
    assert (level.title, level.category_id, level.stock) == ("Green apple", "c2", 7)
    assert list(uow.state.levels) == ["a"]
    assert [t for t, _ in event_data(uow)] == [
        "stock.changed", "stock.changed", "stock.changed", "stock.removed"
    ]  # fmt: skip
    assert [(m.kind, m.reason) for m in uow.state.movements if m.product_id == "a"] == [
        ("initial", "initial stock"),
        ("admin_set", "set via products"),
    ]


async def test_a_batch_is_applied_once() -> None:
    uow = await stocked(a=5)
    again: list[tuple[int, ProductChange | None]] = [
        (1, ProductCreated("a", "A", None, 5)),
        (2, ProductUpdated("a", "A", None, 8)),
    ]
    assert await service.apply_product_changes(uow, again) == 1
    assert await service.apply_product_changes(uow, again) == 0
    assert stock(uow) == {"a": 8}
    assert len(uow.state.movements) == 2


async def test_a_batch_another_process_started_is_read_again() -> None:
    uow = FakeUnitOfWork(State())
    uow.state.cursor_moves_before_advance = [1]  # the other process applied seq 1 only
    batch = [(1, ProductCreated("a", "A", None, 5)), (2, ProductCreated("b", "B", None, 3))]
    assert await service.apply_product_changes(uow, batch) == 1
    assert uow.state.cursors == {"products": 2}
    assert list(uow.state.levels) == ["b"]  # "a" is the other process's to write


def test_products_events_translate_to_changes() -> None:
    def event(kind: str, data: dict[str, Any]) -> Event:
        return Event(seq=1, type=kind, key="a", data=data, occurred_at=NOW)

    product = {"id": "a", "title": "A", "category_id": None, "price": 1.0, "stock": 0}
    created = product_change(event("product.created", product | {"initial_stock": 4}))
    assert created == ProductCreated("a", "A", None, 4)
    assert product_change(event("product.updated", product)) == ProductUpdated("a", "A", None, None)
    assert product_change(event("product.deleted", {"id": "a"})) == ProductDeleted("a")
    assert product_change(event("product.image_added", {})) is None
    with pytest.raises(ValidationError):
        product_change(event("product.created", product))  # no initial_stock: never guess
    with pytest.raises(ValidationError):
        product_change(event("product.updated", product | {"stock_set": -1}))
