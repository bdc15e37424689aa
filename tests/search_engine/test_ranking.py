"""Relevance: title above description, category names count, exact above typo, ties."""

from __future__ import annotations

from pathlib import Path

from retail.search.engine import ProductIndex
from tests.search_engine.catalogue import ids, open_index, product


def test_a_title_match_ranks_above_a_description_match(index: ProductIndex) -> None:
    found = ids(index, "shirt ")
    assert set(found) == {"tee", "oxford", "jacket"}
    assert found.index("jacket") == 2  # "shirt" only in its description


def test_a_category_name_match_ranks_above_a_description_match(index: ProductIndex) -> None:
    # Both titles say "knife"; one is in the Kitchen category, the other says kitchen in text.
    # Then the products that match one word (in the Kitchen category, not knives).
    assert ids(index, "kitchen knife ")[:2] == ["chef-knife", "pocket-knife"]


def test_a_category_name_alone_finds_its_products(index: ProductIndex) -> None:
    assert set(ids(index, "fruit ")) == {"berries", "chocolate"}


def test_an_exact_match_ranks_above_every_typo_match(index: ProductIndex) -> None:
    # "short" is one edit from "shirt": shirts match with a typo, below the exact word.
    found = ids(index, "short ")
    assert found[0] == "shorts"
    assert set(found[1:]) == {"tee", "oxford", "jacket"}


def test_a_whole_word_ranks_above_a_prefix_completion(tmp_path: Path) -> None:
    index = open_index(
        tmp_path,
        (
            product("blueberry", "Blueberry Jam", created_at="2024-06-01T00:00:00Z"),
            product("blue", "Blue Jam", created_at="2020-01-01T00:00:00Z"),
        ),
    )
    assert ids(index, "blue") == ["blue", "blueberry"]
    index.close()


def test_equal_relevance_puts_in_stock_first_then_newer(tmp_path: Path) -> None:
    index = open_index(
        tmp_path,
        (
            product("sold-out-newest", "Enamel Mug", stock=0, created_at="2024-09-01T00:00:00Z"),
            product("older", "Enamel Mug", stock=3, created_at="2023-01-01T00:00:00Z"),
            product("newer", "Enamel Mug", stock=1, created_at="2024-03-01T10:00:00+02:00"),
        ),
    )
    assert ids(index, "enamel mug") == ["newer", "older", "sold-out-newest"]
    index.close()
