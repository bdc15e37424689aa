"""Use cases against in-memory fakes: placing (merging, exact totals, snapshots), the
idempotency rules, the saga's outcomes, recovery, reorders, cancelling, the status table."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from itertools import product

import pytest

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.security import Principal
from retail.orders import service
from retail.orders.domain import (
    MAX_LINES,
    TRANSITIONS,
    CatalogEntry,
    LineRequest,
    Order,
    OrderRequest,
    OrderStatus,
    Policy,
    merge_lines,
)
from retail.orders.exceptions import (
    IdempotencyKeyReused,
    IdempotentRequestInProgress,
    InsufficientStock,
    InvalidStatusTransition,
    NothingToReorder,
    OrderNotFound,
    ReplayedFailure,
    UnknownProduct,
)
from retail.orders.service import RecoveryReport, placing, recover, recovery, saga
from retail.orders.service.idempotency import claim_for
from tests.orders.fakes import Clock, FakeCatalog, FakeInventory, State, World

ALICE = Principal("alice", "customer")
BOB = Principal("bob", "customer")
ADMIN = Principal("admin-1", "admin")
# 0.35 at 7.25 %: 3 of them are 1.05 with 0.076125 tax, which rounds (once) to 0.08.
PEN = CatalogEntry("pen", "Gel pen", 35, 725)
INK = CatalogEntry("ink", "Ink", 35, 725)
LAMP = CatalogEntry("lamp", "Desk lamp", 2490, 2000)
STATUSES: tuple[OrderStatus, ...] = tuple(TRANSITIONS)


@pytest.fixture
def world() -> World:
    return World(
        State(),
        FakeCatalog(PEN, INK, LAMP),
        FakeInventory(pen=100, ink=100, lamp=5),
        Clock(),
    )


def asking(*lines: tuple[str, int], address: str = "1 Main St, Springfield") -> OrderRequest:
    return OrderRequest(merge_lines(LineRequest(p, q) for p, q in lines), address)


async def place(
    world: World, *lines: tuple[str, int], who: Principal = ALICE, key: str | None = None
) -> Order:
    return await service.place_order(
        world.deps(), customer=who, request=asking(*lines), idempotency_key=key
    )


# --- placing ---------------------------------------------------------------------------


def test_lines_for_one_product_are_merged_in_first_named_order() -> None:
    merged = merge_lines([LineRequest("b", 1), LineRequest("a", 2), LineRequest("b", 3)])
    assert merged == (LineRequest("b", 4), LineRequest("a", 2))


@pytest.mark.parametrize(
    "lines",
    [
        [LineRequest("a", 60), LineRequest("a", 41)],
        [LineRequest(f"p{n}", 1) for n in range(MAX_LINES + 1)],
    ],
)
def test_limits_apply_to_merged_lines(lines: list[LineRequest]) -> None:
    with pytest.raises(ValueError, match=r"at most|must be"):
        merge_lines(lines)


async def test_totals_are_exact_with_one_rounding_per_line(world: World) -> None:
    order = await place(world, ("pen", 2), ("ink", 1), ("pen", 1))
    [pens, ink] = order.lines
    assert (pens.quantity, pens.subtotal_cents, pens.tax_cents, pens.total_cents) == (
        3,
        105,
        8,
        113,
    )
    # 0.35 x 7.25 % = 0.025375 -> 0.03: rounding the order's tax once would give 0.10, not 0.11.
    assert (ink.subtotal_cents, ink.tax_cents) == (35, 3)
    assert (order.subtotal_cents, order.tax_cents, order.total_cents) == (140, 11, 151)


async def test_an_order_snapshots_the_catalogue(world: World) -> None:
    order = await place(world, ("lamp", 2))
    world.catalog.entries["lamp"] = replace(LAMP, title="Lamp v2", price_cents=9999, tax_bp=0)
    stored = await service.get_order(world.deps(), viewer=ALICE, order_id=order.id)
    assert stored.lines[0] == replace(stored.lines[0], title="Desk lamp", unit_price_cents=2490)
    assert stored.lines[0].tax_bp == 2000
    assert stored.total_cents == 2 * 2490 + 996


async def test_placing_reserves_and_confirms(world: World) -> None:
    order = await place(world, ("lamp", 2), ("pen", 1))
    assert order.status == "confirmed"
    assert re.fullmatch(r"RP-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", order.order_number)
    assert world.inventory.reserve_calls == [order.id]
    assert world.inventory.stock == {"pen": 99, "ink": 100, "lamp": 3}
    assert world.state.orders[order.id] == order


async def test_a_taken_order_number_is_drawn_again(world: World) -> None:
    world.state.number_collisions = 2
    order = await place(world, ("pen", 1))
    assert order.status == "confirmed"
    assert len(world.state.orders) == 1


async def test_an_unknown_product_stores_nothing(world: World) -> None:
    with pytest.raises(UnknownProduct) as raised:
        await place(world, ("pen", 1), ("ghost", 1))
    assert raised.value.details == {"product_id": "ghost", "product_ids": ["ghost"]}
    assert "ghost" in raised.value.message
    assert world.state.orders == {}
    assert world.inventory.reserve_calls == []


async def test_products_down_stores_nothing(world: World) -> None:
    world.catalog.down = True
    with pytest.raises(ServiceUnavailable):
        await place(world, ("pen", 1), key="k1")
    assert world.state.orders == {}
    assert world.state.keys == {}


async def test_insufficient_stock_fails_the_order_and_names_the_product(world: World) -> None:
    with pytest.raises(InsufficientStock) as raised:
        await place(world, ("pen", 1), ("lamp", 6))
    assert raised.value.details == {"product_id": "lamp", "requested": 6, "available": 5}
    assert "Desk lamp" in raised.value.message
    [order] = world.state.orders.values()
    assert (order.status, order.release_due) == ("failed", False)
    assert world.inventory.stock == {"pen": 100, "ink": 100, "lamp": 5}


async def test_inventory_down_fails_the_order_and_keeps_the_release_due(world: World) -> None:
    world.inventory.down = True
    with pytest.raises(ServiceUnavailable):
        await place(world, ("pen", 1))
    [order] = world.state.orders.values()
    assert world.inventory.release_calls == [order.id]
    assert (order.status, order.release_due) == ("failed", True)
    world.inventory.down = False
    world.clock.advance(seconds=31)
    report = await recover(world.deps(), batch=10)
    assert report.released == 1
    assert world.state.orders[order.id].release_due is False
    assert order.id in world.inventory.released


async def test_a_lost_reservation_answer_is_released(world: World) -> None:
    world.inventory.lose_answers = True
    with pytest.raises(ServiceUnavailable):
        await place(world, ("lamp", 2))
    [order] = world.state.orders.values()
    assert (order.status, order.release_due) == ("failed", False)
    assert world.inventory.stock["lamp"] == 5
    assert world.inventory.held() == {}


async def test_failed_orders_are_hidden_from_the_customer_by_default(world: World) -> None:
    kept = await place(world, ("pen", 1))
    with pytest.raises(InsufficientStock):
        await place(world, ("lamp", 9))
    deps = world.deps()
    mine = await service.list_orders(deps, viewer=ALICE, status=None, offset=0, limit=10)
    assert [o.id for o in mine.items] == [kept.id]
    failed = await service.list_orders(deps, viewer=ALICE, status="failed", offset=0, limit=10)
    assert failed.total == 1
    everything = await service.list_orders(deps, viewer=ADMIN, status=None, offset=0, limit=10)
    assert everything.total == 2


# --- idempotency -----------------------------------------------------------------------


async def test_an_order_without_a_key_never_looks_for_one(world: World) -> None:
    """The saga's settling transactions skip the key's statement when the request had no
    key (issue 12: one statement less per order); with a key they store its answer."""
    await place(world, ("pen", 1))
    with pytest.raises(InsufficientStock):
        await place(world, ("lamp", 9))
    world.inventory.down = True
    with pytest.raises(ServiceUnavailable):
        await place(world, ("pen", 1))
    assert world.state.key_lookups_by_order == 0
    world.inventory.down = False
    await place(world, ("pen", 1), key="k1")
    assert world.state.key_lookups_by_order == 1
    [record] = world.state.keys.values()
    assert record.outcome is not None


async def test_the_same_key_and_body_answers_the_first_order(world: World) -> None:
    first = await place(world, ("pen", 2), key="k1")
    again = await place(world, ("pen", 2), key="k1")
    assert again == first
    assert len(world.state.orders) == 1
    assert world.inventory.reserve_calls == [first.id]
    assert world.catalog.lookups == 1  # a replay needs no peer


async def test_the_first_answer_stays_the_answer_after_the_order_moved_on(world: World) -> None:
    first = await place(world, ("pen", 2), key="k1")
    await service.cancel_order(world.deps(), caller=ALICE, order_id=first.id)
    assert await place(world, ("pen", 2), key="k1") == first


async def test_the_same_key_with_another_body_is_refused(world: World) -> None:
    await place(world, ("pen", 2), key="k1")
    with pytest.raises(IdempotencyKeyReused):
        await place(world, ("pen", 3), key="k1")
    with pytest.raises(IdempotencyKeyReused):
        await service.reorder(
            world.deps(), caller=ALICE, source_id="any", shipping_address=None, idempotency_key="k1"
        )
    assert len(world.state.orders) == 1


async def test_keys_are_per_user(world: World) -> None:
    alice = await place(world, ("pen", 1), key="shared")
    bob = await place(world, ("pen", 1), who=BOB, key="shared")
    assert alice.id != bob.id
    assert (alice.user_id, bob.user_id) == ("alice", "bob")


async def test_a_refusal_is_answered_again_without_a_new_attempt(world: World) -> None:
    with pytest.raises(InsufficientStock) as first:
        await place(world, ("lamp", 6), key="k1")
    world.inventory.stock["lamp"] = 50  # even if it would succeed now
    with pytest.raises(ReplayedFailure) as again:
        await place(world, ("lamp", 6), key="k1")
    assert (again.value.status_code, again.value.error_code) == (409, "INSUFFICIENT_STOCK")
    assert (again.value.message, again.value.details) == (first.value.message, first.value.details)
    assert len(world.inventory.reserve_calls) == 1


async def test_after_an_outage_the_same_key_tries_again(world: World) -> None:
    world.inventory.down = True
    with pytest.raises(ServiceUnavailable):
        await place(world, ("pen", 1), key="k1")
    world.inventory.down = False
    order = await place(world, ("pen", 1), key="k1")
    assert order.status == "confirmed"
    assert sorted(o.status for o in world.state.orders.values()) == ["confirmed", "failed"]


async def test_concurrent_requests_with_one_key_make_one_order(world: World) -> None:
    results = await asyncio.gather(*(place(world, ("pen", 1), key="k1") for _ in range(5)))
    assert len(world.state.orders) == 1
    assert all(result == results[0] for result in results)
    assert results[0].status == "confirmed"
    assert world.inventory.stock["pen"] == 99


async def test_a_key_still_in_flight_is_a_409_after_the_wait(world: World) -> None:
    world.policy = Policy(idempotency_wait_seconds=0)
    deps = world.deps()
    claim = claim_for(ALICE.user_id, "k1", "place", asking(("pen", 1)).fingerprint())
    lines = placing.snapshot_lines(asking(("pen", 1)).lines, world.catalog.entries)
    await saga.open_order(deps, saga.draft_order(deps, "alice", lines, "x"), claim)
    with pytest.raises(IdempotentRequestInProgress) as raised:
        await place(world, ("pen", 1), key="k1")
    assert raised.value.headers == {"Retry-After": "1"}


async def test_keys_expire_after_their_time_to_live(world: World) -> None:
    first = await place(world, ("pen", 1), key="k1")
    world.clock.advance(hours=24, seconds=1)
    second = await place(world, ("pen", 1), key="k1")
    assert second.id != first.id
    await place(world, ("pen", 1), key="k2")
    world.clock.advance(hours=25)
    assert (await recover(world.deps(), batch=10)).purged_keys == 2
    assert world.state.keys == {}


# --- recovery --------------------------------------------------------------------------


async def crashed_after_reserving(world: World, *lines: tuple[str, int], key: str) -> Order:
    """What a process leaves when it dies between reserving and confirming."""
    deps = world.deps()
    request = asking(*lines)
    claim = claim_for(ALICE.user_id, key, "place", request.fingerprint())
    draft = saga.draft_order(
        deps, "alice", placing.snapshot_lines(request.lines, world.catalog.entries), "x"
    )
    order = await saga.open_order(deps, draft, claim)
    await world.inventory.reserve(order.reservation_id, order.reservation_lines())
    return order


async def test_recovery_confirms_a_reserved_order_after_the_grace(world: World) -> None:
    order = await crashed_after_reserving(world, ("lamp", 2), key="k1")
    assert await recover(world.deps(), batch=10) == RecoveryReport()
    world.clock.advance(seconds=31)
    assert (await recover(world.deps(), batch=10)).confirmed == 1
    assert world.state.orders[order.id].status == "confirmed"
    assert world.inventory.stock["lamp"] == 3
    replayed = await place(world, ("lamp", 2), key="k1")
    assert (replayed.id, replayed.status) == (order.id, "confirmed")


async def test_recovery_fails_and_releases_what_cannot_be_reserved(world: World) -> None:
    deps = world.deps()
    lines = placing.snapshot_lines(asking(("lamp", 2)).lines, world.catalog.entries)
    order = await saga.open_order(deps, saga.draft_order(deps, "alice", lines, "x"), None)
    world.inventory.stock["lamp"] = 1
    world.clock.advance(seconds=31)
    report = await recover(world.deps(), batch=10)
    assert (report.failed, report.released) == (1, 0)
    assert world.state.orders[order.id].status == "failed"
    assert world.inventory.release_calls == [order.id]  # fenced: a late reserve cannot win


async def test_recovery_waits_for_inventory(world: World) -> None:
    order = await crashed_after_reserving(world, ("pen", 1), key="k1")
    world.inventory.down = True
    world.clock.advance(seconds=31)
    assert (await recover(world.deps(), batch=10)).deferred == 1
    assert (await recover(world.deps(), batch=10)).deferred == 0  # leased: not yet again
    world.inventory.down = False
    world.clock.advance(seconds=31)
    assert (await recover(world.deps(), batch=10)).confirmed == 1
    assert world.state.orders[order.id].status == "confirmed"


async def test_concurrent_recovery_passes_claim_each_order_once(world: World) -> None:
    for n in range(4):
        await crashed_after_reserving(world, ("pen", 1), key=f"k{n}")
    world.inventory.reserve_calls.clear()
    world.clock.advance(seconds=31)
    reports = await asyncio.gather(*(recover(world.deps(), batch=10) for _ in range(3)))
    assert sum(r.confirmed for r in reports) == 4
    assert len(world.inventory.reserve_calls) == 4
    assert {o.status for o in world.state.orders.values()} == {"confirmed"}


# --- reorder ---------------------------------------------------------------------------


async def test_reorder_uses_todays_prices_and_lists_what_it_skipped(world: World) -> None:
    world.catalog.entries["gone"] = CatalogEntry("gone", "Old mug", 500, 0)
    world.inventory.stock["gone"] = 10
    past = await place(world, ("pen", 3), ("lamp", 4), ("gone", 1))
    del world.catalog.entries["gone"]
    world.catalog.entries["pen"] = replace(PEN, price_cents=40)
    world.inventory.stock["lamp"] = 2
    again = await service.reorder(
        world.deps(), caller=ALICE, source_id=past.id, shipping_address=None, idempotency_key=None
    )
    assert again.status == "confirmed"
    assert [(line.product_id, line.unit_price_cents, line.quantity) for line in again.lines] == [
        ("pen", 40, 3)
    ]
    assert [(s.product_id, s.title, s.quantity, s.reason, s.available) for s in again.skipped] == [
        ("gone", "Old mug", 1, "unavailable", None),
        ("lamp", "Desk lamp", 4, "insufficient_stock", 2),
    ]
    # The refused reservation id is not reused: inventory answers a repeat as the first time.
    assert world.inventory.reserve_calls[-2:] == [again.id, f"{again.id}.1"]
    assert again.reservation_id == f"{again.id}.1"
    assert world.state.orders[again.id] == again
    assert world.inventory.stock["lamp"] == 2


async def test_reorder_of_nothing_available_is_a_409(world: World) -> None:
    past = await place(world, ("lamp", 1))
    del world.catalog.entries["lamp"]
    with pytest.raises(NothingToReorder) as raised:
        await service.reorder(
            world.deps(),
            caller=ALICE,
            source_id=past.id,
            shipping_address=None,
            idempotency_key=None,
        )
    assert raised.value.details == {
        "skipped_items": [
            {"product_id": "lamp", "title": "Desk lamp", "quantity": 1, "reason": "unavailable"}
        ]
    }
    assert len(world.state.orders) == 1


async def test_reorder_with_every_line_short_fails_its_order(world: World) -> None:
    past = await place(world, ("lamp", 3), ("pen", 1))
    world.inventory.stock.update(lamp=0, pen=0)
    with pytest.raises(NothingToReorder):
        await service.reorder(
            world.deps(),
            caller=ALICE,
            source_id=past.id,
            shipping_address="2 Elm St",
            idempotency_key="k1",
        )
    attempt = next(o for o in world.state.orders.values() if o.id != past.id)
    assert attempt.status == "failed"
    with pytest.raises(ReplayedFailure) as replayed:
        await service.reorder(
            world.deps(),
            caller=ALICE,
            source_id=past.id,
            shipping_address="2 Elm St",
            idempotency_key="k1",
        )
    assert replayed.value.error_code == "NOTHING_TO_REORDER"


async def test_only_the_owner_or_an_admin_may_reorder(world: World) -> None:
    past = await place(world, ("pen", 1))
    with pytest.raises(OrderNotFound):
        await service.reorder(
            world.deps(), caller=BOB, source_id=past.id, shipping_address=None, idempotency_key=None
        )
    for_alice = await service.reorder(
        world.deps(),
        caller=ADMIN,
        source_id=past.id,
        shipping_address="Desk 4",
        idempotency_key=None,
    )
    assert (for_alice.user_id, for_alice.shipping_address) == ("alice", "Desk 4")


# --- cancelling and the status table ---------------------------------------------------


async def in_status(world: World, status: OrderStatus) -> Order:
    """A confirmed order (stock held) moved by hand to `status`, as if it got there."""
    order = await place(world, ("lamp", 2))
    moved = replace(order, status=status)
    world.state.orders[order.id] = moved
    if status == "pending":
        world.inventory.reservations.pop(order.id)
        world.inventory.stock["lamp"] += 2
    return moved


async def test_the_owner_cancels_and_the_stock_goes_back(world: World) -> None:
    order = await place(world, ("lamp", 2))
    cancelled = await service.cancel_order(world.deps(), caller=ALICE, order_id=order.id)
    assert (cancelled.status, cancelled.release_due) == ("cancelled", False)
    assert world.state.orders[order.id] == cancelled
    assert world.inventory.stock["lamp"] == 5
    with pytest.raises(InvalidStatusTransition):
        await service.cancel_order(world.deps(), caller=ALICE, order_id=order.id)


@pytest.mark.parametrize(
    ("status", "owner_may", "admin_may"),
    [
        ("pending", True, True),
        ("confirmed", True, True),
        ("processing", False, True),
        ("shipped", False, False),
        ("delivered", False, False),
        ("cancelled", False, False),
        ("failed", False, False),
    ],
)
@pytest.mark.parametrize("who", [ALICE, ADMIN])
async def test_who_may_cancel_when(
    world: World, who: Principal, status: OrderStatus, owner_may: bool, admin_may: bool
) -> None:
    order = await in_status(world, status)
    if (admin_may if who.is_admin else owner_may) is False:
        with pytest.raises(InvalidStatusTransition):
            await service.cancel_order(world.deps(), caller=who, order_id=order.id)
        assert world.state.orders[order.id].status == status
        return
    assert (
        await service.cancel_order(world.deps(), caller=who, order_id=order.id)
    ).status == "cancelled"
    assert world.inventory.stock["lamp"] == 5
    assert world.inventory.held() == {}


async def test_another_customer_cannot_see_or_cancel_an_order(world: World) -> None:
    order = await place(world, ("pen", 1))
    with pytest.raises(OrderNotFound):
        await service.get_order(world.deps(), viewer=BOB, order_id=order.id)
    with pytest.raises(OrderNotFound):
        await service.cancel_order(world.deps(), caller=BOB, order_id=order.id)
    assert world.state.orders[order.id].status == "confirmed"


async def test_a_cancel_while_inventory_is_down_releases_later(world: World) -> None:
    order = await place(world, ("lamp", 2))
    world.inventory.down = True
    cancelled = await service.cancel_order(world.deps(), caller=ALICE, order_id=order.id)
    assert (cancelled.status, cancelled.release_due) == ("cancelled", True)
    world.inventory.down = False
    assert (await recover(world.deps(), batch=10)).released == 0  # ours first: leased
    world.clock.advance(seconds=31)
    assert (await recover(world.deps(), batch=10)).released == 1
    assert world.inventory.stock["lamp"] == 5


async def test_an_order_cancelled_while_being_placed_stays_cancelled(world: World) -> None:
    deps = world.deps()
    lines = placing.snapshot_lines(asking(("lamp", 2)).lines, world.catalog.entries)
    order = await saga.open_order(deps, saga.draft_order(deps, "alice", lines, "x"), None)
    await service.cancel_order(world.deps(), caller=ALICE, order_id=order.id)
    assert await saga.try_reserve(deps, order) is not None  # the release fenced it
    assert world.inventory.stock["lamp"] == 5
    world.inventory.released.clear()
    assert await saga.try_reserve(deps, order) is None  # had the reserve come first...
    assert (await saga.confirm(deps, order)).status == "cancelled"  # ...cancel still wins


@pytest.mark.parametrize(("current", "new"), list(product(STATUSES, STATUSES)))
async def test_the_transition_table(world: World, current: OrderStatus, new: OrderStatus) -> None:
    order = await in_status(world, current)
    allowed = new in TRANSITIONS[current]
    if not allowed:
        with pytest.raises(InvalidStatusTransition) as raised:
            await service.change_status(world.deps(), admin=ADMIN, order_id=order.id, new=new)
        assert raised.value.details == {
            "from": current,
            "to": new,
            "allowed": sorted(TRANSITIONS[current]),
        }
        assert world.state.orders[order.id].status == current
        return
    changed = await service.change_status(world.deps(), admin=ADMIN, order_id=order.id, new=new)
    assert changed.status == world.state.orders[order.id].status == new
    holds = new in {"confirmed", "processing", "shipped", "delivered"}
    assert world.inventory.held() == ({"lamp": 2} if holds else {})


async def test_of_two_admins_racing_only_one_wins(world: World) -> None:
    order = await in_status(world, "confirmed")
    world.state.moves_elsewhere = ["processing"]  # the other admin commits first
    with pytest.raises(InvalidStatusTransition) as raised:
        await service.change_status(world.deps(), admin=ADMIN, order_id=order.id, new="processing")
    assert raised.value.details is not None
    assert raised.value.details["from"] == "processing"
    assert world.state.orders[order.id].status == "processing"


async def test_a_cancel_racing_a_status_change_rechecks_the_new_status(world: World) -> None:
    order = await in_status(world, "confirmed")
    world.state.moves_elsewhere = ["processing"]
    with pytest.raises(InvalidStatusTransition):  # the customer may not cancel processing
        await service.cancel_order(world.deps(), caller=ALICE, order_id=order.id)
    world.state.moves_elsewhere = ["shipped"]  # shipped while the admin was cancelling
    with pytest.raises(InvalidStatusTransition):
        await service.cancel_order(world.deps(), caller=ADMIN, order_id=order.id)
    assert world.inventory.held() == {"lamp": 2}  # a shipped order keeps its stock


async def test_the_recovery_loop_stops_even_when_a_pass_swallows_the_cancellation(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pymongo's async client can turn a cancellation into an error of its own; the loop
    # logs errors and goes on, so without a check it would never stop.
    passing = asyncio.Event()

    async def swallowing_pass(*_args: object, **_kwargs: object) -> RecoveryReport:
        passing.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise ConnectionError("the driver's own error") from None
        return RecoveryReport()

    monkeypatch.setattr(recovery, "recover", swallowing_pass)
    task = asyncio.create_task(recovery.keep_recovering(world.deps(), interval_seconds=0, batch=1))
    await passing.wait()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert done, "the recovery loop went on after its cancellation was swallowed"
