"""What an import sends search through the feeds: brands are searchable and shown, and
inventory's first level of a product (its initial stock, which `product.created` already
carried) changes nothing in the index."""

from __future__ import annotations

from tests.search.conftest import Search


async def test_a_brand_is_searchable_and_shown(search: Search) -> None:
    wire = search.feeds.product("earl", "Earl Grey 100 bags", stock=3)
    search.feeds.update_product("earl", brand="Twinings", sku="TEA-1")
    await search.sync()
    [found] = await search.find("twinings")
    assert found["id"] == "earl"
    assert (found["brand"], found["sku"]) == ("Twinings", "TEA-1")
    assert found == wire | {"brand": "Twinings", "sku": "TEA-1"}


async def test_an_initial_stock_event_is_not_applied_again(search: Search) -> None:
    search.feeds.product("mug", "Enamel Mug", stock=4)
    # An initial level that disagreed with the product would show, if it were applied.
    initial = {"product_id": "mug", "stock": 0, "change": 0, "reason": "initial stock"}
    search.feeds.add("inventory", "stock.changed", "mug", initial | {"order_id": None})
    await search.sync()
    assert [p["stock"] for p in await search.find("mug", in_stock="true")] == [4]
    search.feeds.stock("mug", 0)  # any later count is inventory's and wins
    await search.sync()
    assert await search.find("mug", in_stock="true") == []
