"""Search follows the products, categories and inventory feeds into its own index: changes
become searchable once polled, the index survives a restart and resumes from its cursors,
a rebuild starts over from the feeds, and several instances follow side by side."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from retail.search import service
from retail.search.adapters.index import index_dirs
from retail.search.engine import IndexInUse
from tests.search.conftest import Search, open_search, search_settings
from tests.search.feeds import FakeFeeds, small_shop
from tests.support import FreshHeaders, assert_error, service_headers

SERVICE = FreshHeaders(lambda: service_headers("tests"))


async def test_a_change_is_searchable_once_the_follower_has_polled(search: Search) -> None:
    search.feeds.product("scarf", "Merino Wool Scarf")
    assert await search.ids("scarf") == []
    assert await search.sync() == 1
    assert await search.ids("scarf") == ["scarf"]
    assert await search.sync() == 0  # nothing new: nothing applied again


async def test_the_background_followers_poll_on_their_own(tmp_path: Path, feeds: FakeFeeds) -> None:
    feeds.down = {"products"}  # not started yet: the follower keeps retrying
    async with open_search(tmp_path, feeds, follow_feeds=True, feed_poll_seconds=0.02) as search:
        feeds.product("scarf", "Merino Wool Scarf")
        feeds.down = set()
        for _ in range(500):  # a bounded wait, no assertion on how long it took
            if await search.ids("scarf"):
                break
            await asyncio.sleep(0.02)
        assert await search.ids("scarf") == ["scarf"]
        feeds.update_product("scarf", title="Merino Wool Snood")
        for _ in range(500):
            if await search.ids("snood"):
                break
            await asyncio.sleep(0.02)
        assert await search.ids("snood") == ["scarf"]


async def test_an_updated_product_is_found_by_its_new_words_only(search: Search) -> None:
    search.feeds.product("p1", "Linen Apron", category_id="c1")
    await search.sync()
    search.feeds.update_product("p1", title="Canvas Apron", description="Heavy and waxed.")
    await search.sync()
    assert await search.ids("canvas waxed") == ["p1"]
    assert await search.ids("linen") == []


async def test_a_deleted_product_is_gone(shop: Search) -> None:
    shop.feeds.delete_product("lamp")
    assert await shop.sync() == 1
    assert await shop.ids("lamp") == []
    suggest = await shop.client.get("/api/search/suggest", params={"q": "table la"})
    assert suggest.json() == []
    # Created again later (an undo in the admin console): found again.
    shop.feeds.product("lamp", "Table Lamp - Brass")
    await shop.sync()
    assert await shop.ids("lamp") == ["lamp"]


async def test_an_inactive_product_is_out_of_search_until_active_again(search: Search) -> None:
    feeds = search.feeds
    feeds.product("p1", "Rain Boots", stock=12)
    feeds.product("p2", "Rain Coat")
    await search.sync()
    feeds.update_product("p1", is_active=False)
    feeds.stock("p1", 3)  # while withdrawn: kept for when it comes back
    await search.sync()
    assert await search.ids("rain") == ["p2"]
    suggest = await search.client.get("/api/search/suggest", params={"q": "rain b"})
    assert suggest.json() == []
    feeds.update_product("p1", is_active=True)
    await search.sync()
    [boots] = await search.find("boots")
    assert (boots["id"], boots["stock"]) == ("p1", 3)
    # Created inactive: never searchable.
    feeds.product("p3", "Rain Hat")
    feeds.update_product("p3", is_active=False)
    await search.sync()
    assert await search.ids("hat") == []


async def test_one_page_with_create_update_delete_applies_in_order(search: Search) -> None:
    feeds = search.feeds
    feeds.product("a", "Wool Scarf")
    feeds.update_product("a", title="Wool Beanie")
    feeds.product("b", "Wool Gloves")
    feeds.delete_product("a")
    feeds.product("c", "Wool Socks")
    feeds.update_product("c", title="Wool Socks", stock=0)
    assert await search.sync() == 6
    assert set(await search.ids("wool")) == {"b", "c"}
    assert await search.ids("beanie") == []
    [socks] = await search.find("socks")
    assert socks["stock"] == 0


async def test_a_renamed_category_finds_its_products_by_the_new_name(shop: Search) -> None:
    shop.feeds.category("cat-fruit", "Sweets", event="category.updated")
    assert await shop.sync() == 1
    assert set(await shop.ids("sweets")) == {"berries", "chocolate"}
    assert await shop.ids("fruit ") == []
    shop.feeds.delete_category("cat-fruit")
    await shop.sync()
    assert await shop.ids("sweets") == []
    assert await shop.ids("frozen berries") == ["berries"]  # the product itself stays


async def test_a_category_named_after_its_products_arrived_still_counts(search: Search) -> None:
    search.feeds.product("p1", "Steel Whisk", category_id="c-late")
    await search.sync()
    assert await search.ids("baking") == []
    search.feeds.category("c-late", "Baking")
    await search.sync()
    assert await search.ids("baking") == ["p1"]


async def test_stock_comes_from_inventorys_feed(shop: Search) -> None:
    feeds = shop.feeds
    feeds.stock("tee", 0)
    feeds.stock("oxford", 7)
    await shop.sync()
    assert await shop.ids("shirt ", in_stock="true") == ["oxford", "jacket"]
    assert await shop.ids("shirt ", in_stock="false") == ["tee"]
    [tee] = await shop.find("organic tee")
    assert tee["stock"] == 0
    # products' copy of the stock in a later product.updated does not override inventory
    feeds.update_product("tee", title="Organic Cotton Tee", stock=10)
    await shop.sync()
    [tee] = await shop.find("organic tee")
    assert (tee["title"], tee["stock"]) == ("Organic Cotton Tee", 0)


async def test_stock_that_arrives_before_its_product_is_kept(search: Search) -> None:
    search.feeds.stock("p1", 0)
    await search.sync()
    search.feeds.product("p1", "Rain Boots", stock=12)
    await search.sync()
    [boots] = await search.find("boots")
    assert boots["stock"] == 0
    assert await search.ids("boots", in_stock="true") == []


async def test_a_malformed_event_stops_its_feed_instead_of_being_skipped(search: Search) -> None:
    search.feeds.add("products", "product.created", "bad", {"id": "bad", "title": "No Price"})
    search.feeds.product("good", "Good Kettle")
    follower = search.app.state.followers["products"]
    with pytest.raises(KeyError):
        await follower.catch_up()
    assert await search.ids("kettle") == []  # nothing of the page was applied
    response = await search.client.get("/api/search", params={"q": "kettle"})
    assert response.status_code == 200  # searching still works meanwhile


async def test_a_peer_that_is_down_delays_its_feed_only(search: Search) -> None:
    search.feeds.down = {"inventory"}
    search.feeds.product("p1", "Steel Whisk")
    assert await search.app.state.followers["products"].catch_up() == 1
    assert await search.ids("whisk") == ["p1"]
    ready = await search.client.get("/ready")
    assert ready.status_code == 200  # the index answers; a feed's peer is not needed for it


# --- restart and rebuild ---------------------------------------------------------------


async def test_a_restart_finds_the_index_and_resumes_from_its_cursors(
    tmp_path: Path, feeds: FakeFeeds
) -> None:
    small_shop(feeds)
    async with open_search(tmp_path, feeds) as first:
        assert await first.sync() == 16
        feeds.stock("tee", 0)
        assert await first.sync() == 1
        before = await first.find("shirt ", limit=100)
    feeds.reads.clear()
    async with open_search(tmp_path, feeds) as second:
        assert await second.find("shirt ", limit=100) == before  # before any poll
        assert await second.sync() == 0  # nothing is applied twice
        assert sorted(feeds.reads) == [("categories", 3), ("inventory", 1), ("products", 13)]
        feeds.delete_product("oxford")
        assert await second.sync() == 1
        assert await second.ids("shirt ") == ["tee", "jacket"]


async def test_rebuild_starts_over_from_the_feeds(search: Search) -> None:
    feeds = search.feeds
    small_shop(feeds)
    feeds.stock("tee", 4)
    feeds.stock("lamp", 2)
    await search.sync()
    # The peers start over (a restored backup): the cursors are now past their new feeds,
    # so following alone would never catch up. A rebuild does.
    feeds.forget_history()
    feeds.category("cat-new", "Garden")
    feeds.product("spade", "Border Spade", category_id="cat-new")
    feeds.stock("spade", 0)
    assert await search.sync() == 0
    response = await search.client.post("/internal/reindex", headers=SERVICE)
    assert response.status_code == 200, response.text
    assert response.json() == {"events_applied": 3, "products_indexed": 1}
    assert await search.ids("shirt ") == []
    [spade] = await search.find("garden")
    assert (spade["id"], spade["stock"]) == ("spade", 0)
    feeds.product("rake", "Leaf Rake", category_id="cat-new")
    assert await search.sync() == 1  # the cursors were rebuilt with the index
    assert set(await search.ids("garden")) == {"spade", "rake"}


async def test_rebuild_while_the_followers_run_converges(tmp_path: Path, feeds: FakeFeeds) -> None:
    small_shop(feeds)
    async with open_search(tmp_path, feeds, follow_feeds=True, feed_poll_seconds=0.01) as search:
        for _ in range(3):
            response = await search.client.post("/internal/reindex", headers=SERVICE)
            assert response.status_code == 200
        feeds.delete_product("lamp")
        await search.client.post("/internal/reindex", headers=SERVICE)
        assert await search.sync() == 0
        assert await search.ids("lamp") == []
        assert len(await search.ids("shirt ")) == 3
        assert (await search.client.get("/ready")).status_code == 200


async def test_a_page_fetched_before_a_rebuild_is_not_applied_after_it(shop: Search) -> None:
    # A follower fetched the page after cursor 13 (a delete), then a rebuild cleared the
    # index; applied now, its cursor would make the rebuild skip events 1..13.
    following, index = shop.app.state.following, shop.app.state.index
    shop.feeds.delete_product("lamp")
    stale_page, guard = shop.feeds.events["products"][-1:], following.guard()

    async def apply_late(feed: str, after: int) -> None:
        if (feed, after) == ("categories", 0):  # the rebuild's first read: after its clear
            shop.feeds.before_read = None
            await service.apply_product_events(index, stale_page, guard)

    shop.feeds.before_read = apply_late
    response = await shop.client.post("/internal/reindex", headers=SERVICE)
    assert response.json() == {"events_applied": 17, "products_indexed": 12}
    assert await shop.ids("lamp") == []
    assert len(await shop.ids("shirt ")) == 3


async def test_a_page_applied_twice_changes_nothing_the_second_time(shop: Search) -> None:
    index = shop.app.state.index
    first_page = shop.feeds.events["products"][:]
    shop.feeds.delete_product("lamp")
    await shop.sync()
    await service.apply_product_events(index, first_page)  # a second poller, late
    assert await shop.ids("lamp") == []  # not brought back
    assert index.get_meta(service.cursor_key("products")) == "14"


async def test_rebuild_with_a_peer_down_is_a_503_and_following_finishes_it(
    search: Search,
) -> None:
    small_shop(search.feeds)
    await search.sync()
    search.feeds.down = {"inventory"}
    response = await search.client.post("/internal/reindex", headers=SERVICE)
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    search.feeds.down = set()
    await search.sync()
    assert len(await search.ids("shirt ")) == 3


# --- several instances -----------------------------------------------------------------


async def test_two_instances_on_two_index_dirs_both_converge(
    tmp_path: Path, feeds: FakeFeeds
) -> None:
    small_shop(feeds)
    async with (
        open_search(tmp_path, feeds, search_index_dir=tmp_path / "one") as one,
        open_search(tmp_path, feeds, search_index_dir=tmp_path / "two") as two,
    ):
        await one.sync()
        feeds.delete_product("lamp")
        feeds.category("cat-shirts", "Tops", event="category.updated")
        feeds.stock("tee", 0)
        await two.sync()
        await one.sync()
        for instance in (one, two):
            assert await instance.ids("lamp") == []
            assert await instance.ids("tops", in_stock="false") == ["oxford", "tee"]
        assert await one.find("shirt ", limit=100) == await two.find("shirt ", limit=100)
    assert (tmp_path / "one").is_dir()
    assert (tmp_path / "two").is_dir()


async def test_instances_sharing_a_data_dir_take_an_index_dir_each(
    tmp_path: Path, feeds: FakeFeeds
) -> None:
    small_shop(feeds)
    first_dir, second_dir = index_dirs(search_settings(tmp_path))[:2]
    async with open_search(tmp_path, feeds) as first, open_search(tmp_path, feeds) as second:
        assert (first_dir.is_dir(), second_dir.is_dir()) == (True, True)
        assert await first.sync() == await second.sync() == 16
        assert await first.ids("shirt ") == await second.ids("shirt ") != []
    # Restarted one at a time, the first takes the first directory back, caught up.
    async with open_search(tmp_path, feeds) as again:
        assert await again.sync() == 0
        assert len(await again.ids("shirt ")) == 3


async def test_an_instance_that_finds_every_index_dir_held_does_not_start(
    tmp_path: Path, feeds: FakeFeeds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("retail.search.adapters.index.MAX_INSTANCES", 1)
    async with open_search(tmp_path, feeds):
        with pytest.raises(IndexInUse):
            async with open_search(tmp_path, feeds):
                pass


def test_the_index_dir_is_a_setting(tmp_path: Path) -> None:
    assert search_settings(tmp_path).index_dir() == tmp_path / "search-index"
    custom = search_settings(tmp_path, search_index_dir=tmp_path / "elsewhere")
    assert custom.index_dir() == tmp_path / "elsewhere"
    with pytest.raises(ValidationError):
        search_settings(tmp_path, feed_poll_seconds=0)
