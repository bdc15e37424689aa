"""The SQL adapter against a real database (SQLite; PostgreSQL when the suite runs there):
round trips, the unique guards, conditional writes, recovery claims, and the migration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from retail.kernel.db import engine_for, migrate, session_factory
from retail.kernel.security import Principal
from retail.orders import placing
from retail.orders.adapters.sql import OrdersUnitOfWork
from retail.orders.adapters.tables import metadata
from retail.orders.config import OrdersSettings
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
from retail.orders.main import MIGRATIONS
from retail.orders.ports import Context
from tests.orders.fakes import FakeCatalog, FakeInventory
from tests.support import make_settings

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = engine_for(make_settings(OrdersSettings, tmp_path))
    await migrate(engine, MIGRATIONS)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)


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
            OrderLine("yacht", "Yacht", 9_999_999_999, 1, 0),
        ),
        shipping_address={"line1": "1 Main St", "city": "Springfield", "line2": None},
        created_at=at,
        updated_at=at,
        reservation_id=f"00000000-0000-0000-0000-{n:012d}",
        recovery_lease_until=at + timedelta(seconds=30),
    )
    return replace(order, **changes)  # type: ignore[arg-type]


async def store(sessions: Sessions, *orders: Order) -> None:
    async with OrdersUnitOfWork(sessions) as uow:
        for order in orders:
            await uow.orders.add(order)
        await uow.commit()


async def load(sessions: Sessions, order_id: str) -> Order | None:
    async with OrdersUnitOfWork(sessions, readonly=True) as uow:
        return await uow.orders.get(order_id)


async def test_an_order_round_trips(sessions: Sessions) -> None:
    skipped = (SkippedItem("mug", "Mug", 2, "insufficient_stock", 1),)
    order = an_order(1, skipped=skipped, release_due=True)
    text_address = an_order(2, shipping_address="221B Baker Street, London")
    await store(sessions, order, text_address)
    assert await load(sessions, order.id) == order
    assert await load(sessions, text_address.id) == text_address
    assert await load(sessions, "missing") is None


async def test_nothing_is_stored_without_a_commit(sessions: Sessions) -> None:
    async with OrdersUnitOfWork(sessions) as uow:
        await uow.orders.add(an_order(1))
    assert await load(sessions, an_order(1).id) is None


async def test_order_numbers_are_unique(sessions: Sessions) -> None:
    await store(sessions, an_order(1))
    with pytest.raises(OrderNumberTaken):
        await store(sessions, an_order(2, order_number=an_order(1).order_number))


async def test_pages_are_newest_first_and_filtered(sessions: Sessions) -> None:
    statuses: list[OrderStatus] = ["confirmed", "failed", "shipped", "confirmed", "failed"]
    await store(
        sessions,
        *(an_order(n, status=s) for n, s in enumerate(statuses)),
        an_order(9, user="bob"),
    )

    async def ids(query: OrderQuery, offset: int = 0, limit: int = 10) -> tuple[list[int], int]:
        async with OrdersUnitOfWork(sessions, readonly=True) as uow:
            page = await uow.orders.page(query, offset=offset, limit=limit)
        return [int(o.id[-3:]) for o in page.items], page.total

    assert await ids(OrderQuery()) == ([9, 4, 3, 2, 1, 0], 6)
    assert await ids(OrderQuery(user_id="alice", hide_failed=True)) == ([3, 2, 0], 3)
    assert await ids(OrderQuery(user_id="alice", status="failed")) == ([4, 1], 2)
    assert await ids(OrderQuery(status="confirmed")) == ([9, 3, 0], 3)
    assert await ids(OrderQuery(user_id="alice"), offset=2, limit=2) == ([2, 1], 5)


async def test_transitions_are_conditional(sessions: Sessions) -> None:
    await store(sessions, an_order(1, status="pending"))
    later = T0 + timedelta(hours=1)
    async with OrdersUnitOfWork(sessions) as uow:
        assert await uow.orders.transition(an_order(1).id, "pending", "confirmed", later)
        assert not await uow.orders.transition(an_order(1).id, "pending", "failed", later)
        await uow.commit()
    stored = await load(sessions, an_order(1).id)
    assert stored is not None
    assert (stored.status, stored.updated_at, stored.release_due) == ("confirmed", later, False)


async def test_lines_change_only_while_pending(sessions: Sessions) -> None:
    await store(sessions, an_order(1, status="pending"), an_order(2))
    fewer = (OrderLine("lamp", "Desk lamp", 2490, 2, 2000),)
    skipped = (SkippedItem("yacht", "Yacht", 1, "unavailable"),)
    async with OrdersUnitOfWork(sessions) as uow:
        for n in (1, 2):
            narrowed = replace(an_order(n), lines=fewer, skipped=skipped, reservation_id="r.1")
            assert await uow.orders.replace_lines(narrowed) is (n == 1)
        await uow.commit()
    first, second = await load(sessions, an_order(1).id), await load(sessions, an_order(2).id)
    assert first is not None
    assert (first.lines, first.skipped, first.reservation_id) == (fewer, skipped, "r.1")
    assert second == an_order(2)


async def test_claims_take_expired_leases_once(sessions: Sessions) -> None:
    await store(
        sessions,
        an_order(1, status="pending"),
        an_order(2, status="pending", recovery_lease_until=T0 + timedelta(days=1)),
        an_order(3, status="failed", release_due=True),
        an_order(4, status="cancelled"),
    )
    now, until = T0 + timedelta(hours=1), T0 + timedelta(hours=2)

    async def claim() -> tuple[list[str], list[str]]:
        async with OrdersUnitOfWork(sessions) as uow:
            pending = await uow.orders.claim_pending(now, until, 10)
            releases = await uow.orders.claim_releases(now, until, 10)
            await uow.commit()
        return [o.id for o in pending], [o.id for o in releases]

    first, second = await asyncio.gather(claim(), claim())
    assert sorted([first, second]) == [([], []), ([an_order(1).id], [an_order(3).id])]
    claimed = await load(sessions, an_order(1).id)
    assert claimed is not None
    assert claimed.recovery_lease_until == until
    async with OrdersUnitOfWork(sessions) as uow:
        await uow.orders.release_done(an_order(3).id, now)
        await uow.commit()
    released = await load(sessions, an_order(3).id)
    assert released is not None
    assert released.release_due is False


async def test_idempotency_records_guard_keys_and_keep_outcomes(sessions: Sessions) -> None:
    record = IdempotencyRecord("alice", "k 1/é?", "h" * 64, an_order(1).id, T0)
    async with OrdersUnitOfWork(sessions) as uow:
        await uow.idempotency.add(record)
        await uow.commit()
    with pytest.raises(IdempotencyKeyTaken):
        async with OrdersUnitOfWork(sessions) as uow:
            await uow.idempotency.add(replace(record, order_id="other"))
    failure = Failure(409, "INSUFFICIENT_STOCK", "Not enough", {"product_id": "p", "available": 0})
    async with OrdersUnitOfWork(sessions) as uow:
        await uow.idempotency.complete(an_order(1).id, an_order(1))
        await uow.idempotency.complete(an_order(1).id, failure)  # the first answer stays
        await uow.commit()
    async with OrdersUnitOfWork(sessions, readonly=True) as uow:
        assert await uow.idempotency.get("alice", "k 1/é?") == replace(record, outcome=an_order(1))
        assert await uow.idempotency.get("bob", "k 1/é?") is None


async def test_refusals_round_trip_and_keys_are_discarded(sessions: Sessions) -> None:
    failure = Failure(422, "UNKNOWN_PRODUCT", "Unknown", {"product_id": "p"})
    async with OrdersUnitOfWork(sessions) as uow:
        for n in range(3):
            at = T0 + timedelta(hours=n)
            await uow.idempotency.add(IdempotencyRecord("alice", f"k{n}", "h", f"o{n}", at))
        await uow.idempotency.complete("o0", failure)
        await uow.idempotency.discard_for_order("o2")
        await uow.commit()
    async with OrdersUnitOfWork(sessions) as uow:
        found = await uow.idempotency.get("alice", "k0")
        assert found is not None
        assert found.outcome == failure
        assert await uow.idempotency.get("alice", "k2") is None
        assert await uow.idempotency.purge(T0 + timedelta(minutes=90), 10) == 2
        await uow.commit()


async def test_concurrent_placements_with_one_key_store_one_order(sessions: Sessions) -> None:
    catalog = FakeCatalog(CatalogEntry("pen", "Pen", 35, 725))
    inventory = FakeInventory(pen=10)
    request = OrderRequest((LineRequest("pen", 1),), "1 Main St")

    async def place() -> Order:
        ctx = Context(OrdersUnitOfWork(sessions), catalog, inventory)
        return await placing.place_order(ctx, Principal("alice", "customer"), request, "k1")

    results = await asyncio.gather(*(place() for _ in range(6)))
    assert len({order.id for order in results}) == 1
    async with OrdersUnitOfWork(sessions, readonly=True) as uow:
        assert (await uow.orders.page(OrderQuery(), offset=0, limit=10)).total == 1
    assert inventory.stock == {"pen": 9}


async def test_the_migration_matches_the_tables(engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
