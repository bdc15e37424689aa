"""The cart's use cases against in-memory fakes: lines priced from the catalogue, the stock and
quantity rules, vanished products, exact totals, and the catalogue being down."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from retail.auth import cart
from retail.auth.domain import MAX_CART_LINES, MAX_CART_QUANTITY, CartLine, User
from retail.auth.exceptions import (
    AccountGone,
    CartFull,
    CartItemNotFound,
    CartLineLimit,
    InsufficientStock,
    UnknownProduct,
)
from retail.auth.ports import AuthDeps
from retail.kernel.errors import ServiceUnavailable
from tests.auth.fakes import Clock, FakeCatalog, State, make_cart_context

ADA = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def state() -> State:
    state = State()
    for user_id in (ADA, BOB):
        state.users[user_id] = User(user_id, f"{user_id}@shop.test", "U", "customer", "h", T0, T0)
    return state


@pytest.fixture
def catalog() -> FakeCatalog:
    catalog = FakeCatalog()
    catalog.add("lamp", 2490, 2000, stock=5, title="Desk lamp", image_url="http://img/lamp.png")
    catalog.add("rug", 8000, 0, stock=1000)
    return catalog


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deps(state: State, catalog: FakeCatalog, clock: Clock) -> AuthDeps:
    return make_cart_context(state, catalog, clock)


def stored(state: State, user_id: str = ADA) -> dict[str, int]:
    return {pid: line.quantity for (owner, pid), line in state.cart.items() if owner == user_id}


async def test_an_empty_cart_asks_the_catalogue_nothing(
    deps: AuthDeps, catalog: FakeCatalog
) -> None:
    catalog.down = True
    view = await cart.view_cart(deps, user_id=ADA)
    assert (view.lines, view.unavailable, view.total_items, view.total_cents) == ([], [], 0, 0)


async def test_a_line_is_priced_from_the_catalogue(deps: AuthDeps, state: State) -> None:
    view = await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=2)
    [priced] = view.lines
    assert priced.line == CartLine(ADA, "lamp", 2, T0)
    assert (priced.product.title, priced.product.image_url) == ("Desk lamp", "http://img/lamp.png")
    # 2 x 24.90 = 49.80; 20 % of it = 9.96
    assert (view.total_items, view.subtotal_cents, view.tax_cents, view.total_cents) == (
        2,
        4980,
        996,
        5976,
    )
    assert stored(state) == {"lamp": 2}


async def test_adding_again_adds_to_the_line_and_keeps_its_place(
    deps: AuthDeps, clock: Clock
) -> None:
    await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=1)
    clock.advance(minutes=1)
    await cart.add_item(deps, user_id=ADA, product_id="rug", quantity=1)
    clock.advance(minutes=1)
    view = await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=2)
    assert [(p.line.product_id, p.line.quantity) for p in view.lines] == [("lamp", 3), ("rug", 1)]
    assert view.lines[0].line.added_at == T0


async def test_the_cart_shows_todays_prices(deps: AuthDeps, catalog: FakeCatalog) -> None:
    await cart.add_item(deps, user_id=ADA, product_id="rug", quantity=1)
    catalog.add("rug", 7000, 1000, stock=1000)
    view = await cart.view_cart(deps, user_id=ADA)
    assert (view.subtotal_cents, view.tax_cents) == (7000, 700)


async def test_tax_is_rounded_half_up_once_per_line(deps: AuthDeps, catalog: FakeCatalog) -> None:
    # 5 cents at 10 %: 0.5 cent of tax per line, 1 cent each once rounded; two lines make
    # 2 cents, where rounding the sum (1 cent) once would give 1.
    catalog.add("pin", 5, 1000)
    catalog.add("clip", 5, 1000)
    await cart.add_item(deps, user_id=ADA, product_id="pin", quantity=1)
    view = await cart.add_item(deps, user_id=ADA, product_id="clip", quantity=1)
    assert [p.tax_cents for p in view.lines] == [1, 1]
    assert (view.subtotal_cents, view.tax_cents, view.total_cents) == (10, 2, 12)
    # 3 x 0.15 at 10 %: 4.5 cents, 5 once rounded for the line (per unit: 3 x 2 = 6).
    catalog.add("cup", 15, 1000)
    view = await cart.add_item(deps, user_id=ADA, product_id="cup", quantity=3)
    assert {p.line.product_id: p.tax_cents for p in view.lines}["cup"] == 5


async def test_an_unknown_product_is_refused_and_nothing_stored(
    deps: AuthDeps, state: State
) -> None:
    with pytest.raises(UnknownProduct) as refused:
        await cart.add_item(deps, user_id=ADA, product_id="ghost", quantity=1)
    assert refused.value.details == {"product_id": "ghost"}
    assert stored(state) == {}


async def test_more_than_the_stock_is_a_conflict_naming_the_numbers(
    deps: AuthDeps, state: State
) -> None:
    await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=3)
    with pytest.raises(InsufficientStock) as refused:
        await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=3)
    assert refused.value.details == {"product_id": "lamp", "requested": 6, "available": 5}
    assert stored(state) == {"lamp": 3}
    view = await cart.add_item(
        deps, user_id=ADA, product_id="lamp", quantity=2
    )  # exactly the stock is fine
    assert view.total_items == 5


async def test_an_empty_shelf_refuses_the_first_unit(deps: AuthDeps, catalog: FakeCatalog) -> None:
    catalog.add("sold-out", stock=0)
    with pytest.raises(InsufficientStock) as refused:
        await cart.add_item(deps, user_id=ADA, product_id="sold-out", quantity=1)
    assert refused.value.details == {"product_id": "sold-out", "requested": 1, "available": 0}


async def test_a_line_holds_at_most_what_one_order_line_may(deps: AuthDeps, state: State) -> None:
    await cart.add_item(deps, user_id=ADA, product_id="rug", quantity=MAX_CART_QUANTITY)
    with pytest.raises(CartLineLimit) as refused:
        await cart.add_item(deps, user_id=ADA, product_id="rug", quantity=1)
    assert refused.value.details == {
        "product_id": "rug",
        "requested": MAX_CART_QUANTITY + 1,
        "limit": MAX_CART_QUANTITY,
    }
    assert stored(state) == {"rug": MAX_CART_QUANTITY}


async def test_the_cart_holds_a_bounded_number_of_products(
    deps: AuthDeps, catalog: FakeCatalog, state: State
) -> None:
    for n in range(MAX_CART_LINES):
        catalog.add(f"p{n:02d}")
        await cart.add_item(deps, user_id=ADA, product_id=f"p{n:02d}", quantity=1)
    catalog.add("one-too-many")
    with pytest.raises(CartFull) as refused:
        await cart.add_item(deps, user_id=ADA, product_id="one-too-many", quantity=1)
    assert refused.value.details == {"limit": MAX_CART_LINES}
    assert len(stored(state)) == MAX_CART_LINES
    view = await cart.add_item(
        deps, user_id=ADA, product_id="p00", quantity=1
    )  # more of a product it holds is fine
    assert view.total_items == MAX_CART_LINES + 1


async def test_set_quantity_replaces_it_within_the_stock(deps: AuthDeps, state: State) -> None:
    await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=1)
    view = await cart.set_quantity(deps, user_id=ADA, product_id="lamp", quantity=4)
    assert view.total_items == 4
    with pytest.raises(InsufficientStock) as refused:
        await cart.set_quantity(deps, user_id=ADA, product_id="lamp", quantity=6)
    assert refused.value.details == {"product_id": "lamp", "requested": 6, "available": 5}
    assert stored(state) == {"lamp": 4}


async def test_set_quantity_of_a_product_not_in_the_cart_is_not_found(
    deps: AuthDeps, catalog: FakeCatalog
) -> None:
    await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=1)
    asked = len(catalog.asked)
    with pytest.raises(CartItemNotFound):
        await cart.set_quantity(deps, user_id=ADA, product_id="rug", quantity=1)
    with pytest.raises(CartItemNotFound):  # another customer's line is not theirs
        await cart.set_quantity(deps, user_id=BOB, product_id="lamp", quantity=1)
    assert len(catalog.asked) == asked


async def test_set_quantity_of_a_product_gone_from_the_catalogue_is_unknown(
    deps: AuthDeps, catalog: FakeCatalog, state: State
) -> None:
    await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=1)
    del catalog.products["lamp"]
    with pytest.raises(UnknownProduct):
        await cart.set_quantity(deps, user_id=ADA, product_id="lamp", quantity=2)
    assert stored(state) == {"lamp": 1}


async def test_remove_and_clear(deps: AuthDeps, state: State) -> None:
    await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=1)
    await cart.add_item(deps, user_id=ADA, product_id="rug", quantity=2)
    await cart.add_item(deps, user_id=BOB, product_id="rug", quantity=1)
    view = await cart.remove_item(deps, user_id=ADA, product_id="lamp")
    assert [(p.line.product_id, p.line.quantity) for p in view.lines] == [("rug", 2)]
    with pytest.raises(CartItemNotFound):
        await cart.remove_item(deps, user_id=ADA, product_id="lamp")
    emptied = await cart.clear_cart(deps, user_id=ADA)
    assert (emptied.lines, emptied.total_cents) == ([], 0)
    assert stored(state) == {}
    assert stored(state, BOB) == {"rug": 1}


async def test_the_catalogue_being_down_changes_nothing(
    deps: AuthDeps, catalog: FakeCatalog, state: State
) -> None:
    await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=1)
    await cart.add_item(deps, user_id=ADA, product_id="rug", quantity=1)
    catalog.down = True
    for attempt in (
        cart.view_cart(deps, user_id=ADA),
        cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=1),
        cart.set_quantity(deps, user_id=ADA, product_id="lamp", quantity=2),
        cart.remove_item(deps, user_id=ADA, product_id="lamp"),
    ):
        with pytest.raises(ServiceUnavailable):
            await attempt
    assert stored(state) == {"lamp": 1, "rug": 1}


async def test_a_product_gone_from_the_catalogue_is_reported_once_and_dropped(
    deps: AuthDeps, catalog: FakeCatalog, state: State
) -> None:
    await cart.add_item(deps, user_id=ADA, product_id="lamp", quantity=2)
    await cart.add_item(deps, user_id=ADA, product_id="rug", quantity=1)
    del catalog.products["lamp"]
    view = await cart.view_cart(deps, user_id=ADA)
    assert [p.line.product_id for p in view.lines] == ["rug"]
    assert [(line.product_id, line.quantity) for line in view.unavailable] == [("lamp", 2)]
    assert (view.total_items, view.subtotal_cents) == (1, 8000)
    assert stored(state) == {"rug": 1}
    assert (await cart.view_cart(deps, user_id=ADA)).unavailable == []


async def test_concurrent_adds_of_one_product_both_count(deps: AuthDeps, state: State) -> None:
    await asyncio.gather(
        *(cart.add_item(deps, user_id=ADA, product_id="rug", quantity=2) for _ in range(5))
    )
    assert stored(state) == {"rug": 10}


async def test_an_account_that_is_gone_cannot_fill_a_cart(deps: AuthDeps, state: State) -> None:
    del state.users[ADA]
    with pytest.raises(AccountGone):
        await cart.add_item(deps, user_id=ADA, product_id="rug", quantity=1)
    assert stored(state) == {}
