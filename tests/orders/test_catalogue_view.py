"""The catalogue view in orders (orders/feeds.py): answered from products' feed while known
current within its bound, by the live lookup otherwise. The clock and the feed are fakes, so
the bound is checked exactly, whatever the machine's speed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.events import Event, EventFeed
from retail.orders.domain import CatalogEntry
from retail.orders.feeds import CatalogueView

MAX_AGE = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Products:
    """Products as both sides see it: the feed the view follows and the live lookup."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.live: dict[str, CatalogEntry] = {}
        self.lookups: list[list[str]] = []
        self.down = False

    def put(self, product_id: str, price_cents: int, *, active: bool = True) -> None:
        data: dict[str, Any] = {"title": product_id.title(), "price_cents": price_cents}
        data |= {"tax_bp": 0, "is_active": active}
        self._event("product.updated", product_id, data)
        if active:
            self.live[product_id] = CatalogEntry(product_id, product_id.title(), price_cents, 0)
        else:
            self.live.pop(product_id, None)

    def delete(self, product_id: str) -> None:
        self._event("product.deleted", product_id, {"id": product_id})
        self.live.pop(product_id, None)

    def _event(self, kind: str, key: str, data: dict[str, Any]) -> None:
        seq = len(self.events) + 1
        self.events.append(Event(seq=seq, type=kind, key=key, data=data, occurred_at=_NOW))

    async def read_events(self, after: int, limit: int, *, wait: float = 0) -> EventFeed:
        if self.down:
            raise ServiceUnavailable("products is down")
        page = [event for event in self.events if event.seq > after][:limit]
        return EventFeed(events=page, last_seq=len(self.events))

    async def lookup(self, product_ids: Sequence[str]) -> dict[str, CatalogEntry]:
        if self.down:
            raise ServiceUnavailable("products is down")
        self.lookups.append(list(product_ids))
        return {i: self.live[i] for i in product_ids if i in self.live}


_NOW = datetime(2026, 12, 3, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def products() -> Products:
    return Products()


@pytest.fixture
def view(products: Products, clock: Clock) -> CatalogueView:
    return CatalogueView(products, max_age=MAX_AGE, clock=clock)


def price(found: dict[str, CatalogEntry], product_id: str) -> int:
    return found[product_id].price_cents


async def test_before_it_has_heard_the_feed_products_answers(
    view: CatalogueView, products: Products
) -> None:
    products.put("pen", 100)
    assert price(await view.lookup(["pen"]), "pen") == 100
    assert products.lookups == [["pen"]]


async def test_once_current_it_answers_without_asking_products(
    view: CatalogueView, products: Products
) -> None:
    products.put("pen", 100)
    products.put("ink", 250)
    assert await view.following(products).catch_up() == 2
    found = await view.lookup(["pen", "ink"])
    assert (price(found, "pen"), price(found, "ink")) == (100, 250)
    assert products.lookups == []


async def test_a_product_it_has_not_heard_of_is_asked_for(
    view: CatalogueView, products: Products
) -> None:
    products.put("pen", 100)
    await view.following(products).catch_up()
    products.put("ink", 250)  # not read yet
    found = await view.lookup(["pen", "ink"])
    assert (price(found, "pen"), price(found, "ink")) == (100, 250)
    assert products.lookups == [["pen", "ink"]]


async def test_withdrawn_and_deleted_products_are_not_sold(
    view: CatalogueView, products: Products
) -> None:
    products.put("pen", 100)
    products.put("ink", 250)
    products.put("pen", 100, active=False)
    products.delete("ink")
    await view.following(products).catch_up()
    assert await view.lookup(["pen"]) == {}  # known, withdrawn: no need to ask
    assert products.lookups == []
    assert await view.lookup(["ink"]) == {}  # deleted: products is asked, and says so
    assert products.lookups == [["ink"]]


async def test_the_bound_a_change_is_used_at_most_max_age_after_it_is_committed(
    view: CatalogueView, products: Products, clock: Clock
) -> None:
    """The trade, exactly: within the bound an order may still get the old price; from the
    bound on, never (the view is no longer known current, so products answers)."""
    follower = view.following(products)
    products.put("pen", 100)
    await follower.catch_up()  # sent at 100.0: current as of then
    clock.now += 0.5
    products.put("pen", 120)  # committed at 100.5, not read yet
    clock.now += 1.5
    assert price(await view.lookup(["pen"]), "pen") == 100  # 2.0 s after the last read
    assert products.lookups == []
    clock.now += 0.01
    assert price(await view.lookup(["pen"]), "pen") == 120  # past the bound: products
    assert products.lookups == [["pen"]]
    await follower.catch_up()  # a read sent now carries the change
    assert price(await view.lookup(["pen"]), "pen") == 120
    assert products.lookups == [["pen"]]


async def test_a_full_page_is_not_the_head_of_the_feed(products: Products, clock: Clock) -> None:
    view = CatalogueView(products, max_age=MAX_AGE, clock=clock)
    for n in range(3):
        products.put(f"p{n}", 100 + n)
    events = await products.read_events(0, 2)
    source = view.following(products, batch_size=2)
    # One page of two: events applied, but more may follow, so not current yet.
    await view.apply(events.events)
    view.heard(clock(), events, 2)
    await view.lookup(["p0"])
    assert products.lookups == [["p0"]]
    await source.catch_up()
    assert price(await view.lookup(["p2"]), "p2") == 102
    assert products.lookups == [["p0"]]


async def test_while_products_is_away_the_view_goes_stale_and_orders_fail_as_before(
    view: CatalogueView, products: Products, clock: Clock
) -> None:
    products.put("pen", 100)
    await view.following(products).catch_up()
    products.down = True
    clock.now += MAX_AGE + 0.1
    with pytest.raises(ServiceUnavailable):
        await view.lookup(["pen"])


async def test_it_keeps_itself_current_only_while_orders_come(
    view: CatalogueView, products: Products, clock: Clock
) -> None:
    """At rest its reads are held long (no polling cost); after a quiet spell the first
    order goes to products, and the reads come every half bound again."""
    resting = view.next_wait()
    assert resting > MAX_AGE
    products.put("pen", 100)
    await view.lookup(["pen"])
    assert view.next_wait() == MAX_AGE / 4
    clock.now += 60
    assert view.next_wait() == resting


class LateProducts(Products):
    """A feed whose held reads are answered `late` seconds after their wait (a busy products,
    a busy event loop): each read carries one new price, and notes, just before it is
    answered, whether the view was still current."""

    def __init__(self, clock: Clock, late: float, reads: int) -> None:
        super().__init__()
        self.clock = clock
        self.late = late
        self.reads = reads
        self.current_before_answers: list[bool] = []
        self.view: CatalogueView | None = None

    async def read_events(self, after: int, limit: int, *, wait: float = 0) -> EventFeed:
        assert self.view is not None
        if wait:
            if len(self.current_before_answers) == self.reads:
                raise asyncio.CancelledError  # enough: ends the follower
            self.put("pen", 100 + len(self.current_before_answers))
            self.clock.now += wait + self.late
            self.current_before_answers.append(self.view.is_current())
        return await super().read_events(after, limit, wait=wait)


@pytest.mark.parametrize(("late", "stays_current"), [(0.49, True), (0.6, False)])
async def test_while_orders_come_an_answer_may_be_late_by_a_quarter_bound(
    clock: Clock, late: float, stays_current: bool
) -> None:
    """Reads held a quarter of the bound, one after another: the view is current at every
    moment (the worst is just before an answer lands) if each answer is at most a quarter
    bound late. Held for half the bound, any lateness made it stale once a cycle."""
    products = LateProducts(clock, late, reads=6)
    view = products.view = CatalogueView(products, max_age=MAX_AGE, clock=clock)
    products.put("pen", 99)
    await view.lookup(["pen"])  # orders are coming
    follower = view.following(products)
    await follower.catch_up()
    with pytest.raises(asyncio.CancelledError):
        await follower.run()
    assert len(products.current_before_answers) == 6
    assert all(products.current_before_answers[1:]) is stays_current


class HeldProducts(Products):
    """A feed that holds a read (wait > 0) until it is cancelled or released."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[float] = []
        self.holding = asyncio.Event()
        self.cancelled = 0
        self.release = asyncio.Event()

    async def read_events(self, after: int, limit: int, *, wait: float = 0) -> EventFeed:
        if wait:
            self.held.append(wait)
            self.holding.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return await super().read_events(after, limit, wait=wait)


async def test_the_first_order_after_a_quiet_spell_cuts_the_resting_read_short(
    clock: Clock,
) -> None:
    """At rest the view's read is held long. The first order goes to products, and wakes the
    follower, which gives the held read up and reads the feed's head at once: the next
    order is answered from the view, not 15 s later."""
    products = HeldProducts()
    view = CatalogueView(products, max_age=MAX_AGE, clock=clock)
    products.put("pen", 100)
    follower = view.following(products)
    await follower.catch_up()
    clock.now += 60  # a quiet spell: stale, and resting
    running = asyncio.create_task(follower.run())
    try:
        await asyncio.wait_for(products.holding.wait(), 10)
        assert products.held == [view.next_wait()]
        assert products.held[0] > MAX_AGE
        assert price(await view.lookup(["pen"]), "pen") == 100
        assert products.lookups == [["pen"]]
        for _ in range(100):
            if view.is_current():
                break
            await asyncio.sleep(0)
        assert products.cancelled == 1
        assert view.is_current()
        assert price(await view.lookup(["pen"]), "pen") == 100
        assert products.lookups == [["pen"]]  # the second order: from the view
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
