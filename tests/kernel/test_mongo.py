"""The kernel's MongoDB storage: naming, error translation, and the unit of work on both kinds
of server: transactions where offered, and the standalone lease-and-journal (also forced on
any server here) with writers that die half-way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure

from retail.kernel.errors import Conflict, ServiceUnavailable
from retail.kernel.mongo import (
    LOCKS,
    OUTBOX,
    WRITER,
    MongoCursorStore,
    MongoEventLog,
    MongoStore,
    MongoUnitOfWork,
    Unit,
    UnitCollection,
    as_utc,
    database_name,
    duplicate_key_as,
    is_unavailable,
    journal,
    mongo_client,
    offers_transactions,
)
from retail.kernel.mongo.journal import JournalUnit
from retail.kernel.mongo.units import TransactionUnit
from retail.kernel.settings import Settings
from tests.mongo_server import free_port
from tests.support import make_settings, mongodb_requested, nx_defect, on_nx

needs_mongodb = pytest.mark.skipif(not mongodb_requested(), reason="set TEST_MONGODB_URI")


class ProbeSettings(Settings):
    service_name: ClassVar[str] = "probe"


class ProbeUnitOfWork(MongoUnitOfWork):
    things: UnitCollection
    events: MongoEventLog
    cursors: MongoCursorStore

    def _bind(self, unit: Unit) -> None:
        self.things = unit.collection("things")
        self.events = MongoEventLog(unit)
        self.cursors = MongoCursorStore(unit)


# --- without a server -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "prefix", "name"),
    [
        ("mongodb://db.internal:27017", "", "retail_probe"),
        ("mongodb://db.internal:27017/shop?replicaSet=rs0", "", "shop_probe"),
        ("mongodb://127.0.0.1/retail_test_1", "t0a1b2_", "retail_test_1_t0a1b2_probe"),
    ],
)
async def test_each_service_has_its_own_database(url: str, prefix: str, name: str) -> None:
    settings = ProbeSettings(_env_file=None, database_url=url, database_schema_prefix=prefix)
    client = mongo_client(url)
    try:
        assert database_name(client, settings) == name
    finally:
        await client.close()


def test_transactions_are_told_by_hello() -> None:
    assert offers_transactions({"isWritablePrimary": True, "setName": "rs0"})
    assert offers_transactions({"isWritablePrimary": True, "msg": "isdbgrid"})
    assert not offers_transactions({"isWritablePrimary": True})


def test_driver_errors_become_kernel_errors() -> None:
    assert is_unavailable(AutoReconnect("primary stepped down"))
    conflict = OperationFailure("WriteConflict", 112)
    conflict._add_error_label("TransientTransactionError")
    assert is_unavailable(conflict)
    assert not is_unavailable(DuplicateKeyError("E11000", 11000))
    assert not is_unavailable(OperationFailure("bad query", 2))

    class Taken(Conflict):
        error_code = "TAKEN"

    with pytest.raises(Taken), duplicate_key_as(Taken):
        raise DuplicateKeyError("E11000", 11000)


def test_timestamps_come_back_as_aware_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert as_utc(datetime(2026, 1, 1, 14, tzinfo=plus_two)) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert as_utc(datetime(2026, 1, 1, 12)).tzinfo is UTC
    assert as_utc("2026-01-01 12:00:00.123000") == datetime(2026, 1, 1, 12, 0, 0, 123000, UTC)


@pytest.mark.parametrize("transactions", [False, True])
@pytest.mark.parametrize("readonly", [False, True])
async def test_an_unreachable_server_is_a_503(transactions: bool, readonly: bool) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{free_port()}", serverSelectionTimeoutMS=100
    )
    store = MongoStore(client, client["retail_probe"], transactions=transactions)
    try:
        with pytest.raises(ServiceUnavailable):
            async with ProbeUnitOfWork(store, readonly=readonly) as uow:
                await uow.things.find_one({"_id": "x"})
    finally:
        await store.close()


# --- on the run's server ----------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> ProbeSettings:
    return make_settings(ProbeSettings, tmp_path, backend="mongodb")


@pytest.fixture
async def standalone(settings: ProbeSettings) -> AsyncIterator[tuple[MongoStore, MongoStore]]:
    """Two stores ("processes") on one database, without transactions whatever the server."""
    first = await MongoStore.open(settings, {}, transactions=False)
    second = await MongoStore.open(settings, {}, transactions=False)
    yield first, second
    await first.close()
    await second.close()


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases that run out in 0.1 s, so a dead writer is taken over within a test."""
    monkeypatch.setattr(journal, "LEASE_MS", 100)


async def feed(store: MongoStore) -> list[tuple[int, str]]:
    async with ProbeUnitOfWork(store, readonly=True) as uow:
        return [(e.seq, e.key) for e in await uow.events.read_after(0, 100)]


async def thing(store: MongoStore, thing_id: str) -> dict[str, Any] | None:
    async with ProbeUnitOfWork(store, readonly=True) as uow:
        return await uow.things.find_one({"_id": thing_id})


async def write_a_and_b(store: MongoStore) -> ProbeUnitOfWork:
    """A writer that sets `a`, creates `b` and appends two events, and is still open."""
    uow = ProbeUnitOfWork(store)
    await uow.__aenter__()
    await uow.things.update_one({"_id": "a"}, {"$set": {"n": 2}})
    await uow.things.insert_one({"_id": "b", "n": 1})
    await uow.events.append("thing.changed", "a", {"n": 2})
    await uow.events.append("thing.created", "b", {"n": 1})
    return uow


async def seed_a(store: MongoStore) -> None:
    async with ProbeUnitOfWork(store) as uow:
        await uow.things.insert_one({"_id": "a", "n": 1})
        await uow.events.append("thing.created", "a", {"n": 1})
        await uow.commit()


@needs_mongodb
async def test_open_creates_the_kernel_indexes_idempotently(settings: ProbeSettings) -> None:
    for _ in range(2):
        store = await MongoStore.open(settings, {})
        indexes = [i async for i in await store.database[OUTBOX].list_indexes()]
        await store.close()
        assert any(dict(i["key"]) == {"seq": 1} and i.get("unique") for i in indexes)


@needs_mongodb
async def test_the_server_picks_the_unit_engine(settings: ProbeSettings) -> None:
    """As the services open their stores: `hello` decides. nx-27017 (CI's MongoDB pass) is a
    standalone server, so every MongoDB test there runs the lease-and-journal engine."""
    store = await MongoStore.open(settings, {})
    try:
        hello = await store.client.admin.command("hello")
        assert store.transactions == offers_transactions(hello)
        engine = type(store.unit(readonly=False))
        assert engine is (TransactionUnit if store.transactions else JournalUnit)
        if on_nx():
            assert engine is JournalUnit
    finally:
        await store.close()


@needs_mongodb
async def test_read_only_units_do_not_write_and_writes_name_one_document(
    standalone: tuple[MongoStore, MongoStore],
) -> None:
    store, _ = standalone
    with pytest.raises(RuntimeError, match="read-only"):
        async with ProbeUnitOfWork(store, readonly=True) as uow:
            await uow.things.insert_one({"_id": "a"})
    with pytest.raises(ValueError, match="_id"):
        async with ProbeUnitOfWork(store) as uow:
            await uow.things.update_one({"n": 1}, {"$set": {"n": 2}})
    assert await thing(store, "a") is None


@needs_mongodb
async def test_events_wait_for_their_writers_commit(
    standalone: tuple[MongoStore, MongoStore],
) -> None:
    first, second = standalone
    await seed_a(first)
    writer = await write_a_and_b(first)
    # Seen by readers before the commit: its writes (no isolation), never its events.
    assert await thing(second, "b") == {"_id": "b", "n": 1}
    assert await feed(second) == [(1, "a")]
    await writer.commit()
    await writer.__aexit__(None, None, None)
    assert await feed(second) == [(1, "a"), (2, "a"), (3, "b")]


@needs_mongodb
async def test_a_writer_that_died_before_committing_is_undone(
    standalone: tuple[MongoStore, MongoStore], short_lease: None
) -> None:
    first, second = standalone
    await seed_a(first)
    await write_a_and_b(first)  # and its process dies: no commit, no rollback
    await asyncio.sleep(0.2)  # its lease runs out
    assert await feed(second) == [(1, "a")]  # the feed settles it, then reads
    assert await thing(second, "a") == {"_id": "a", "n": 1}
    assert await thing(second, "b") is None
    async with ProbeUnitOfWork(second) as uow:  # the next writer goes on from there
        await uow.events.append("thing.deleted", "a", {})
        await uow.commit()
    assert await feed(second) == [(1, "a"), (2, "a")]


@needs_mongodb
async def test_a_writer_that_died_after_its_commit_point_is_published(
    standalone: tuple[MongoStore, MongoStore],
    short_lease: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = standalone
    await seed_a(first)
    writer = await write_a_and_b(first)

    async def server_gone(*_: object) -> None:
        raise AutoReconnect("connection reset")

    # Committed, then the server goes away before the events are published.
    with monkeypatch.context() as patched:
        patched.setattr(journal, "_settle", server_gone)
        await writer.commit()
        with pytest.raises(ServiceUnavailable):
            await writer.__aexit__(None, None, None)
    assert await feed(second) == [(1, "a")]  # the lease is still held, not yet expired
    await asyncio.sleep(0.2)
    assert await feed(second) == [(1, "a"), (2, "a"), (3, "b")]
    assert await thing(second, "b") == {"_id": "b", "n": 1}


@needs_mongodb
async def test_a_writer_that_outlives_its_lease_is_stopped(
    standalone: tuple[MongoStore, MongoStore], short_lease: None
) -> None:
    first, second = standalone
    await seed_a(first)
    stalled = await write_a_and_b(first)
    await asyncio.sleep(0.2)
    assert await feed(second) == [(1, "a")]  # taken over, and undone
    with pytest.raises(ServiceUnavailable):
        await stalled.things.insert_one({"_id": "c"})
    with pytest.raises(ServiceUnavailable):
        await stalled.commit()
    await stalled.__aexit__(None, None, None)
    assert await thing(second, "a") == {"_id": "a", "n": 1}
    assert await thing(second, "c") is None
    assert await feed(second) == [(1, "a")]


@needs_mongodb
async def test_start_up_settles_what_a_dead_writer_left(
    settings: ProbeSettings, short_lease: None
) -> None:
    first = await MongoStore.open(settings, {}, transactions=False)
    await seed_a(first)
    await write_a_and_b(first)
    await asyncio.sleep(0.2)
    second = await MongoStore.open(settings, {}, transactions=False)
    try:
        lease = await second.database[LOCKS].find_one({"_id": WRITER})
        assert lease is not None
        assert lease["holder"] == ""
        assert await thing(second, "b") is None
        assert await second.database["unit_journal"].count_documents({}) == 0
    finally:
        await first.close()
        await second.close()


@needs_mongodb
async def test_racing_standalone_writers_take_turns(
    standalone: tuple[MongoStore, MongoStore],
) -> None:
    async def bump(store: MongoStore, n: int) -> None:
        async with ProbeUnitOfWork(store) as uow:
            found = await uow.things.find_one({"_id": "counter"})
            await asyncio.sleep(0)
            # A read-then-write that only turns keep right: the test of the turns.
            value = (found or {"n": 0})["n"] + 1
            await uow.things.update_one({"_id": "counter"}, {"$set": {"n": value}}, upsert=True)
            await uow.events.append("counter.bumped", "counter", {"n": value})
            await uow.commit()

    first, second = standalone
    await asyncio.gather(*(bump(first if n % 2 else second, n) for n in range(40)))
    assert await thing(first, "counter") == {"_id": "counter", "n": 40}
    async with ProbeUnitOfWork(first, readonly=True) as uow:
        events = await uow.events.read_after(0, 100)
    assert [(e.seq, e.data["n"]) for e in events] == [(n, n) for n in range(1, 41)]


# --- transactions (a replica set; forced on nx-27017 to exercise the code) ------------------


async def transactional(settings: ProbeSettings) -> MongoStore:
    store = await MongoStore.open(settings, {}, transactions=True if on_nx() else None)
    if not store.transactions:
        await store.close()
        pytest.skip("this server runs no transactions (a standalone)")
    return store


async def change_a_then_fail(store: MongoStore) -> None:
    async with ProbeUnitOfWork(store) as uow:
        await uow.things.update_one({"_id": "a"}, {"$set": {"n": 5}})
        await uow.events.append("thing.changed", "a", {"n": 5})
        raise RuntimeError("boom")


@needs_mongodb
async def test_a_transaction_unit_commits_or_rolls_back(settings: ProbeSettings) -> None:
    store = await transactional(settings)
    try:
        await seed_a(store)
        with pytest.raises(RuntimeError, match="boom"):
            await change_a_then_fail(store)
        assert await thing(store, "a") == {"_id": "a", "n": 1}
        assert await feed(store) == [(1, "a")]
    finally:
        await store.close()


@needs_mongodb
@nx_defect("transactions are savepoints on one shared SQLite connection: no isolation, and "
           "interleaved transactions undo or break each other")  # fmt: skip
async def test_transaction_writers_take_turns(settings: ProbeSettings) -> None:
    first, second = await transactional(settings), await transactional(settings)

    async def append_two(store: MongoStore, n: int) -> None:
        async with ProbeUnitOfWork(store) as uow:
            await uow.events.append("thing.created", f"k{n}", {})
            await asyncio.sleep(0)
            await uow.events.append("thing.updated", f"k{n}", {})
            await uow.commit()

    try:
        await asyncio.gather(*(append_two(first if n % 2 else second, n) for n in range(20)))
        events = await feed(first)
        assert [seq for seq, _ in events] == list(range(1, 41))
        assert all(a[1] == b[1] for a, b in zip(events[::2], events[1::2], strict=True))
    finally:
        await first.close()
        await second.close()
