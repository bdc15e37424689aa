"""What an order costs search: its `stock.changed` events. A count that keeps the product in
stock is answered at once and commits nothing (tantivy rewrites meta.json on every commit);
one that crosses zero moves the product in or out of `in_stock=true` results."""

from __future__ import annotations

from pathlib import Path

from tests.search.conftest import Search, open_search
from tests.search.feeds import FakeFeeds


def commits_of(search: Search) -> bytes:
    return Path(search.app.state.settings.index_dir(), "meta.json").read_bytes()


async def stock_of(search: Search, q: str) -> int:
    [found] = await search.find(q)
    return int(found["stock"])


async def test_orders_that_leave_a_product_in_stock_commit_nothing(search: Search) -> None:
    search.feeds.product("boots", "Rain Boots", stock=5)
    search.feeds.stock("boots", 5)
    await search.sync()
    before = commits_of(search)
    for left in (4, 3, 2):  # one order at a time, one poll each
        search.feeds.stock("boots", left)
        assert await search.sync() == 1
        assert await stock_of(search, "boots") == left
    assert commits_of(search) == before
    assert await search.ids("boots", in_stock="true") == ["boots"]


async def test_stock_crossing_zero_moves_the_product_between_filters(search: Search) -> None:
    search.feeds.product("boots", "Rain Boots", stock=0)
    search.feeds.stock("boots", 0)
    await search.sync()
    assert await search.ids("boots", in_stock="true") == []
    search.feeds.stock("boots", 5)
    await search.sync()
    assert await search.ids("boots", in_stock="true") == ["boots"]
    assert await stock_of(search, "boots") == 5
    search.feeds.stock("boots", 0)
    await search.sync()
    assert await search.ids("boots", in_stock="true") == []
    assert await search.ids("boots", in_stock="false") == ["boots"]


async def test_counts_answered_without_a_commit_are_kept_at_shutdown(
    tmp_path: Path, feeds: FakeFeeds
) -> None:
    feeds.product("boots", "Rain Boots", stock=5)
    feeds.stock("boots", 5)
    async with open_search(tmp_path, feeds) as search:
        await search.sync()
        feeds.stock("boots", 4)
        await search.sync()
    async with open_search(tmp_path, feeds) as again:
        assert await again.sync() == 0  # the cursor was stored with the count
        assert await stock_of(again, "boots") == 4
