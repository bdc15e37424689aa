"""The repositories and unit of work of every back end, against one contract: conditional
writes, rollback unless committed, the outbox, and the reservation use cases raced through
two separately opened stores on one database, as two processes would race.

Timestamps are kept to the millisecond (a BSON date's precision), so a reservation answered
from storage equals the one first returned at that precision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from retail.inventory import service
from retail.inventory.dependencies import Units
from retail.inventory.domain import (
    Movement,
    ProductChange,
    ProductCreated,
    ProductDeleted,
    ProductUpdated,
    Reservation,
    ReservationLine,
    StockLevel,
)
from retail.inventory.exceptions import (
    InsufficientStock,
    ReservationExists,
    ReservationReleased,
    UnknownProduct,
)
from retail.inventory.ports import InventoryDeps
from tests.inventory.conftest import Processes

ORDERS = "service:orders"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def stock_up(units: Units, **levels: int) -> None:
    """Create levels the way products does: through the products feed."""
    start = await service.feed_cursor(InventoryDeps(units), feed=service.PRODUCTS_FEED)
    batch = [
        (start + n, ProductCreated(pid, pid.title(), None, stock))
        for n, (pid, stock) in enumerate(levels.items(), 1)
    ]
    await service.apply_product_changes(units(), batch)


async def stock_of(units: Units, product_id: str) -> int:
    level = await service.get_level(InventoryDeps(units), product_id=product_id)
    return level.stock


async def count_movements(units: Units, kind: str, *products: str) -> int:
    async with units(readonly=True) as work:
        pages = [await work.movements.page(p, offset=0, limit=1000) for p in products]
    return sum(1 for page in pages for movement in page.items if movement.kind == kind)


def to_ms(reservation: object) -> object:
    if not isinstance(reservation, Reservation):
        return reservation
    at = reservation.created_at
    return replace(reservation, created_at=at.replace(microsecond=at.microsecond // 1000 * 1000))


def lines(**quantities: int) -> list[ReservationLine]:
    return [ReservationLine(pid, q) for pid, q in quantities.items()]


async def reserve(units: Units, order_id: str, wanted: Sequence[ReservationLine]) -> object:
    """The outcome of a reservation: the Reservation, or the error it raised."""
    try:
        return await service.reserve_stock(
            InventoryDeps(units), order_id=order_id, lines=wanted, actor=ORDERS
        )
    except (InsufficientStock, UnknownProduct, ReservationReleased) as exc:
        return exc


# --- repositories -----------------------------------------------------------------------


async def test_the_conditional_decrement_never_goes_negative(processes: Processes) -> None:
    one = processes.one
    await stock_up(one, a=3)
    async with one() as work:
        assert await work.stock.decrement("a", 5, NOW) is None
        assert await work.stock.decrement("a", 3, NOW) == 0
        assert await work.stock.decrement("a", 1, NOW) is None
        assert await work.stock.decrement("missing", 1, NOW) is None
        assert await work.stock.increment("missing", 1, NOW) is None
        await work.commit()
    assert await stock_of(one, "a") == 0


async def test_levels_round_trip_as_domain_objects(processes: Processes) -> None:
    one = processes.one
    level = StockLevel("p1", "Pear", "c1", 7, None, NOW)
    async with one() as work:
        assert await work.stock.add(level)
        assert not await work.stock.add(StockLevel("p1", "Other", None, 99, 1, NOW))
        await work.stock.set_threshold("p1", 3)
        assert await work.stock.describe("p1", "Green pear", "c2", NOW)
        assert not await work.stock.describe("nope", "x", None, NOW)
        assert await work.stock.compare_and_set("p1", 7, 9, NOW)
        assert not await work.stock.compare_and_set("p1", 7, 1, NOW)
        await work.commit()
    async with one(readonly=True) as work:
        found = await work.stock.get("p1")
        assert await work.stock.get("nope") is None
    assert found == StockLevel("p1", "Green pear", "c2", 9, 3, NOW)
    assert found.updated_at.tzinfo is not None
    assert found.updated_at.utcoffset() == UTC.utcoffset(None)
    assert type(found.stock) is int


async def test_pages_sort_by_title_and_filter_low_stock(processes: Processes) -> None:
    one = processes.one
    async with one() as work:
        for pid, title, stock, threshold in [
            ("a", "Cherry", 2, None),  # low by the default (3)
            ("b", "Apple", 5, 10),  # low by its own threshold
            ("c", "Banana", 4, None),
            ("d", "Apple", 1, 0),  # not low: its own threshold is 0
        ]:
            assert await work.stock.add(StockLevel(pid, title, None, stock, threshold, NOW))
        await work.commit()
    async with one(readonly=True) as work:
        everything = await work.stock.page(low_stock=None, offset=0, limit=10)
        second = await work.stock.page(low_stock=None, offset=1, limit=2)
        low = await work.stock.page(low_stock=3, offset=0, limit=10)
    assert [v.product_id for v in everything.items] == ["b", "d", "c", "a"]
    assert ([v.product_id for v in second.items], second.total) == (["d", "c"], 4)
    assert ([v.product_id for v in low.items], low.total) == (["b", "a"], 2)


async def test_removing_a_level_keeps_its_history(processes: Processes) -> None:
    one = processes.one
    await stock_up(one, a=3)
    async with one() as work:
        assert await work.stock.remove("a")
        assert not await work.stock.remove("a")
        await work.commit()
    page = await service.history(InventoryDeps(one), product_id="a", offset=0, limit=10)
    assert [(m.kind, m.before, m.after) for m in page.items] == [("initial", 0, 3)]


async def test_movements_are_numbered_and_listed_newest_first(processes: Processes) -> None:
    one = processes.one
    async with one() as work:
        for n in range(12):
            movement = Movement(
                product_id="a",
                kind="admin_set",
                before=n,
                after=n + 1,
                reason=f"count {n}",
                actor="admin-1",
                order_id=None,
                created_at=NOW,
            )
            await work.movements.add(movement)
        await work.movements.add(
            Movement(
                product_id="b",
                kind="initial",
                before=0,
                after=1,
                reason="x",
                actor="y",
                order_id="o1",
                created_at=NOW,
            )
        )
        await work.commit()
    async with one(readonly=True) as work:
        first = await work.movements.page("a", offset=0, limit=3)
        last = await work.movements.page("a", offset=10, limit=5)
    assert first.total == 12
    assert [m.after for m in first.items] == [12, 11, 10]
    assert [m.after for m in last.items] == [2, 1]
    ids = [m.id or 0 for m in first.items]
    assert all(type(m.id) is int for m in first.items)
    assert ids == sorted(ids, reverse=True)
    assert first.items[0].created_at == NOW
    assert first.items[0].change == 1


async def test_the_order_id_key_refuses_a_second_insert(processes: Processes) -> None:
    one = processes.one
    reservation = Reservation("o1", "reserved", tuple(lines(a=1, b=2)), NOW)
    async with one() as work:
        await work.reservations.add(reservation)
        await work.commit()
    async with one() as work:
        with pytest.raises(ReservationExists):
            await work.reservations.add(Reservation("o1", "released", (), NOW))
    assert await service.get_reservation(InventoryDeps(one), order_id="o1") == reservation


async def test_the_feed_cursor_moves_only_from_where_it_was(processes: Processes) -> None:
    one = processes.one
    async with one() as work:
        assert await work.cursors.advance_from("products", 0, 3)
        assert not await work.cursors.advance_from("products", 0, 5)
        assert not await work.cursors.advance_from("products", 2, 5)
        assert await work.cursors.advance_from("products", 3, 5)
        await work.commit()
    assert await service.feed_cursor(InventoryDeps(one), feed="products") == 5


# --- the unit of work and the outbox -----------------------------------------------------


async def write_everything_then_fail(units: Units) -> None:
    async with units() as work:
        await work.stock.decrement("a", 2, NOW)
        await work.stock.add(StockLevel("b", "B", None, 1, None, NOW))
        await work.reservations.add(Reservation("o1", "reserved", tuple(lines(a=2)), NOW))
        await work.cursors.advance_from("products", 1, 9)
        await work.events.append("stock.changed", "a", {"stock": 3})
        raise RuntimeError("boom")


async def test_nothing_is_kept_unless_committed(processes: Processes) -> None:
    one = processes.one
    await stock_up(one, a=5)
    with pytest.raises(RuntimeError, match="boom"):
        await write_everything_then_fail(one)
    async with one() as work:  # leaving without a commit rolls back too
        await work.stock.decrement("a", 1, NOW)
        await work.events.append("stock.changed", "a", {"stock": 4})
    assert await stock_of(one, "a") == 5
    async with one(readonly=True) as work:
        assert await work.stock.get("b") is None
        assert await work.reservations.get("o1") is None
        assert await work.cursors.get("products") == 1
        events = await work.events.read_after(0, 100)
    assert [e.data["stock"] for e in events] == [5]


async def test_events_are_seen_once_committed_in_seq_order(processes: Processes) -> None:
    one, two = processes.one, processes.two
    async with one() as work:
        await work.events.append("thing.created", "k1", {"n": 1, "nested": {"none": None}})
        await work.events.append("thing.created", "k2", {"n": 2})
        assert await service.read_events(InventoryDeps(two), after=0, limit=10) == []
        await work.commit()
    events = await service.read_events(InventoryDeps(two), after=0, limit=10)
    assert [(e.type, e.key, e.data) for e in events] == [
        ("thing.created", "k1", {"n": 1, "nested": {"none": None}}),
        ("thing.created", "k2", {"n": 2}),
    ]
    assert events[0].seq < events[1].seq
    assert events[0].occurred_at.tzinfo is not None
    later = await service.read_events(InventoryDeps(two), after=events[0].seq, limit=10)
    assert [e.key for e in later] == ["k2"]


async def test_racing_writers_get_seqs_in_commit_order(processes: Processes) -> None:
    async def write(units: Units, n: int) -> None:
        async with units() as work:
            await work.events.append("thing.created", f"k{n}", {"n": n})
            await asyncio.sleep(0)  # let the other writers run meanwhile
            await work.events.append("thing.updated", f"k{n}", {"n": n})
            await work.commit()

    await asyncio.gather(*(write(processes.one if n % 2 else processes.two, n) for n in range(30)))
    events = await service.read_events(InventoryDeps(processes.one), after=0, limit=1000)
    assert len(events) == 60
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 60
    # One writer's two events are never split by another's: writers take turns.
    for created, updated in zip(events[::2], events[1::2], strict=True):
        assert (created.type, updated.type) == ("thing.created", "thing.updated")
        assert created.key == updated.key


# --- the reservation use cases, raced ---------------------------------------------------


async def test_fifty_racing_reservations_through_two_stores_never_oversell(
    processes: Processes,
) -> None:
    one, two = processes.one, processes.two
    await stock_up(one, a=10)
    outcomes = await asyncio.gather(
        *(reserve(one if n % 2 else two, f"order-{n}", lines(a=1)) for n in range(50))
    )
    reserved = [o for o in outcomes if isinstance(o, Reservation)]
    refused = [o for o in outcomes if isinstance(o, InsufficientStock)]
    assert (len(reserved), len(refused)) == (10, 40)
    assert all(e.details == {"product_id": "a", "requested": 1, "available": 0} for e in refused)
    assert await stock_of(one, "a") == 0
    assert await stock_of(two, "a") == 0
    assert await count_movements(one, "reservation", "a") == 10
    events = await service.read_events(InventoryDeps(two), after=0, limit=100)
    changes = [e.data for e in events if e.type == "stock.changed"]
    assert [c["stock"] for c in changes] == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert {c["order_id"] for c in changes[1:]} == {r.order_id for r in reserved}


async def test_lines_are_all_or_nothing(processes: Processes) -> None:
    one = processes.one
    await stock_up(one, a=5, b=1)
    refused = await reserve(one, "o1", lines(a=2, b=2))
    assert isinstance(refused, InsufficientStock)
    assert refused.details == {"product_id": "b", "requested": 2, "available": 1}
    unknown = await reserve(one, "o1", lines(a=2, zz=1))
    assert isinstance(unknown, UnknownProduct)
    assert unknown.details == {"product_id": "zz"}
    assert (await stock_of(one, "a"), await stock_of(one, "b")) == (5, 1)
    assert await count_movements(one, "reservation", "a", "b") == 0
    assert await service.get_reservation(InventoryDeps(one), order_id="o1") is None
    assert [e.type for e in await service.read_events(InventoryDeps(one), after=0, limit=10)] == [
        "stock.changed",
        "stock.changed",
    ]
    # Nothing was kept of the refusals, so the same order may try again.
    done = await reserve(one, "o1", lines(a=2, b=1))
    assert isinstance(done, Reservation)
    assert (await stock_of(one, "a"), await stock_of(one, "b")) == (3, 0)


async def test_duplicate_product_lines_are_merged(processes: Processes) -> None:
    one = processes.one
    await stock_up(one, a=5, b=5)
    done = await service.reserve_stock(
        InventoryDeps(one),
        order_id="o1",
        lines=[*lines(b=1, a=1), ReservationLine("a", 2)],
        actor=ORDERS,
    )
    assert done.lines == (ReservationLine("a", 3), ReservationLine("b", 1))
    assert await stock_of(one, "a") == 2
    assert await count_movements(one, "reservation", "a", "b") == 2
    assert to_ms(await service.get_reservation(InventoryDeps(one), order_id="o1")) == to_ms(done)


async def test_opposite_line_orders_at_once_do_not_deadlock(processes: Processes) -> None:
    one, two = processes.one, processes.two
    await stock_up(one, a=100, b=100)
    for round_ in range(20):
        forward = [ReservationLine("a", 1), ReservationLine("b", 2)]
        backward = [ReservationLine("b", 1), ReservationLine("a", 2)]
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                reserve(one, f"fwd-{round_}", forward), reserve(two, f"bwd-{round_}", backward)
            ),
            timeout=30,
        )
        assert all(isinstance(o, Reservation) for o in outcomes)
    assert (await stock_of(one, "a"), await stock_of(one, "b")) == (40, 40)
    assert await count_movements(two, "reservation", "a", "b") == 80


async def test_a_repeat_reserves_once_and_answers_the_same(processes: Processes) -> None:
    one = processes.one
    await stock_up(one, a=5)
    first = await service.reserve_stock(
        InventoryDeps(one), order_id="o1", lines=lines(a=2), actor=ORDERS
    )
    again = await service.reserve_stock(
        InventoryDeps(one), order_id="o1", lines=lines(a=2), actor=ORDERS
    )
    assert to_ms(again) == to_ms(first)
    assert await stock_of(one, "a") == 3
    assert await count_movements(one, "reservation", "a") == 1


async def test_concurrent_duplicates_of_one_order_reserve_once(processes: Processes) -> None:
    one, two = processes.one, processes.two
    await stock_up(one, a=100)
    outcomes = await asyncio.gather(
        *(reserve(one if n % 2 else two, "same-order", lines(a=3)) for n in range(20))
    )
    assert all(isinstance(o, Reservation) and o.status == "reserved" for o in outcomes)
    assert len({to_ms(o) for o in outcomes}) == 1
    assert await stock_of(one, "a") == 97
    assert await count_movements(one, "reservation", "a") == 1


async def test_release_gives_back_once(processes: Processes) -> None:
    one, two = processes.one, processes.two
    await stock_up(one, a=5, b=5)
    await service.reserve_stock(
        InventoryDeps(one), order_id="o1", lines=lines(a=2, b=3), actor=ORDERS
    )
    outcomes = await asyncio.gather(
        *(
            service.release_reservation(
                InventoryDeps(one if n % 2 else two), order_id="o1", actor=ORDERS
            )
            for n in range(10)
        )
    )
    assert outcomes == ["released"] * 10
    assert (await stock_of(one, "a"), await stock_of(one, "b")) == (5, 5)
    assert await count_movements(one, "release", "a", "b") == 2
    found = await service.get_reservation(InventoryDeps(two), order_id="o1")
    assert found is not None
    assert found.status == "released"
    assert isinstance(await reserve(one, "o1", lines(a=1)), ReservationReleased)
    assert await stock_of(one, "a") == 5


async def test_releasing_an_unknown_order_fences_it(processes: Processes) -> None:
    one = processes.one
    await stock_up(one, a=5)
    assert (
        await service.release_reservation(InventoryDeps(one), order_id="late", actor=ORDERS)
        == "none"
    )
    assert (
        await service.release_reservation(InventoryDeps(one), order_id="late", actor=ORDERS)
        == "released"
    )
    # A reserve call that arrives after its order was given up must not take stock.
    assert isinstance(await reserve(one, "late", lines(a=1)), ReservationReleased)
    assert await stock_of(one, "a") == 5


async def test_release_and_reserve_racing_leave_stock_consistent(processes: Processes) -> None:
    one, two = processes.one, processes.two
    await stock_up(one, a=1000)
    for n in range(15):
        order = f"race-{n}"
        reserved, _ = await asyncio.gather(
            reserve(one, order, lines(a=2)),
            service.release_reservation(InventoryDeps(two), order_id=order, actor=ORDERS),
        )
        found = await service.get_reservation(InventoryDeps(one), order_id=order)
        assert found is not None
        assert found.status == "released"
        assert isinstance(reserved, Reservation | ReservationReleased)
    assert await stock_of(one, "a") == 1000


async def test_a_feed_batch_applied_by_two_processes_counts_once(processes: Processes) -> None:
    one, two = processes.one, processes.two
    batch = [(1, ProductCreated("a", "A", None, 5)), (2, ProductCreated("b", "B", None, 7))]
    applied = await asyncio.gather(
        service.apply_product_changes(one(), batch),
        service.apply_product_changes(two(), batch),
    )
    assert sorted(applied) == [0, 2]
    assert await count_movements(one, "initial", "a", "b") == 2
    assert await service.feed_cursor(InventoryDeps(two), feed="products") == 2


async def test_a_page_of_the_products_feed_is_applied_in_order(processes: Processes) -> None:
    """Runs of creations are written together (an import's page), the rest one by one, all
    in feed order: a product created, set, deleted and created again in one page ends as
    the last event says, and a creation repeated in the page counts once."""
    one, two = processes.one, processes.two
    await stock_up(one, old=3)
    start = await service.feed_cursor(InventoryDeps(one), feed=service.PRODUCTS_FEED)
    changes: list[ProductChange] = [
        ProductCreated("a", "A", None, 5),
        ProductCreated("b", "B", None, 7),
        ProductCreated("a", "A again", None, 9),  # a repeat: the first one counts
        ProductCreated("old", "Old", None, 50),  # already has a level: unchanged
        ProductUpdated("b", "B2", "c1", 1),
        ProductDeleted("a"),
        ProductCreated("a", "A anew", None, 2),
    ]
    batch = [(start + n, change) for n, change in enumerate(changes, 1)]
    assert await service.apply_product_changes(two(), batch) == len(changes)
    assert (await stock_of(one, "a"), await stock_of(one, "b"), await stock_of(one, "old")) == (
        2,
        1,
        3,
    )
    assert await count_movements(one, "initial", "a", "b", "old") == 4
    async with one(readonly=True) as work:
        events = await work.events.read_after(0, 100)
    changed = [(e.key, e.data["stock"]) for e in events if e.type == "stock.changed"]
    assert changed[1:] == [("a", 5), ("b", 7), ("b", 1), ("a", 2)]
