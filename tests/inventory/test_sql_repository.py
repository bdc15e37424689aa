"""The SQL adapter against SQLite files: conditional writes, and the reservation use cases
raced through two separately created engines on one file, as two processes would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from retail.inventory import service
from retail.inventory.adapters.sql import InventoryUnitOfWork, metadata, stock_movements
from retail.inventory.config import InventorySettings
from retail.inventory.domain import ProductCreated, Reservation, ReservationLine
from retail.inventory.exceptions import (
    InsufficientStock,
    ReservationExists,
    ReservationReleased,
    UnknownProduct,
)
from retail.inventory.main import MIGRATIONS
from retail.kernel.db import engine_for, migrate, session_factory
from tests.support import make_settings

Sessions = async_sessionmaker[AsyncSession]
ORDERS = "service:orders"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one database (SQLite file, or PostgreSQL schema when the suite runs
    there), as two processes of the service would have."""
    settings = make_settings(InventorySettings, tmp_path)
    first, second = engine_for(settings), engine_for(settings)
    # One after the other: two first opens of a brand-new SQLite file racing to switch it
    # to WAL is a start-up hazard of its own (see the kernel note in the report).
    await migrate(first, MIGRATIONS)
    await migrate(second, MIGRATIONS)
    yield first, second
    await first.dispose()
    await second.dispose()


@pytest.fixture
def one(engines: tuple[AsyncEngine, AsyncEngine]) -> Sessions:
    return session_factory(engines[0])


@pytest.fixture
def two(engines: tuple[AsyncEngine, AsyncEngine]) -> Sessions:
    return session_factory(engines[1])


def uow(sessions: Sessions, *, readonly: bool = False) -> InventoryUnitOfWork:
    return InventoryUnitOfWork(sessions, readonly=readonly)


async def stock_up(sessions: Sessions, **levels: int) -> None:
    """Create levels the way products does: through the products feed."""
    async with uow(sessions) as work:
        start = await work.cursors.get(service.PRODUCTS_FEED)
    batch = [
        (start + n, ProductCreated(pid, pid.title(), None, stock))
        for n, (pid, stock) in enumerate(levels.items(), 1)
    ]
    await service.apply_product_changes(uow(sessions), batch)


async def stock_of(sessions: Sessions, product_id: str) -> int:
    level = await service.get_level(uow(sessions, readonly=True), product_id)
    return level.stock


async def count_movements(sessions: Sessions, kind: str) -> int:
    async with uow(sessions, readonly=True) as work:
        found = await work.session.scalar(
            select(func.count()).select_from(stock_movements).where(stock_movements.c.kind == kind)
        )
    return int(found or 0)


def lines(**quantities: int) -> list[ReservationLine]:
    return [ReservationLine(pid, q) for pid, q in quantities.items()]


async def reserve(sessions: Sessions, order_id: str, wanted: Sequence[ReservationLine]) -> object:
    """The outcome of a reservation: the Reservation, or the error it raised."""
    try:
        return await service.reserve_stock(uow(sessions), order_id, wanted, actor=ORDERS)
    except (InsufficientStock, UnknownProduct, ReservationReleased) as exc:
        return exc


async def test_the_conditional_decrement_never_goes_negative(one: Sessions) -> None:
    await stock_up(one, a=3)
    async with uow(one) as work:
        assert await work.stock.decrement("a", 5, NOW) is None
        assert await work.stock.decrement("a", 3, NOW) == 0
        assert await work.stock.decrement("a", 1, NOW) is None
        assert await work.stock.decrement("missing", 1, NOW) is None
        assert await work.stock.increment("missing", 1, NOW) is None
        await work.commit()
    assert await stock_of(one, "a") == 0


async def test_the_database_itself_refuses_negative_stock(one: Sessions) -> None:
    await stock_up(one, a=1)
    async with uow(one) as work:
        with pytest.raises(IntegrityError, match=r"(?i)check"):
            await work.session.execute(text("UPDATE stock_levels SET stock = -1"))
    assert await stock_of(one, "a") == 1


async def test_fifty_racing_reservations_through_two_engines_never_oversell(
    one: Sessions, two: Sessions
) -> None:
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
    assert await count_movements(one, "reservation") == 10
    events = await service.read_events(uow(two, readonly=True), 0, 100)
    changes = [e.data for e in events if e.type == "stock.changed"]
    assert [c["stock"] for c in changes] == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert {c["order_id"] for c in changes[1:]} == {r.order_id for r in reserved}


async def test_lines_are_all_or_nothing(one: Sessions) -> None:
    await stock_up(one, a=5, b=1)
    refused = await reserve(one, "o1", lines(a=2, b=2))
    assert isinstance(refused, InsufficientStock)
    assert refused.details == {"product_id": "b", "requested": 2, "available": 1}
    unknown = await reserve(one, "o1", lines(a=2, zz=1))
    assert isinstance(unknown, UnknownProduct)
    assert unknown.details == {"product_id": "zz"}
    assert (await stock_of(one, "a"), await stock_of(one, "b")) == (5, 1)
    assert await count_movements(one, "reservation") == 0
    assert await service.get_reservation(uow(one, readonly=True), "o1") is None
    # Nothing was kept of the refusals, so the same order may try again.
    done = await reserve(one, "o1", lines(a=2, b=1))
    assert isinstance(done, Reservation)
    assert (await stock_of(one, "a"), await stock_of(one, "b")) == (3, 0)


async def test_duplicate_product_lines_are_merged(one: Sessions) -> None:
    await stock_up(one, a=5, b=5)
    done = await service.reserve_stock(
        uow(one), "o1", [*lines(b=1, a=1), ReservationLine("a", 2)], actor=ORDERS
    )
    assert done.lines == (ReservationLine("a", 3), ReservationLine("b", 1))
    assert await stock_of(one, "a") == 2
    assert await count_movements(one, "reservation") == 2


async def test_opposite_line_orders_at_once_do_not_deadlock(one: Sessions, two: Sessions) -> None:
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
    assert await count_movements(two, "reservation") == 80


async def test_a_repeat_reserves_once_and_answers_the_same(one: Sessions) -> None:
    await stock_up(one, a=5)
    first = await service.reserve_stock(uow(one), "o1", lines(a=2), actor=ORDERS)
    again = await service.reserve_stock(uow(one), "o1", lines(a=2), actor=ORDERS)
    assert again == first
    assert await stock_of(one, "a") == 3
    assert await count_movements(one, "reservation") == 1


async def test_concurrent_duplicates_of_one_order_reserve_once(
    one: Sessions, two: Sessions
) -> None:
    await stock_up(one, a=100)
    outcomes = await asyncio.gather(
        *(reserve(one if n % 2 else two, "same-order", lines(a=3)) for n in range(20))
    )
    assert all(isinstance(o, Reservation) and o.status == "reserved" for o in outcomes)
    assert len({o for o in outcomes if isinstance(o, Reservation)}) == 1
    assert await stock_of(one, "a") == 97
    assert await count_movements(one, "reservation") == 1


async def test_the_order_id_key_refuses_a_second_insert(one: Sessions) -> None:
    reservation = Reservation("o1", "reserved", tuple(lines(a=1)), NOW)
    async with uow(one) as work:
        await work.reservations.add(reservation)
        await work.commit()
    async with uow(one) as work:
        with pytest.raises(ReservationExists):
            await work.reservations.add(reservation)


async def test_release_gives_back_once(one: Sessions, two: Sessions) -> None:
    await stock_up(one, a=5, b=5)
    await service.reserve_stock(uow(one), "o1", lines(a=2, b=3), actor=ORDERS)
    outcomes = await asyncio.gather(
        *(
            service.release_reservation(uow(one if n % 2 else two), "o1", actor=ORDERS)
            for n in range(10)
        )
    )
    assert outcomes == ["released"] * 10
    assert (await stock_of(one, "a"), await stock_of(one, "b")) == (5, 5)
    assert await count_movements(one, "release") == 2
    found = await service.get_reservation(uow(two, readonly=True), "o1")
    assert found is not None
    assert found.status == "released"
    assert isinstance(await reserve(one, "o1", lines(a=1)), ReservationReleased)
    assert await stock_of(one, "a") == 5


async def test_releasing_an_unknown_order_fences_it(one: Sessions) -> None:
    await stock_up(one, a=5)
    assert await service.release_reservation(uow(one), "late", actor=ORDERS) == "none"
    assert await service.release_reservation(uow(one), "late", actor=ORDERS) == "released"
    # A reserve call that arrives after its order was given up must not take stock.
    assert isinstance(await reserve(one, "late", lines(a=1)), ReservationReleased)
    assert await stock_of(one, "a") == 5


async def test_release_and_reserve_racing_leave_stock_consistent(
    one: Sessions, two: Sessions
) -> None:
    await stock_up(one, a=1000)
    for n in range(15):
        order = f"race-{n}"
        reserved, _ = await asyncio.gather(
            reserve(one, order, lines(a=2)),
            service.release_reservation(uow(two), order, actor=ORDERS),
        )
        found = await service.get_reservation(uow(one, readonly=True), order)
        assert found is not None
        assert found.status == "released"
        assert isinstance(reserved, Reservation | ReservationReleased)
    assert await stock_of(one, "a") == 1000


async def test_the_feed_cursor_moves_only_from_where_it_was(one: Sessions) -> None:
    async with uow(one) as work:
        assert await work.cursors.advance_from("products", 0, 3)
        assert not await work.cursors.advance_from("products", 0, 5)
        assert not await work.cursors.advance_from("products", 2, 5)
        assert await work.cursors.advance_from("products", 3, 5)
        await work.commit()
    assert await service.feed_cursor(uow(one, readonly=True), "products") == 5


async def test_a_feed_batch_applied_by_two_processes_counts_once(
    one: Sessions, two: Sessions
) -> None:
    batch = [(1, ProductCreated("a", "A", None, 5)), (2, ProductCreated("b", "B", None, 7))]
    applied = await asyncio.gather(
        service.apply_product_changes(uow(one), batch),
        service.apply_product_changes(uow(two), batch),
    )
    assert sorted(applied) == [0, 2]
    assert await count_movements(one, "initial") == 2
    assert await service.feed_cursor(uow(two, readonly=True), "products") == 2


async def test_the_migration_matches_the_tables(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with engines[0].connect() as connection:
        assert await connection.run_sync(differences) == []
