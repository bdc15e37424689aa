"""The index lives in its directory: it survives a restart and belongs to one opener."""

from __future__ import annotations

from pathlib import Path

import pytest
import tantivy

from retail.search.engine import (
    IndexClosed,
    IndexIncompatible,
    IndexInUse,
    ProductIndex,
    SearchQuery,
)
from tests.search_engine.catalogue import PRODUCTS, ids, open_index, product


def test_everything_survives_close_and_reopen(tmp_path: Path) -> None:
    index = open_index(tmp_path, PRODUCTS)
    index.set_stock("oxford", 3)
    index.set_stock("not-yet", 9, meta={"inventory": "12"})
    index.close()

    with ProductIndex(tmp_path) as reopened:
        assert reopened.count() == len(PRODUCTS)
        assert reopened.get_meta("inventory") == "12"
        assert ids(reopened, "chcolatte") == ["chocolate"]  # the typo vocabulary is back
        assert ids(reopened, "oxford", in_stock=True) == ["oxford"]
        reopened.upsert([product("not-yet", "Knitted Kitchen Towel", category_id="cat-shirts")])
        [towel] = reopened.search(SearchQuery("knitted towel"))
        assert towel["stock"] == 9  # the pending stock was kept
        assert ids(reopened, "men towel")[0] == "not-yet"  # and the category names


def test_a_second_index_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with ProductIndex(tmp_path), pytest.raises(IndexInUse):
        ProductIndex(tmp_path)
    with ProductIndex(tmp_path) as again:  # free once closed
        assert again.count() == 0


def test_separate_directories_are_independent(tmp_path: Path) -> None:
    with ProductIndex(tmp_path / "a") as first, ProductIndex(tmp_path / "b") as second:
        first.upsert([product("one", "Wool Scarf")])
        assert second.count() == 0
        assert ids(first, "scarf") == ["one"]


def test_a_closed_index_refuses_work(tmp_path: Path) -> None:
    index = ProductIndex(tmp_path)
    index.close()
    index.close()  # idempotent
    with pytest.raises(IndexClosed):
        index.search(SearchQuery("scarf"))
    with pytest.raises(IndexClosed):
        index.upsert([product("one", "Wool Scarf")])


def test_a_directory_of_another_schema_is_refused(tmp_path: Path) -> None:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("something_else")
    tantivy.Index(builder.build(), path=str(tmp_path))
    with pytest.raises(IndexIncompatible):
        ProductIndex(tmp_path)
    with ProductIndex(tmp_path / "fresh"):  # and the failed open left no lock behind
        pass
