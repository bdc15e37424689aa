"""Use cases against in-memory fakes: the rules, the events, the stock hand-over, the feeds
products follows, and images, without HTTP or a database."""

from __future__ import annotations

import logging

import pytest

from retail.kernel.errors import ServiceUnavailable, ValidationFailed
from retail.products import feeds, images, service
from retail.products.domain import (
    AddOn,
    CategoryDeleted,
    Combo,
    ProductDraft,
    ProductQuery,
    ProductSort,
    StockLevel,
)
from retail.products.exceptions import (
    ImageDimensionsTooLarge,
    ProductNotFound,
    UnknownCategory,
    UnsupportedImage,
)
from retail.products.ports import ProductsDeps
from tests.products.fakes import FakeCategories, FakeImageStore, FakeUnitOfWork, State
from tests.products.pictures import image_bytes, png_declaring

MAX_PIXELS = 40_000_000
NO_IMAGES = FakeImageStore()  # for updates that do not touch the image


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def categories() -> FakeCategories:
    return FakeCategories("shoes", "hats")


def over(
    uow: FakeUnitOfWork,
    categories: FakeCategories | None = None,
    images: FakeImageStore = NO_IMAGES,
) -> ProductsDeps:
    """The use cases' bundle over one fake database: every unit of work it opens is `uow`."""

    def units(*, readonly: bool = False) -> FakeUnitOfWork:
        return uow

    return ProductsDeps(units=units, categories=categories or FakeCategories(), images=images)


def draft(**fields: object) -> ProductDraft:
    values: dict[str, object] = {"title": "Boot", "price_cents": 1999, "tax_bp": 725, **fields}
    return ProductDraft(**values)  # type: ignore[arg-type]


def event_types(state: State) -> list[str]:
    return [e.type for e in state.events.events]


async def test_create_hands_the_initial_stock_over_in_its_event(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    made = await service.create_product(
        over(uow, categories),
        draft=draft(category_id="shoes", stock=7, add_ons=(AddOn("Wrap", 150),)),
    )
    assert made.stock == 7
    assert uow.state.products[made.id].category_id == "shoes"
    [event] = uow.state.events.events
    assert (event.type, event.key) == ("product.created", made.id)
    assert event.data["initial_stock"] == 7
    assert (event.data["price_cents"], event.data["tax_bp"]) == (1999, 725)
    assert (event.data["price"], event.data["tax_percent"]) == (19.99, 7.25)
    assert event.data["add_ons"] == [{"name": "Wrap", "price": 1.5}]


async def test_create_refuses_an_unknown_category_and_writes_nothing(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    with pytest.raises(UnknownCategory):
        await service.create_product(over(uow, categories), draft=draft(category_id="nope"))
    assert uow.state.products == {}
    assert uow.state.events.events == []


async def test_create_without_categories_service_is_unavailable(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    categories.down = True
    with pytest.raises(ServiceUnavailable):
        await service.create_product(over(uow, categories), draft=draft(category_id="shoes"))
    assert uow.state.products == {}
    # No category: no call.
    made = await service.create_product(over(uow, categories), draft=draft())
    assert made.category_id is None


async def test_a_category_the_feed_deleted_is_refused_even_if_categories_said_yes(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    uow.state.deleted_categories.add("shoes")
    with pytest.raises(UnknownCategory):
        await service.create_product(over(uow, categories), draft=draft(category_id="shoes"))
    assert uow.state.products == {}


async def test_update_sets_stock_through_the_hand_over_only_when_given(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    made = await service.create_product(over(uow, categories), draft=draft(stock=1))
    await service.update_product(
        over(uow, categories, NO_IMAGES), product_id=made.id, changes={"title": "Shoe", "stock": 9}
    )
    await service.update_product(
        over(uow, categories, NO_IMAGES), product_id=made.id, changes={"price_cents": 2500}
    )
    _created, with_stock, without_stock = uow.state.events.events
    assert with_stock.type == without_stock.type == "product.updated"
    assert with_stock.data["stock_set"] == 9
    assert with_stock.data["title"] == "Shoe"
    assert "stock_set" not in without_stock.data
    assert without_stock.data["price_cents"] == 2500
    assert uow.state.products[made.id].stock == 9


async def test_update_may_clear_the_category_without_asking_categories(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    made = await service.create_product(over(uow, categories), draft=draft(category_id="hats"))
    categories.asked.clear()
    updated = await service.update_product(
        over(uow, categories, NO_IMAGES), product_id=made.id, changes={"category_id": None}
    )
    assert updated.category_id is None
    assert categories.asked == []


async def test_keeping_the_category_needs_no_categories_service(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    made = await service.create_product(over(uow, categories), draft=draft(category_id="hats"))
    categories.down = True
    same = {"title": "Cap", "category_id": "hats"}
    updated = await service.update_product(
        over(uow, categories, NO_IMAGES), product_id=made.id, changes=same
    )
    assert updated.title == "Cap"
    with pytest.raises(ServiceUnavailable):
        await service.update_product(
            over(uow, categories, NO_IMAGES), product_id=made.id, changes={"category_id": "shoes"}
        )
    assert uow.state.products[made.id].category_id == "hats"


async def test_update_of_an_unknown_product_is_not_found(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    with pytest.raises(ProductNotFound):
        await service.update_product(
            over(uow, categories, NO_IMAGES), product_id="ghost", changes={"title": "x"}
        )
    with pytest.raises(ProductNotFound):
        await service.update_product(
            over(uow, categories, NO_IMAGES), product_id="ghost", changes={"category_id": "hats"}
        )
    assert categories.asked == []
    assert uow.state.events.events == []


async def test_update_refuses_a_combo_of_the_product_itself(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    made = await service.create_product(over(uow, categories), draft=draft())
    with pytest.raises(ValidationFailed):
        await service.update_product(
            over(uow, categories, NO_IMAGES),
            product_id=made.id,
            changes={"combos": (Combo(made.id, 1),)},
        )
    assert event_types(uow.state) == ["product.created"]


async def test_delete_records_the_event_and_removes_the_image(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    store = FakeImageStore()
    made = await service.create_product(over(uow, categories), draft=draft())
    with_image = await images.upload_image(
        over(uow, images=store), product_id=made.id, data=image_bytes("PNG"), max_pixels=MAX_PIXELS
    )
    assert with_image.image_key in store.objects
    await service.delete_product(over(uow, images=store), product_id=made.id)
    assert store.objects == {}
    assert uow.state.products == {}
    assert uow.state.events.events[-1].type == "product.deleted"
    assert uow.state.events.events[-1].data == {"id": made.id}
    with pytest.raises(ProductNotFound):
        await service.delete_product(over(uow, images=store), product_id=made.id)


async def test_lookup_keeps_the_order_asked_and_skips_missing(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    a = await service.create_product(over(uow, categories), draft=draft(title="A"))
    b = await service.create_product(over(uow, categories), draft=draft(title="B"))
    found = await service.lookup_products(over(uow), product_ids=[b.id, "ghost", a.id, b.id])
    assert [p.id for p in found] == [b.id, a.id]


async def test_list_filters_and_sorts(uow: FakeUnitOfWork, categories: FakeCategories) -> None:
    for cents in (500, 100, 300):
        await service.create_product(
            over(uow, categories), draft=draft(price_cents=cents, category_id="hats")
        )
    query = ProductQuery(sort=ProductSort.PRICE_ASC, min_price_cents=200, category_id="hats")
    page = await service.list_products(over(uow), query=query)
    assert [p.price_cents for p in page.items] == [300, 500]
    assert page.total == 2


# ---- following feeds -------------------------------------------------------------------


async def test_stock_levels_apply_once_and_move_the_cursor(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    made = await service.create_product(over(uow, categories), draft=draft(stock=5))
    batch = [(1, StockLevel(made.id, 4)), (2, None), (3, StockLevel("gone", 1))]
    assert await feeds.apply_stock_levels(uow, batch) == 3
    assert uow.state.products[made.id].stock == 4
    assert await feeds.feed_cursor(uow, feeds.INVENTORY_FEED) == 3
    # A replay (another process, a retry) changes nothing; only the new tail counts.
    uow.state.products[made.id].stock = 99
    assert await feeds.apply_stock_levels(uow, [*batch, (4, StockLevel(made.id, 2))]) == 1
    assert uow.state.products[made.id].stock == 2


async def test_stock_levels_name_the_products_whose_answers_change(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    # The read cache keeps every other product's page only on this promise (kernel/cache.py).
    made = await service.create_product(over(uow, categories), draft=draft(stock=5))
    other = await service.create_product(over(uow, categories), draft=draft(stock=5))
    await feeds.apply_stock_levels(uow, [(1, StockLevel(made.id, 4)), (2, None)])
    assert uow.changes_named == {made.id}
    await feeds.set_stocks(uow, [StockLevel(made.id, 3), StockLevel(other.id, 1)])
    assert uow.changes_named == {made.id, other.id}
    # Other writes promise nothing: anything they change may show anywhere.
    await service.create_product(over(uow, categories), draft=draft(stock=5))
    assert uow.changes_named is None


async def test_stock_levels_write_no_product_events(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    made = await service.create_product(over(uow, categories), draft=draft())
    await feeds.apply_stock_levels(uow, [(1, StockLevel(made.id, 4))])
    assert event_types(uow.state) == ["product.created"]


async def test_category_deletion_clears_products_with_events(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    in_hats = [await service.create_product(over(uow, categories), draft=draft(category_id="hats"))]
    in_hats.append(
        await service.create_product(over(uow, categories), draft=draft(category_id="hats"))
    )
    other = await service.create_product(over(uow, categories), draft=draft(category_id="shoes"))
    assert await feeds.apply_category_changes(uow, [(1, None), (2, CategoryDeleted("hats"))]) == 2
    assert all(uow.state.products[p.id].category_id is None for p in in_hats)
    assert uow.state.products[other.id].category_id == "shoes"
    updates = [e for e in uow.state.events.events if e.type == "product.updated"]
    assert sorted(e.key for e in updates) == sorted(p.id for p in in_hats)
    assert all(e.data["category_id"] is None and "stock_set" not in e.data for e in updates)
    assert "hats" in uow.state.deleted_categories
    assert await feeds.apply_category_changes(uow, [(2, CategoryDeleted("hats"))]) == 0


async def test_a_lost_cursor_race_reads_the_cursor_again(uow: FakeUnitOfWork) -> None:
    uow.state.cursors[feeds.INVENTORY_FEED] = 0
    original = uow.cursors.advance_from
    calls: list[int] = []

    async def raced(feed: str, expected: int, seq: int) -> bool:
        calls.append(expected)
        if len(calls) == 1:
            # Another process applied seq 1 meanwhile.
            uow.state.commit_elsewhere(lambda state: state.cursors.update({feed: 1}))
            return False
        return await original(feed, expected, seq)

    uow.cursors.advance_from = raced  # type: ignore[method-assign]
    assert await feeds.apply_stock_levels(uow, [(1, None), (2, None)]) == 1
    assert calls == [0, 1]


# ---- images ----------------------------------------------------------------------------


async def test_replacing_an_image_removes_the_old_one_after_commit(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    store = FakeImageStore()
    made = await service.create_product(over(uow, categories), draft=draft())
    first = await images.upload_image(
        over(uow, images=store), product_id=made.id, data=image_bytes("PNG"), max_pixels=10**6
    )
    second = await images.upload_image(
        over(uow, images=store), product_id=made.id, data=image_bytes("PNG"), max_pixels=10**6
    )
    assert first.image_key != second.image_key  # never reused, even for the same bytes
    assert list(store.objects) == [second.image_key]
    assert second.image_url == f"https://img.test/{second.image_key}"
    assert event_types(uow.state)[-2:] == ["product.updated", "product.updated"]


async def test_a_failed_commit_leaves_no_orphan_and_no_change(
    uow: FakeUnitOfWork, categories: FakeCategories
) -> None:
    store = FakeImageStore()
    made = await service.create_product(over(uow, categories), draft=draft())
    first = await images.upload_image(
        over(uow, images=store), product_id=made.id, data=image_bytes("GIF"), max_pixels=10**6
    )
    uow.state.fail_commit = True
    with pytest.raises(RuntimeError):
        await images.upload_image(
            over(uow, images=store), product_id=made.id, data=image_bytes("JPEG"), max_pixels=10**6
        )
    assert list(store.objects) == [first.image_key]
    assert uow.state.products[made.id].image_key == first.image_key


async def test_an_image_for_a_product_deleted_meanwhile_is_discarded(
    uow: FakeUnitOfWork,
) -> None:
    store = FakeImageStore()
    with pytest.raises(ProductNotFound):
        await images.upload_image(
            over(uow, images=store), product_id="ghost", data=image_bytes("PNG"), max_pixels=10**6
        )
    assert store.objects == {}


@pytest.mark.parametrize(
    ("data", "error"),
    [(b"plain text", UnsupportedImage), (png_declaring(20000, 20000), ImageDimensionsTooLarge)],
)
async def test_refused_images_store_nothing(
    uow: FakeUnitOfWork, categories: FakeCategories, data: bytes, error: type[Exception]
) -> None:
    store = FakeImageStore()
    made = await service.create_product(over(uow, categories), draft=draft())
    with pytest.raises(error):
        await images.upload_image(
            over(uow, images=store), product_id=made.id, data=data, max_pixels=MAX_PIXELS
        )
    assert store.objects == {}
    assert event_types(uow.state) == ["product.created"]


async def test_a_failing_delete_of_an_old_image_is_logged_not_raised(
    uow: FakeUnitOfWork, categories: FakeCategories, caplog: pytest.LogCaptureFixture
) -> None:
    store = FakeImageStore()
    made = await service.create_product(over(uow, categories), draft=draft())
    await images.upload_image(
        over(uow, images=store), product_id=made.id, data=image_bytes("PNG"), max_pixels=10**6
    )
    store.fail_deletes = True
    with caplog.at_level(logging.WARNING, logger="retail.products.images"):
        updated = await images.upload_image(
            over(uow, images=store), product_id=made.id, data=image_bytes("WEBP"), max_pixels=10**6
        )
    assert uow.state.products[made.id].image_key == updated.image_key
    assert "could not delete image" in caplog.text


def test_drafts_default_to_no_stock_and_no_extras() -> None:
    made = draft()
    assert (made.stock, made.add_ons, made.combos, made.category_id) == (0, (), (), None)
