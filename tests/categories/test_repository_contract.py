"""The repository and unit of work of every back end, against one contract: names unique
case-insensitively, the list sorted by name, rollback unless committed, the outbox, and the
use cases raced through two separately opened stores on one database, as two processes
would race."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from retail.categories import service
from retail.categories.dependencies import Units
from retail.categories.domain import Category
from retail.categories.exceptions import CategoryNameTaken
from retail.categories.ports import CategoriesDeps
from tests.categories.conftest import Processes

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def category(n: int, name: str | None = None, **fields: object) -> Category:
    values: dict[str, object] = {
        "id": f"{n:08d}-0000-4000-8000-000000000000",
        "name": name or f"Category {n}",
        "logo": None,
        "description": "",
        "created_at": T0 + timedelta(minutes=n),
        "updated_at": T0 + timedelta(minutes=n),
        **fields,
    }
    return Category(**values)  # type: ignore[arg-type]


async def store(units: Units, *categories: Category) -> None:
    async with units() as work:
        for made in categories:
            await work.categories.add(made)
        await work.commit()


async def names(units: Units) -> list[str]:
    return [c.name for c in await service.list_categories(CategoriesDeps(units))]


async def create(units: Units, name: str) -> Category | CategoryNameTaken:
    try:
        return await service.create_category(
            CategoriesDeps(units), name=name, logo=None, description=""
        )
    except CategoryNameTaken as exc:
        return exc


# --- the repository ---------------------------------------------------------------------


async def test_a_category_round_trips(processes: Processes) -> None:
    one = processes.one
    made = category(1, "Shoes", logo="https://cdn.example/s.png", description="For feet")
    await store(one, made)
    async with one(readonly=True) as work:
        found = await work.categories.get(made.id)
        assert await work.categories.get("ghost") is None
    assert found == made
    assert found.created_at.utcoffset() == timedelta(0)
    assert found.updated_at.utcoffset() == timedelta(0)


async def test_the_list_is_sorted_by_name_ignoring_case(processes: Processes) -> None:
    one = processes.one
    await store(one, category(1, "kitchen"), category(2, "Apparel"), category(3, "garden"))
    assert await names(one) == ["Apparel", "garden", "kitchen"]


async def test_names_are_unique_ignoring_case(processes: Processes) -> None:
    one = processes.one
    toys, games = category(1, "Toys"), category(2, "Games")
    await store(one, toys, games)
    async with one() as work:
        with pytest.raises(CategoryNameTaken):
            await work.categories.add(category(3, "tOYS"))
    async with one() as work:
        with pytest.raises(CategoryNameTaken):
            await work.categories.update(replace(games, name="TOYS"))
    async with one() as work:  # its own name in another case is no clash
        await work.categories.update(replace(toys, name="TOYS"))
        await work.commit()
    assert await names(one) == ["Games", "TOYS"]


async def test_update_and_delete(processes: Processes) -> None:
    one = processes.one
    made = category(1, "Old")
    await store(one, made)
    changed = replace(made, name="New", logo="l.png", description="d", updated_at=T0 + timedelta(1))
    async with one() as work:
        await work.categories.update(changed)
        await work.categories.update(category(9, "Ghost"))  # no such category: no upsert
        await work.commit()
    async with one() as work:
        assert await work.categories.get(made.id) == changed
        assert await work.categories.get(category(9).id) is None
        assert await work.categories.delete(made.id)
        assert not await work.categories.delete(made.id)
        await work.commit()
    assert await names(one) == []


# --- the unit of work and the outbox -----------------------------------------------------


async def write_everything_then_fail(units: Units, kept: Category) -> None:
    async with units() as work:
        await work.categories.add(category(2, "Lost"))
        await work.categories.update(replace(kept, name="Changed"))
        await work.events.append("category.created", "x", {"id": "x"})
        raise RuntimeError("boom")


async def test_nothing_is_kept_unless_committed(processes: Processes) -> None:
    one = processes.one
    kept = category(1, "Kept")
    await store(one, kept)
    with pytest.raises(RuntimeError, match="boom"):
        await write_everything_then_fail(one, kept)
    async with one() as work:  # leaving without a commit rolls back too
        assert await work.categories.delete(kept.id)
        await work.events.append("category.deleted", kept.id, {"id": kept.id})
    assert await names(one) == ["Kept"]
    assert await service.read_events(CategoriesDeps(one), after=0, limit=10) == []


async def test_a_refused_name_leaves_no_event(processes: Processes) -> None:
    one = processes.one
    first = await create(one, "Toys")
    assert isinstance(await create(one, "toys"), CategoryNameTaken)
    assert isinstance(first, Category)
    events = await service.read_events(CategoriesDeps(one), after=0, limit=10)
    assert [(e.seq, e.type, e.key) for e in events] == [(1, "category.created", first.id)]


async def test_a_use_case_answers_what_is_read_back(processes: Processes) -> None:
    made = await create(processes.one, "Garden")
    assert isinstance(made, Category)
    updated = await service.update_category(
        CategoriesDeps(processes.one), category_id=made.id, changes={"logo": "g.png"}
    )
    assert await service.get_category(CategoriesDeps(processes.two), category_id=made.id) == updated
    events = await service.read_events(CategoriesDeps(processes.two), after=0, limit=10)
    assert events[0].data == made.as_event_data()
    assert events[1].data == updated.as_event_data()


async def test_events_are_seen_once_committed_in_seq_order(processes: Processes) -> None:
    one, two = processes.one, processes.two
    async with one() as work:
        await work.events.append("category.created", "k1", {"id": "k1", "logo": None})
        await work.events.append("category.deleted", "k1", {"id": "k1"})
        assert await service.read_events(CategoriesDeps(two), after=0, limit=10) == []
        await work.commit()
    events = await service.read_events(CategoriesDeps(two), after=0, limit=10)
    assert [(e.type, e.key, e.data) for e in events] == [
        ("category.created", "k1", {"id": "k1", "logo": None}),
        ("category.deleted", "k1", {"id": "k1"}),
    ]
    assert events[0].seq < events[1].seq
    assert [
        e.key for e in await service.read_events(CategoriesDeps(two), after=events[0].seq, limit=10)
    ] == ["k1"]


# --- the use cases, raced ---------------------------------------------------------------


async def test_racing_creates_of_one_name_make_one_category(processes: Processes) -> None:
    one, two = processes.one, processes.two
    spellings = ["Toys", "toys", "TOYS", "tOys"]
    outcomes = await asyncio.gather(
        *(create(one if n % 2 else two, spellings[n % 4]) for n in range(16))
    )
    made = [o for o in outcomes if isinstance(o, Category)]
    assert len(made) == 1
    assert sum(isinstance(o, CategoryNameTaken) for o in outcomes) == 15
    assert len(await names(two)) == 1
    events = await service.read_events(CategoriesDeps(two), after=0, limit=100)
    assert [(e.type, e.key) for e in events] == [("category.created", made[0].id)]


async def test_racing_creates_get_seqs_in_commit_order(processes: Processes) -> None:
    one, two = processes.one, processes.two
    outcomes = await asyncio.gather(*(create(one if n % 2 else two, f"C{n}") for n in range(20)))
    assert all(isinstance(o, Category) for o in outcomes)
    events = await service.read_events(CategoriesDeps(one), after=0, limit=100)
    assert [e.seq for e in events] == list(range(1, 21))
    assert {e.key for e in events} == {o.id for o in outcomes if isinstance(o, Category)}
