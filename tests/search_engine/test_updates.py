"""Changes after the first load: stock, category names, deletes, clear, and meta."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from retail.search.engine import IndexedProduct, InvalidProduct, ProductIndex, SearchQuery
from tests.search_engine.catalogue import PRODUCTS, ids, product, with_stock

OXFORD = next(p for p in PRODUCTS if p.id == "oxford")


def stock_of(index: ProductIndex, text: str, product_id: str) -> int:
    documents = index.search(SearchQuery(text))
    return int(next(d["stock"] for d in documents if d["id"] == product_id))


def test_set_stock_changes_the_document_and_the_in_stock_filter(index: ProductIndex) -> None:
    assert "oxford" not in ids(index, "oxford", in_stock=True)
    index.set_stock("oxford", 3)
    assert stock_of(index, "oxford", "oxford") == 3
    assert ids(index, "oxford", in_stock=True) == ["oxford"]
    index.set_stock("oxford", 0)
    assert ids(index, "oxford", in_stock=True) == []


def test_stock_set_before_the_product_arrives_is_applied_on_arrival(
    index: ProductIndex,
) -> None:
    index.set_stock("late", 7)
    assert ids(index, "latecomer") == []
    index.upsert([product("late", "Latecomer Lamp", stock=0)])
    assert stock_of(index, "latecomer", "late") == 7
    assert ids(index, "latecomer", in_stock=True) == ["late"]


def test_a_later_upsert_does_not_override_the_stock_from_inventory(
    index: ProductIndex,
) -> None:
    index.set_stock("oxford", 3)
    index.upsert([with_stock(replace(OXFORD, title="Oxford Shirt - Blue"), 0)])
    assert stock_of(index, "oxford blue", "oxford") == 3


def test_an_upsert_replaces_the_product_with_the_same_id(index: ProductIndex) -> None:
    index.upsert([replace(OXFORD, title="Flannel Shirt - Red")])
    assert ids(index, "oxford") == []
    assert ids(index, "flannel") == ["oxford"]
    assert index.count() == len(PRODUCTS)


def test_a_renamed_category_reranks_its_products(index: ProductIndex) -> None:
    assert set(ids(index, "fruit ")) == {"berries", "chocolate"}
    index.set_category_name("cat-fruit", "Frozen Treats")
    assert ids(index, "fruit ") == []
    assert set(ids(index, "treats ")) == {"berries", "chocolate"}


def test_a_deleted_category_no_longer_matches(index: ProductIndex) -> None:
    index.set_category_name("cat-fruit", None)
    assert ids(index, "fruit ") == []
    assert ids(index, "frozen berries") == ["berries"]  # the product itself stays


def test_a_category_named_after_its_products_arrive(tmp_path: Path) -> None:
    with ProductIndex(tmp_path) as index:
        index.upsert([product("vase", "Tall Vase", category_id="cat-new")])
        assert ids(index, "ceramics") == []
        index.set_category_name("cat-new", "Ceramics")
        assert ids(index, "ceramics") == ["vase"]


def test_delete_removes_the_product_and_tolerates_unknown_ids(index: ProductIndex) -> None:
    index.delete("oxford")
    index.delete("oxford")
    index.delete("never-existed")
    assert "oxford" not in ids(index, "shirt ")
    assert index.count() == len(PRODUCTS) - 1


def test_clear_forgets_everything_and_the_index_can_be_rebuilt(index: ProductIndex) -> None:
    index.set_meta("cursor", "9")
    index.set_stock("pending", 4)
    index.clear()
    assert index.count() == 0
    assert ids(index, "shirt") == []
    assert index.get_meta("cursor") is None
    index.upsert([product("pending", "Shirt Box", category_id="cat-shirts", stock=1)])
    assert stock_of(index, "shirt box", "pending") == 1  # the pending stock went too
    assert ids(index, "men ") == []  # and so did the category names


def test_meta_is_written_with_the_change(index: ProductIndex) -> None:
    index.upsert([product("new", "Wool Scarf")], meta={"products": "41"})
    assert index.get_meta("products") == "41"
    index.set_stock("new", 2, meta={"inventory": "7"})
    index.delete("new", meta={"products": "42"})
    index.set_category_name("cat-home", "House", meta={"categories": "3"})
    assert [index.get_meta(k) for k in ("products", "inventory", "categories")] == ["42", "7", "3"]


def test_a_failed_upsert_writes_neither_products_nor_meta(index: ProductIndex) -> None:
    index.set_meta("products", "41")
    good = product("good", "Wool Scarf")
    bad = product("bad", "Wool Hat", stock=-(2**63))
    with pytest.raises(InvalidProduct):
        index.upsert([good, bad], meta={"products": "42"})
    assert index.get_meta("products") == "41"
    assert ids(index, "wool") == []


def _apply_then_fail(index: ProductIndex) -> None:
    with index.batch({"cursor": "2"}) as batch:
        batch.upsert([product("scarf", "Wool Scarf")])
        batch.set_stock("tee", 0)
        raise RuntimeError("feed went away")


def test_a_batch_that_raises_applies_nothing(index: ProductIndex) -> None:
    with pytest.raises(RuntimeError, match="feed went away"):
        _apply_then_fail(index)
    assert index.get_meta("cursor") is None
    assert ids(index, "wool") == []
    assert stock_of(index, "organic tee", "tee") == 10


def test_a_batch_sees_its_own_changes(index: ProductIndex) -> None:
    with index.batch({"cursor": "3"}) as batch:
        batch.upsert([product("scarf", "Wool Scarf", stock=0)])
        batch.set_stock("scarf", 6)  # the product only exists in this batch so far
        batch.delete("mug")
    assert stock_of(index, "wool scarf", "scarf") == 6
    assert ids(index, "mug") == []
    assert index.get_meta("cursor") == "3"


def test_writes_inside_a_batch_are_refused(index: ProductIndex) -> None:
    with index.batch() as batch:
        batch.set_meta("cursor", "1")
        with pytest.raises(RuntimeError):
            index.set_meta("other", "2")
        with pytest.raises(RuntimeError):
            index.clear()
    assert index.get_meta("cursor") == "1"
    assert index.get_meta("other") is None
    assert index.count() == len(PRODUCTS)


@pytest.mark.parametrize(
    "bad",
    [
        product("", "Nameless Scarf"),
        product("x" * 201, "Long Scarf"),
        product("float-price", "Wool Scarf", price_cents=9.5),  # type: ignore[arg-type]
        product("bool-stock", "Wool Scarf", stock=True),
        product("huge", "Wool Scarf", price_cents=2**63),
        replace(product("no-title", "Wool Scarf"), title=None),  # type: ignore[arg-type]
        replace(product("empty-category", "Wool Scarf"), category_id=""),
        replace(product("not-json", "Wool Scarf"), document={"tags": {"wool"}}),
    ],
)
def test_an_invalid_product_is_refused_with_its_whole_batch(
    index: ProductIndex, bad: IndexedProduct
) -> None:
    with pytest.raises(InvalidProduct):
        index.upsert([product("fine", "Cashmere Beanie"), bad])
    assert ids(index, "cashmere") == []
    assert index.count() == len(PRODUCTS)


def test_a_product_without_a_usable_date_is_still_indexed(index: ProductIndex) -> None:
    index.upsert([product("undated", "Wool Scarf", created_at="")])
    index.upsert([product("dated", "Wool Scarf", created_at="2020-01-01T00:00:00Z")])
    assert ids(index, "wool scarf") == ["dated", "undated"]  # an unknown age sorts oldest
