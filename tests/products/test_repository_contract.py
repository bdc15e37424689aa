"""The repositories and unit of work of every back end, against one contract: round trips,
filters, sorts and pages, the stock read model, category clearing, cursors, rollback unless
committed, the outbox with its stock hand-over, and the feed use cases raced through two
separately opened stores on one database, as two processes would race."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from retail.products import feeds, service
from retail.products.dependencies import Units
from retail.products.domain import (
    AddOn,
    CategoryDeleted,
    CategoryRef,
    Combo,
    Product,
    ProductDraft,
    ProductQuery,
    ProductSort,
    SortKey,
    StockLevel,
)
from retail.products.exceptions import SkuTaken
from retail.products.ports import ProductsDeps
from tests.products.conftest import Processes

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def product(n: int, **fields: object) -> Product:
    values: dict[str, object] = {
        "id": f"{n:08d}-0000-4000-8000-{uuid.uuid4().hex[:12]}",
        "title": f"Product {n}",
        "description": "",
        "price_cents": 100 * n,
        "tax_bp": 2000,
        "category_id": None,
        "stock": 0,
        "created_at": T0 + timedelta(minutes=n),
        "updated_at": T0 + timedelta(minutes=n),
        **fields,
    }
    return Product(**values)  # type: ignore[arg-type]


async def store(units: Units, *products: Product) -> None:
    async with units() as uow:
        for p in products:
            await uow.products.add(p)
        await uow.commit()


async def store_updates(units: Units, *products: Product) -> None:
    async with units() as uow:
        await uow.products.update_many(products)
        await uow.commit()


async def page(units: Units, **query: object) -> list[Product]:
    async with units(readonly=True) as uow:
        return (await uow.products.page(ProductQuery(**query))).items  # type: ignore[arg-type]


async def get(units: Units, product_id: str) -> Product | None:
    async with units(readonly=True) as uow:
        return await uow.products.get(product_id)


async def stock_of(units: Units, product_id: str) -> int:
    found = await get(units, product_id)
    assert found is not None
    return found.stock


# --- the repositories ---------------------------------------------------------------------


async def test_a_product_round_trips(processes: Processes) -> None:
    one = processes.one
    made = product(
        1,
        category_id="c1",
        price_cents=9_999_999_999,  # the dearest price allowed: above 32 bits
        add_ons=(AddOn("Wrap", 150), AddOn("Warranty", 0)),
        combos=(Combo("other", 2),),
        image_url="https://img/x.png",
        image_key="x.png",
    )
    await store(one, made)
    async with processes.two(readonly=True) as uow:
        found = await uow.products.get(made.id)
        assert await uow.products.get("ghost") is None
        assert await uow.products.get_many([made.id, "ghost"]) == [made]
        assert await uow.products.get_many([]) == []
    assert found == made
    assert found.created_at.utcoffset() == timedelta(0)
    assert type(found.price_cents) is int
    assert type(found.add_ons[0].price_cents) is int


async def test_skus_are_unique_where_set_and_found_in_bulk(processes: Processes) -> None:
    one, two = processes.one, processes.two
    made = [product(1, sku="A-1", brand="Acme"), product(2), product(3), product(4, sku="A/4")]
    async with one() as uow:
        await uow.products.add_many(made)
        await uow.commit()
    async with two(readonly=True) as uow:
        found = await uow.products.by_skus(["A-1", "A/4", "nope"])
    assert sorted(p.id for p in found) == sorted([made[0].id, made[3].id])
    assert {p.sku: p.brand for p in found} == {"A-1": "Acme", "A/4": None}
    with pytest.raises(SkuTaken):
        await store(two, product(5, sku="A-1"))
    with pytest.raises(SkuTaken):
        await store_updates(two, replace(made[1], sku="A/4"))
    assert [p.sku for p in await page(one, brand="Acme")] == ["A-1"]
    assert [p.id for p in await page(one, sku="A/4")] == [made[3].id]


async def test_bulk_writes_walk_by_id_and_set_stocks(processes: Processes) -> None:
    one, two = processes.one, processes.two
    made = [product(n) for n in range(1, 6)]
    await store(one, *made)
    async with two() as uow:
        await uow.products.update_many([replace(made[0], title="Renamed", sku="R-1")])
        await uow.products.set_stocks([StockLevel(made[1].id, 4), StockLevel(made[1].id, 6)])
        await uow.commit()
    async with one(readonly=True) as uow:
        first = await uow.products.after_id(None, 3)
        rest = await uow.products.after_id(first[-1].id, 3)
    assert [p.id for p in first + rest] == sorted(p.id for p in made)
    assert await stock_of(one, made[1].id) == 6  # in order: the last level wins
    renamed = await get(one, made[0].id)
    assert renamed is not None
    assert (renamed.title, renamed.sku) == ("Renamed", "R-1")


async def test_get_many_finds_each_that_exists(processes: Processes) -> None:
    made = [product(n) for n in range(1, 6)]
    await store(processes.one, *made)
    async with processes.one(readonly=True) as uow:
        found = await uow.products.get_many([made[3].id, "ghost", made[0].id, made[3].id])
    assert sorted(p.id for p in found) == sorted([made[0].id, made[3].id])


async def test_sorts_break_ties_by_id(processes: Processes) -> None:
    one = processes.one
    same = [product(1, price_cents=500, title="same", created_at=T0) for _ in range(3)]
    by_id = sorted(p.id for p in same)
    await store(one, *same, product(2, price_cents=100, title="Apple"))
    newest = await page(one, sort=ProductSort.NEWEST)
    assert [p.id for p in newest[1:]] == by_id[::-1]
    cheap = await page(one, sort=ProductSort.PRICE_ASC)
    assert [p.id for p in cheap[1:]] == by_id
    dear = await page(one, sort=ProductSort.PRICE_DESC)
    assert [p.id for p in dear[:3]] == by_id[::-1]
    titled = await page(one, sort=ProductSort.TITLE)
    assert titled[0].title == "Apple"
    assert [p.id for p in titled[1:]] == by_id


async def test_every_key_sorts_both_ways_ties_by_id_the_same_way(processes: Processes) -> None:
    one = processes.one
    same = [product(1, price_cents=500, title="same", created_at=T0) for _ in range(3)]
    by_id = sorted(p.id for p in same)
    await store(one, *same)
    for key in SortKey:
        up = await page(one, sort=ProductSort(key))
        down = await page(one, sort=ProductSort(key, descending=True))
        assert [p.id for p in up] == by_id, key
        assert [p.id for p in down] == by_id[::-1], key


async def test_titles_descending_and_oldest_first(processes: Processes) -> None:
    one = processes.one
    await store(one, product(1, title="banana"), product(2, title="Apple"), product(3, title="c"))
    down = await page(one, sort=ProductSort(SortKey.TITLE, descending=True))
    assert [p.title for p in down] == ["c", "banana", "Apple"]
    oldest = await page(one, sort=ProductSort(SortKey.CREATED_AT))
    assert [p.title for p in oldest] == ["banana", "Apple", "c"]


async def test_inactive_products_are_listed_only_when_asked(processes: Processes) -> None:
    one, two = processes.one, processes.two
    shown = [product(n, category_id="a") for n in (1, 3)]
    hidden = product(2, category_id="a", is_active=False)
    await store(one, *shown, hidden)
    assert await get(two, hidden.id) == hidden
    for sort in (ProductSort.NEWEST, ProductSort.PRICE_DESC, ProductSort.TITLE):
        for filters in ({}, {"category_id": "a"}, {"min_price_cents": 150}):
            public = await page(two, sort=sort, **filters)
            assert hidden.id not in [p.id for p in public], (sort, filters)
            every = await page(two, sort=sort, include_inactive=True, **filters)
            assert hidden.id in [p.id for p in every], (sort, filters)
    async with two(readonly=True) as uow:
        assert (await uow.products.page(ProductQuery())).total == 2
        assert (await uow.products.page(ProductQuery(include_inactive=True))).total == 3
        assert [p.is_active for p in await uow.products.get_many([hidden.id])] == [False]
    async with one() as uow:
        await uow.products.update(replace(hidden, is_active=True))
        await uow.commit()
    assert len(await page(two)) == 3


async def test_newest_first_orders_by_the_instant(processes: Processes) -> None:
    moments = [T0 + timedelta(milliseconds=ms) for ms in (0, 5, 137, 999, 1000, 61_001)]
    made = [product(n, created_at=at) for n, at in enumerate(reversed(moments), 1)]
    await store(processes.one, *made)
    newest = await page(processes.one, sort=ProductSort.NEWEST)
    assert [p.created_at for p in newest] == moments[::-1]


async def test_title_sort_ignores_case(processes: Processes) -> None:
    one = processes.one
    await store(
        one, product(1, title="banana"), product(2, title="Apple"), product(3, title="cherry")
    )
    assert [p.title for p in await page(one, sort=ProductSort.TITLE)] == [
        "Apple",
        "banana",
        "cherry",
    ]


async def test_filters_and_pages(processes: Processes) -> None:
    one = processes.one
    await store(one, *(product(n, category_id="a" if n % 2 else "b") for n in range(1, 11)))
    in_a = await page(one, category_id="a", sort=ProductSort.PRICE_ASC)
    assert [p.price_cents for p in in_a] == [100, 300, 500, 700, 900]
    ranged = await page(one, min_price_cents=300, max_price_cents=600, sort=ProductSort.PRICE_ASC)
    assert [p.price_cents for p in ranged] == [300, 400, 500, 600]
    both = await page(one, category_id="b", min_price_cents=400, sort=ProductSort.PRICE_DESC)
    assert [p.price_cents for p in both] == [1000, 800, 600, 400]
    second = await page(one, offset=3, limit=3, sort=ProductSort.NEWEST)
    assert [p.price_cents for p in second] == [700, 600, 500]
    async with one(readonly=True) as uow:
        counted = await uow.products.page(ProductQuery(category_id="b", limit=1))
        ranged_count = await uow.products.page(ProductQuery(max_price_cents=250, offset=5))
        beyond = await uow.products.page(ProductQuery(offset=50))
    assert (counted.total, len(counted.items)) == (5, 1)
    assert (ranged_count.total, ranged_count.items) == (2, [])
    assert (beyond.total, beyond.items) == (10, [])


async def _totals(units: Units) -> dict[str, int]:
    """Every list's total, as each kind of list reads it."""
    queries = {
        "shown": ProductQuery(),
        "all": ProductQuery(include_inactive=True),
        "shown in a": ProductQuery(category_id="a"),
        "all in a": ProductQuery(category_id="a", include_inactive=True),
        "shown in b": ProductQuery(category_id="b"),
        "shown from 300": ProductQuery(min_price_cents=300),
    }
    async with units(readonly=True) as uow:
        return {name: (await uow.products.page(query)).total for name, query in queries.items()}


async def test_totals_follow_every_write_that_moves_a_product(processes: Processes) -> None:
    one, two = processes.one, processes.two
    made = [product(n, category_id="a" if n < 4 else None) for n in range(1, 7)]
    await store(one, *made)
    assert await _totals(two) == {
        "shown": 6, "all": 6, "shown in a": 3, "all in a": 3, "shown in b": 0, "shown from 300": 4
    }  # fmt: skip
    async with one() as uow:
        await uow.products.update(replace(made[0], is_active=False))  # hidden, still in a
        await uow.products.update_many([replace(made[1], category_id="b")])  # a -> b
        await uow.products.update(replace(made[4], category_id="a"))  # none -> a
        await uow.products.update(replace(made[5], price_cents=50))  # price only
        assert await uow.products.set_stock(made[2].id, 9)  # stock only
        assert await uow.products.delete(made[3].id)
        await uow.commit()
    assert await _totals(two) == {
        "shown": 4, "all": 5, "shown in a": 2, "all in a": 3, "shown in b": 1, "shown from 300": 2
    }  # fmt: skip
    async with one() as uow:  # never committed: no total moves
        await uow.products.add(product(7, category_id="a"))
        assert await uow.products.delete(made[2].id)
    assert (await _totals(two))["all in a"] == 3
    async with one() as uow:
        await uow.products.clear_category("a", T0)
        await uow.commit()
    assert await _totals(two) == {
        "shown": 4, "all": 5, "shown in a": 0, "all in a": 0, "shown in b": 1, "shown from 300": 2
    }  # fmt: skip


async def test_stock_read_model_updates(processes: Processes) -> None:
    made = product(1, stock=3)
    await store(processes.one, made)
    async with processes.one() as uow:
        assert await uow.products.set_stock(made.id, 8)
        assert not await uow.products.set_stock("ghost", 8)
        await uow.commit()
    found = await get(processes.two, made.id)
    assert found is not None
    assert found.stock == 8
    assert await get(processes.two, "ghost") is None


async def test_clear_category_returns_what_it_changed(processes: Processes) -> None:
    one = processes.one
    a1, a2, b = (
        product(1, category_id="a"),
        product(2, category_id="a"),
        product(3, category_id="b"),
    )
    await store(one, a1, a2, b)
    now = T0 + timedelta(days=1)
    async with one() as uow:
        cleared = await uow.products.clear_category("a", now)
        assert await uow.products.clear_category("a", now) == []
        await uow.deleted_categories.add("a")
        await uow.deleted_categories.add("a")  # idempotent
        await uow.commit()
    assert [p.id for p in cleared] == sorted([a1.id, a2.id])
    assert all(p.category_id is None and p.updated_at == now for p in cleared)
    assert cleared[0] == await get(one, cleared[0].id)
    assert [p.id for p in await page(one, category_id="b")] == [b.id]
    assert await page(one, category_id="a") == []
    async with one(readonly=True) as uow:
        assert await uow.deleted_categories.contains("a")
        assert not await uow.deleted_categories.contains("b")


async def test_update_and_delete(processes: Processes) -> None:
    one = processes.one
    made = product(1, add_ons=(AddOn("Wrap", 1),))
    await store(one, made)
    changed = replace(
        made,
        title="New",
        price_cents=42,
        add_ons=(),
        combos=(Combo("x", 1), Combo("y", 3)),
        category_id="c",
        image_url="u",
        image_key="k",
        updated_at=T0 + timedelta(days=2),
    )
    async with one() as uow:
        await uow.products.update(changed)
        await uow.products.update(product(9))  # no such product: nothing is created
        await uow.commit()
    async with one() as uow:
        assert await uow.products.get(made.id) == changed
        assert await uow.products.get_many([product(9).id]) == []
        assert await uow.products.delete(made.id)
        assert not await uow.products.delete(made.id)
        await uow.commit()
    assert await page(one) == []


async def test_cursors_advance_only_from_where_they_were(processes: Processes) -> None:
    async with processes.one() as uow:
        assert await uow.cursors.get("inventory") == 0
        assert await uow.cursors.advance_from("inventory", 0, 5)
        assert not await uow.cursors.advance_from("inventory", 0, 7)
        assert not await uow.cursors.advance_from("inventory", 4, 7)
        assert await uow.cursors.advance_from("inventory", 5, 9)
        await uow.commit()
    async with processes.two(readonly=True) as uow:
        assert await uow.cursors.get("inventory") == 9
        assert await uow.cursors.get("categories") == 0


# --- the unit of work and the outbox -----------------------------------------------------


async def write_everything_then_fail(units: Units, kept: Product, lost: Product) -> None:
    async with units() as uow:
        await uow.products.add(lost)
        await uow.products.update(replace(kept, title="Changed"))
        await uow.products.set_stock(kept.id, 7)
        await uow.deleted_categories.add("c")
        await uow.cursors.advance_from("inventory", 0, 3)
        await uow.stock.product_created(lost, 4)
        raise RuntimeError("boom")


async def test_nothing_is_kept_without_a_commit(processes: Processes) -> None:
    one = processes.one
    kept, lost = product(1, stock=2), product(2)
    await store(one, kept)
    with pytest.raises(RuntimeError, match="boom"):
        await write_everything_then_fail(one, kept, lost)
    async with one() as uow:  # leaving without a commit rolls back too
        assert await uow.products.delete(kept.id)
        await uow.events.append("product.deleted", kept.id, {"id": kept.id})
    assert await get(one, kept.id) == kept
    async with one(readonly=True) as uow:
        assert await uow.products.get(lost.id) is None
        assert not await uow.deleted_categories.contains("c")
        assert await uow.cursors.get("inventory") == 0
        assert await uow.events.read_after(0, 10) == []


async def test_hand_over_writes_the_stock_into_the_outbox(processes: Processes) -> None:
    made = product(1)
    async with processes.one() as uow:
        await uow.products.add(made)
        await uow.stock.product_created(made, 4)
        await uow.stock.product_updated(made, 6)
        await uow.stock.product_updated(made)
        assert await service.read_events(over(processes.two), after=0, limit=10) == []
        await uow.commit()
    created, set_, plain = await service.read_events(over(processes.two), after=0, limit=10)
    assert created.seq < set_.seq < plain.seq
    assert (created.type, created.key, created.data["initial_stock"]) == (
        "product.created",
        made.id,
        4,
    )
    assert (set_.type, set_.data["stock_set"]) == ("product.updated", 6)
    assert "stock_set" not in plain.data
    assert plain.data == made.as_event_data()
    assert plain.data["price_cents"] == 100


async def test_a_use_case_answers_what_is_read_back(processes: Processes) -> None:
    draft = ProductDraft("Boot", 1999, 2000, add_ons=(AddOn("Laces", 250),), stock=3)
    made = await service.create_product(over(processes.one), draft=draft)
    changes = {"title": "Trail boot", "combos": (Combo("other", 1),)}
    updated = await service.update_product(over(processes.one), product_id=made.id, changes=changes)
    assert await service.get_product(over(processes.two), product_id=made.id) == updated
    created, changed = await service.read_events(over(processes.two), after=0, limit=10)
    assert created.data == {**made.as_event_data(), "initial_stock": 3}
    assert changed.data == updated.as_event_data()


class NoCategories:
    async def exists(self, category_id: str) -> bool:
        return False

    async def all(self) -> list[CategoryRef]:
        return []

    async def create(self, name: str, *, bearer: str) -> CategoryRef:
        raise AssertionError("no category is created here")


class NoImages:
    async def save(self, key: str, data: bytes, content_type: str) -> str:
        raise AssertionError("no image is stored here")

    async def delete(self, key: str) -> None:
        raise AssertionError("no image is removed here")


def over(units: Units) -> ProductsDeps:
    """The use cases' bundle over one process's units of work, with no peers to ask."""
    return ProductsDeps(units=units, categories=NoCategories(), images=NoImages())


# --- the feed use cases, raced ------------------------------------------------------------


async def test_a_stock_batch_applied_by_two_processes_counts_once(processes: Processes) -> None:
    one, two = processes.one, processes.two
    a, b = product(1), product(2)
    await store(one, a, b)
    batch = [
        (1, StockLevel(a.id, 5)),
        (2, None),
        (3, StockLevel(b.id, 7)),
        (4, StockLevel(a.id, 4)),
    ]
    applied = await asyncio.gather(
        feeds.apply_stock_levels(one(), batch), feeds.apply_stock_levels(two(), batch)
    )
    assert sorted(applied) == [0, 4]
    assert [await stock_of(two, p.id) for p in (a, b)] == [4, 7]
    assert await feeds.feed_cursor(two(readonly=True), feeds.INVENTORY_FEED) == 4
    assert await feeds.apply_stock_levels(one(), [(4, StockLevel(a.id, 0))]) == 0


async def test_a_deleted_category_is_cleared_once_by_two_processes(processes: Processes) -> None:
    one, two = processes.one, processes.two
    hats = [product(n, category_id="hats") for n in range(1, 4)]
    await store(one, *hats, product(4, category_id="shoes"))
    batch = [(1, None), (2, CategoryDeleted("hats"))]
    applied = await asyncio.gather(
        feeds.apply_category_changes(one(), batch), feeds.apply_category_changes(two(), batch)
    )
    assert sorted(applied) == [0, 2]
    events = await service.read_events(over(two), after=0, limit=100)
    assert sorted(e.key for e in events) == sorted(p.id for p in hats)
    assert all(e.type == "product.updated" and e.data["category_id"] is None for e in events)
    assert await page(two, category_id="hats") == []
    assert len(await page(two, category_id="shoes")) == 1
    async with two(readonly=True) as uow:
        assert await uow.deleted_categories.contains("hats")


async def test_racing_writers_get_seqs_in_commit_order(processes: Processes) -> None:
    async def create(units: Units, n: int) -> Product:
        draft = ProductDraft(f"P{n}", 100 + n, 0, stock=n)
        return await service.create_product(over(units), draft=draft)

    made = await asyncio.gather(
        *(create(processes.one if n % 2 else processes.two, n) for n in range(20))
    )
    events = await service.read_events(over(processes.one), after=0, limit=100)
    assert [e.seq for e in events] == list(range(1, 21))
    assert {e.key for e in events} == {p.id for p in made}
    listed = await page(processes.two, limit=100, sort=ProductSort.PRICE_ASC)
    assert [p.price_cents for p in listed] == [100 + n for n in range(20)]
