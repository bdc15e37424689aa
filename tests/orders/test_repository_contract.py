"""The repositories and unit of work of every back end, against one contract: round trips,
the unique guards, conditional writes, recovery claims, idempotency records, rollback unless
committed; and the races that matter raced through two separately opened stores on one
database, as two processes would race.

Timestamps are whole minutes here: a BSON date keeps milliseconds, SQL microseconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from retail.kernel.security import Principal
from retail.orders import service
from retail.orders.domain import (
    CatalogEntry,
    Failure,
    IdempotencyRecord,
    LineRequest,
    Order,
    OrderLine,
    OrderQuery,
    OrderRequest,
    OrderStatus,
    SkippedItem,
)
from retail.orders.exceptions import IdempotencyKeyTaken, OrderNumberTaken
from retail.orders.ports import OrdersDeps, Units
from tests.orders.conftest import Processes
from tests.orders.fakes import FakeCatalog, FakeInventory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def an_order(
    n: int = 0, *, user: str = "alice", status: OrderStatus = "confirmed", **changes: object
) -> Order:
    at = T0 + timedelta(minutes=n)
    order = Order(
        id=f"00000000-0000-0000-0000-{n:012d}",
        order_number=f"RP-0000-{n:04d}",
        user_id=user,
        status=status,
        lines=(
            OrderLine("lamp", "Desk lamp", 2490, 2, 2000),
            # More cents than a 32-bit integer holds.
            OrderLine("yacht", "Yacht", 9_999_999_999, 1, 0),
        ),
        shipping_address={"line1": "1 Main St", "city": "Springfield", "line2": None},
        created_at=at,
        updated_at=at,
        reservation_id=f"00000000-0000-0000-0000-{n:012d}",
        recovery_lease_until=at + timedelta(seconds=30),
    )
    return replace(order, **changes)  # type: ignore[arg-type]


async def store(units: Units, *orders: Order) -> None:
    async with units() as uow:
        for order in orders:
            await uow.orders.add(order)
        await uow.commit()


async def load(units: Units, order_id: str) -> Order | None:
    async with units(readonly=True) as uow:
        return await uow.orders.get(order_id)


def a_key(n: int, *, at: datetime = T0, user: str = "alice") -> IdempotencyRecord:
    return IdempotencyRecord(user, f"k{n}", "h" * 64, an_order(n).id, at)


async def add_keys(units: Units, *records: IdempotencyRecord) -> None:
    async with units() as uow:
        for record in records:
            await uow.idempotency.add(record)
        await uow.commit()


# --- orders ------------------------------------------------------------------------------


async def test_an_order_round_trips(processes: Processes) -> None:
    one, two = processes.one, processes.two
    skipped = (SkippedItem("mug", "Mug", 2, "insufficient_stock", 1),)
    order = an_order(1, skipped=skipped, release_due=True)
    text_address = an_order(2, shipping_address="221B Baker Street, London")
    # Lines keep the order they were placed in, not product order.
    reversed_lines = an_order(3, lines=tuple(reversed(an_order(3).lines)))
    await store(one, order, text_address, reversed_lines)
    for expected in (order, text_address, reversed_lines):
        found = await load(two, expected.id)
        assert found == expected
        assert found.created_at.utcoffset() == timedelta(0)
        assert all(type(line.unit_price_cents) is int for line in found.lines)
    assert await load(two, "missing") is None


async def write_then_fail(units: Units) -> None:
    async with units() as uow:
        await uow.orders.add(an_order(2))
        await uow.idempotency.add(a_key(2))
        raise RuntimeError("boom")


async def test_nothing_is_stored_without_a_commit(processes: Processes) -> None:
    one = processes.one
    async with one() as uow:
        await uow.orders.add(an_order(1))
        await uow.idempotency.add(a_key(1))
    with pytest.raises(RuntimeError, match="boom"):
        await write_then_fail(one)
    assert await load(one, an_order(1).id) is None
    assert await load(one, an_order(2).id) is None
    async with one(readonly=True) as uow:
        assert await uow.idempotency.get("alice", "k1") is None
        assert await uow.idempotency.get("alice", "k2") is None


async def test_a_rolled_back_change_leaves_the_order_as_it_was(processes: Processes) -> None:
    one = processes.one
    await store(one, an_order(1, status="pending"))
    async with one() as uow:
        fewer = replace(an_order(1), lines=an_order(1).lines[:1], reservation_id="r")
        assert await uow.orders.replace_lines(fewer)
        assert await uow.orders.transition(an_order(1).id, "pending", "cancelled", T0)
    assert await load(one, an_order(1).id) == an_order(1, status="pending")


async def test_order_numbers_are_unique(processes: Processes) -> None:
    await store(processes.one, an_order(1))
    with pytest.raises(OrderNumberTaken):
        await store(processes.two, an_order(2, order_number=an_order(1).order_number))
    assert await load(processes.one, an_order(2).id) is None


async def test_pages_are_newest_first_and_filtered(processes: Processes) -> None:
    statuses: list[OrderStatus] = ["confirmed", "failed", "shipped", "confirmed", "failed"]
    await store(
        processes.one,
        *(an_order(n, status=s) for n, s in enumerate(statuses)),
        an_order(9, user="bob"),
    )

    async def ids(query: OrderQuery, offset: int = 0, limit: int = 10) -> tuple[list[int], int]:
        async with processes.two(readonly=True) as uow:
            page = await uow.orders.page(query, offset=offset, limit=limit)
        return [int(o.id[-3:]) for o in page.items], page.total

    assert await ids(OrderQuery()) == ([9, 4, 3, 2, 1, 0], 6)
    assert await ids(OrderQuery(user_id="alice", hide_failed=True)) == ([3, 2, 0], 3)
    assert await ids(OrderQuery(user_id="alice", status="failed")) == ([4, 1], 2)
    assert await ids(OrderQuery(status="confirmed")) == ([9, 3, 0], 3)
    assert await ids(OrderQuery(hide_failed=True), offset=1, limit=3) == ([3, 2, 0], 4)
    assert await ids(OrderQuery(user_id="alice"), offset=2, limit=2) == ([2, 1], 5)
    assert await ids(OrderQuery(user_id="carol")) == ([], 0)


async def test_orders_created_at_one_moment_page_without_gaps(processes: Processes) -> None:
    await store(processes.one, *(an_order(n, created_at=T0) for n in range(5)))
    seen: list[str] = []
    async with processes.two(readonly=True) as uow:
        for offset in range(0, 5, 2):
            page = await uow.orders.page(OrderQuery(), offset=offset, limit=2)
            seen += [order.id for order in page.items]
    assert sorted(seen, reverse=True) == seen
    assert sorted(seen) == [an_order(n).id for n in range(5)]


async def test_transitions_are_conditional(processes: Processes) -> None:
    one = processes.one
    await store(one, an_order(1, status="pending"), an_order(2, status="pending"))
    later, lease = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    async with one() as uow:
        assert await uow.orders.transition(an_order(1).id, "pending", "confirmed", later)
        assert not await uow.orders.transition(an_order(1).id, "pending", "failed", later)
        assert not await uow.orders.transition("missing", "pending", "failed", later)
        assert await uow.orders.transition(
            an_order(2).id, "pending", "failed", later, release_due=True, lease_until=lease
        )
        await uow.commit()
    first, second = await load(one, an_order(1).id), await load(one, an_order(2).id)
    assert first == an_order(1, status="confirmed", updated_at=later)
    assert second == an_order(
        2, status="failed", updated_at=later, release_due=True, recovery_lease_until=lease
    )


async def test_page_totals_follow_every_change_and_only_committed_ones(
    processes: Processes,
) -> None:
    one, two = processes.one, processes.two
    await store(one, *(an_order(n, status="pending") for n in range(6)), an_order(9, user="bob"))

    async def totals(user: str) -> list[int]:
        queries = [
            OrderQuery(user_id=user),
            OrderQuery(user_id=user, hide_failed=True),
            OrderQuery(user_id=user, status="pending"),
            OrderQuery(user_id=user, status="failed"),
        ]
        async with two(readonly=True) as uow:
            return [(await uow.orders.page(q, offset=0, limit=1)).total for q in queries]

    assert await totals("alice") == [6, 6, 6, 0]
    async with one() as uow:
        for n in range(3):
            assert await uow.orders.transition(an_order(n).id, "pending", "failed", T0)
        assert await uow.orders.transition(an_order(3).id, "pending", "confirmed", T0)
        await uow.commit()
    async with one() as uow:  # never committed: no total may move
        assert await uow.orders.transition(an_order(4).id, "pending", "failed", T0)
        await uow.orders.add(an_order(7))
    assert await totals("alice") == [6, 3, 2, 3]
    assert await totals("bob") == [1, 1, 0, 0]
    assert await totals("carol") == [0, 0, 0, 0]


async def test_two_stores_racing_on_one_transition_have_one_winner(processes: Processes) -> None:
    one, two = processes.one, processes.two
    await store(one, *(an_order(n, status="pending") for n in range(10)))

    async def move(units: Units, n: int, new: OrderStatus) -> bool:
        async with units() as uow:
            won = await uow.orders.transition(an_order(n).id, "pending", new, T0)
            await asyncio.sleep(0)  # let the other writer run meanwhile
            await uow.commit()
        return won

    for n in range(10):
        confirmed, cancelled = await asyncio.gather(
            move(one, n, "confirmed"), move(two, n, "cancelled")
        )
        assert confirmed != cancelled
        stored = await load(one, an_order(n).id)
        assert stored is not None
        assert stored.status == ("confirmed" if confirmed else "cancelled")


async def test_lines_change_only_while_pending(processes: Processes) -> None:
    one = processes.one
    await store(one, an_order(1, status="pending"), an_order(2))
    fewer = (OrderLine("lamp", "Desk lamp", 2490, 2, 2000),)
    skipped = (SkippedItem("yacht", "Yacht", 1, "unavailable"),)
    later = T0 + timedelta(minutes=5)
    async with one() as uow:
        for n in (1, 2):
            narrowed = replace(
                an_order(n), lines=fewer, skipped=skipped, reservation_id="r.1", updated_at=later
            )
            assert await uow.orders.replace_lines(narrowed) is (n == 1)
        await uow.commit()
    first, second = await load(one, an_order(1).id), await load(one, an_order(2).id)
    assert first == replace(
        an_order(1, status="pending"),
        lines=fewer,
        skipped=skipped,
        reservation_id="r.1",
        updated_at=later,
    )
    assert second == an_order(2)


async def test_claims_take_expired_leases_once(processes: Processes) -> None:
    await store(
        processes.one,
        an_order(1, status="pending"),
        an_order(2, status="pending", recovery_lease_until=T0 + timedelta(days=1)),
        an_order(3, status="failed", release_due=True),
        an_order(4, status="cancelled"),
        an_order(
            5, status="cancelled", release_due=True, recovery_lease_until=T0 + timedelta(days=1)
        ),
    )
    now, until = T0 + timedelta(hours=1), T0 + timedelta(hours=2)

    async def claim(units: Units) -> tuple[list[str], list[str]]:
        async with units() as uow:
            pending = await uow.orders.claim_pending(now, until, 10)
            releases = await uow.orders.claim_releases(now, until, 10)
            await uow.commit()
        return [o.id for o in pending], [o.id for o in releases]

    first, second = await asyncio.gather(claim(processes.one), claim(processes.two))
    assert sorted([first, second]) == [([], []), ([an_order(1).id], [an_order(3).id])]
    claimed = await load(processes.two, an_order(1).id)
    assert claimed == an_order(1, status="pending", recovery_lease_until=until)
    async with processes.two() as uow:
        await uow.orders.release_done(an_order(3).id, now)
        await uow.commit()
    released = await load(processes.one, an_order(3).id)
    assert released is not None
    assert released.release_due is False


async def test_claims_take_the_longest_expired_first_up_to_the_limit(
    processes: Processes,
) -> None:
    leases = [T0 + timedelta(minutes=m) for m in (30, 10, 20, 40)]
    await store(
        processes.one,
        *(
            an_order(n, status="pending", recovery_lease_until=lease)
            for n, lease in enumerate(leases)
        ),
    )
    now, until = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    async with processes.one() as uow:
        claimed = await uow.orders.claim_pending(now, until, 2)
        await uow.commit()
    assert [o.id for o in claimed] == [an_order(1).id, an_order(2).id]
    assert all(o.recovery_lease_until == until for o in claimed)


# --- idempotency records ----------------------------------------------------------------


async def test_idempotency_records_guard_keys_and_keep_outcomes(processes: Processes) -> None:
    one, two = processes.one, processes.two
    record = IdempotencyRecord("alice", "k 1/é?", "h" * 64, an_order(1).id, T0)
    await add_keys(one, record)
    with pytest.raises(IdempotencyKeyTaken):
        await add_keys(two, replace(record, order_id="other"))
    # Keys are per user: another user's same key is another key, and no two pairs collide.
    await add_keys(two, replace(record, user_id="bob"))
    await add_keys(two, replace(record, key="b:c"), replace(record, user_id="alice:b", key="c"))
    failure = Failure(409, "INSUFFICIENT_STOCK", "Not enough", {"product_id": "p", "available": 0})
    async with two() as uow:
        await uow.idempotency.complete(an_order(1).id, an_order(1))
        await uow.idempotency.complete(an_order(1).id, failure)  # the first answer stays
        await uow.commit()
    async with one(readonly=True) as uow:
        assert await uow.idempotency.get("alice", "k 1/é?") == replace(record, outcome=an_order(1))
        assert await uow.idempotency.get("carol", "k 1/é?") is None
        assert await uow.idempotency.get("alice", "k 1") is None


async def test_an_outcome_keeps_the_order_to_the_microsecond(processes: Processes) -> None:
    """The stored answer is the order as first answered, whatever the back end's dates."""
    at = T0 + timedelta(microseconds=123_456)
    placed = an_order(1, created_at=at, updated_at=at, recovery_lease_until=at)
    await add_keys(processes.one, a_key(1))
    async with processes.one() as uow:
        await uow.idempotency.complete(placed.id, placed)
        await uow.commit()
    async with processes.two(readonly=True) as uow:
        found = await uow.idempotency.get("alice", "k1")
    assert found is not None
    assert found.outcome == placed


async def test_refusals_round_trip_and_keys_are_discarded(processes: Processes) -> None:
    one = processes.one
    failure = Failure(422, "UNKNOWN_PRODUCT", "Unknown", {"product_id": "p"})
    await add_keys(one, *(a_key(n, at=T0 + timedelta(hours=n)) for n in range(4)))
    async with one() as uow:
        await uow.idempotency.complete(an_order(0).id, failure)
        await uow.idempotency.discard_for_order(an_order(2).id)
        await uow.idempotency.discard("alice", "k3")
        await uow.idempotency.discard("alice", "never")
        await uow.commit()
    async with one() as uow:
        found = await uow.idempotency.get("alice", "k0")
        assert found is not None
        assert found.outcome == failure
        assert await uow.idempotency.get("alice", "k2") is None
        assert await uow.idempotency.get("alice", "k3") is None
        assert await uow.idempotency.purge(T0 + timedelta(minutes=90), 10) == 2
        await uow.commit()
    async with one(readonly=True) as uow:
        assert await uow.idempotency.get("alice", "k0") is None
        assert await uow.idempotency.get("alice", "k1") is None


async def test_a_purge_takes_only_old_keys_and_at_most_its_limit(processes: Processes) -> None:
    one = processes.one
    await add_keys(one, *(a_key(n, at=T0 + timedelta(hours=n)) for n in range(5)))
    async with one() as uow:
        assert await uow.idempotency.purge(T0 + timedelta(hours=3), 2) == 2
        assert await uow.idempotency.purge(T0 + timedelta(hours=3), 2) == 1
        assert await uow.idempotency.purge(T0 + timedelta(hours=3), 2) == 0
        await uow.commit()
    async with one(readonly=True) as uow:
        kept = [await uow.idempotency.get("alice", f"k{n}") for n in range(5)]
    assert [record is not None for record in kept] == [False, False, False, True, True]


async def test_two_stores_racing_on_one_key_store_it_once(processes: Processes) -> None:
    async def claim(units: Units, n: int) -> bool:
        try:
            async with units() as uow:
                await uow.idempotency.add(replace(a_key(0), order_id=f"order-{n}"))
                await asyncio.sleep(0)  # let the other writers run meanwhile
                await uow.orders.add(an_order(n))
                await uow.commit()
        except IdempotencyKeyTaken:
            return False
        return True

    won = await asyncio.gather(
        *(claim(processes.one if n % 2 else processes.two, n) for n in range(8))
    )
    assert won.count(True) == 1
    winner = won.index(True)
    async with processes.one(readonly=True) as uow:
        record = await uow.idempotency.get("alice", "k0")
        everything = await uow.orders.page(OrderQuery(), offset=0, limit=10)
    assert record is not None
    assert record.order_id == f"order-{winner}"
    assert [order.id for order in everything.items] == [an_order(winner).id]


async def test_concurrent_placements_with_one_key_store_one_order(processes: Processes) -> None:
    catalog = FakeCatalog(CatalogEntry("pen", "Pen", 35, 725))
    inventory = FakeInventory(pen=10)
    request = OrderRequest((LineRequest("pen", 1),), "1 Main St")

    async def place(units: Units) -> Order:
        deps = OrdersDeps(units, catalog, inventory)
        alice = Principal("alice", "customer")
        return await service.place_order(
            deps, customer=alice, request=request, idempotency_key="k1"
        )

    results = await asyncio.gather(
        *(place(processes.one if n % 2 else processes.two) for n in range(6))
    )
    assert len({order.id for order in results}) == 1
    assert {order.status for order in results} == {"confirmed"}
    async with processes.one(readonly=True) as uow:
        assert (await uow.orders.page(OrderQuery(), offset=0, limit=10)).total == 1
    assert inventory.stock == {"pen": 9}
