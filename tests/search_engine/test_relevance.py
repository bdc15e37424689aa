"""The failure modes of issue 15, each on a small hand-made catalogue: typos in short words,
optional words, word order and proximity, repeated words, joined and split words, numbers
with units, irregular plurals, and a typo of the intended word above a rare exact word."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from retail.search.engine import IndexedProduct, ProductIndex
from tests.search_engine.catalogue import ids, open_index, product


def _shop(tmp_path: Path, *products: IndexedProduct) -> Iterator[ProductIndex]:
    index = open_index(tmp_path, tuple(products))
    yield index
    index.close()


@pytest.fixture
def grocery(tmp_path: Path) -> Iterator[ProductIndex]:
    yield from _shop(
        tmp_path,
        product("milk", "Toned Milk"),
        product("beef", "Beef Mince"),
        product("spaghetti", "Whole Wheat Spaghetti"),
        product("beans", "Baked Beans in Tomato Sauce"),
        product("bread", "Brown Bread"),
        product("bay", "Bay Leaves"),
        product("annies", "Annie's Mac and Cheese"),
        product("knives", "Steak Knives - Set of 4"),
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("mlik", "milk"),  # a typo in a 4-letter word
        ("beff", "beef"),
        ("Whle Spaghetti", "spaghetti"),  # a typo leaving a 4-letter word
        ("Baed Beans", "beans"),
    ],
)
def test_a_typo_in_a_four_letter_word_is_tolerated(
    grocery: ProductIndex, query: str, expected: str
) -> None:
    assert ids(grocery, query)[0] == expected


def test_words_are_optional_but_more_matched_words_rank_first(grocery: ProductIndex) -> None:
    assert ids(grocery, "baked beans unicorn") == ["beans"]
    assert ids(grocery, "brown milk bread")[0] == "bread"  # two words above one
    assert ids(grocery, "xyzzy qwerty") == []  # nothing matches any word: no answer


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("bay leaf", "bay"),  # an irregular plural, through the documented list
        ("bay leaves", "bay"),
        ("steak knife", "knives"),
        ("annies", "annies"),  # "Annie's": the stemmer, not a naive "annies" -> "anny"
        ("annie mac", "annies"),
    ],
)
def test_plurals_and_inflections_meet(grocery: ProductIndex, query: str, expected: str) -> None:
    assert ids(grocery, query)[0] == expected


def test_word_order_and_proximity_rank(tmp_path: Path) -> None:
    for index in _shop(
        tmp_path,
        product("chocolate-milk", "Chocolate Milk", created_at="2025-01-01T00:00:00Z"),
        product("milk-chocolate", "Milk Chocolate Bar", created_at="2020-01-01T00:00:00Z"),
        product("apart", "Milk Powder with Chocolate Flavour"),
    ):
        assert ids(index, "milk chocolate") == ["milk-chocolate", "chocolate-milk", "apart"]
        assert ids(index, "chocolate milk")[0] == "chocolate-milk"


def test_repeated_words_do_not_inflate_and_the_whole_title_wins(tmp_path: Path) -> None:
    for index in _shop(
        tmp_path,
        product("spread", "Cream Cheese Cream Cheese Spread", created_at="2025-01-01T00:00:00Z"),
        product("plain", "Cream Cheese", created_at="2020-01-01T00:00:00Z"),
    ):
        assert ids(index, "cream cheese") == ["plain", "spread"]
        assert ids(index, "cream cheese cream") == ["plain", "spread"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cocacola", {"coke", "coke-hyphen", "coke-joined"}),  # also finds the split title
        ("coca cola", {"coke", "coke-hyphen", "coke-joined"}),  # a split query, the joined
        ("peanutbutter", {"peanut"}),
        ("icecream", {"icecream"}),
    ],
)
def test_compounds_split_and_join(tmp_path: Path, query: str, expected: set[str]) -> None:
    for index in _shop(
        tmp_path,
        product("coke", "Coca Cola Soft Drink"),
        product("coke-hyphen", "Coca-Cola Zero"),
        product("coke-joined", "CocaCola Classic"),
        product("peanut", "Peanut Butter Crunchy"),
        product("icecream", "Vanilla Ice Cream"),
        product("cola", "Cola Flavoured Candy"),
        product("cream", "Fresh Cream"),
    ):
        found = ids(index, query)
        assert set(found[: len(expected)]) == expected


def test_numbers_with_units_meet_written_apart_or_together(tmp_path: Path) -> None:
    for index in _shop(
        tmp_path,
        *(product(f"apart-{n}", f"Peanut Butter {n} 16 Oz") for n in range(3)),
        product("together", "Almond Butter 16oz Jar"),
        product("other", "Cashew Butter 8 Oz"),
    ):
        expected = {"apart-0", "apart-1", "apart-2", "together"}
        assert set(ids(index, "16oz")[:4]) == expected
        assert set(ids(index, "16 oz")[:4]) == expected
        assert ids(index, "almond butter 16 oz")[0] == "together"


def test_a_typo_of_the_intended_word_beats_a_rare_exact_word(tmp_path: Path) -> None:
    for index in _shop(
        tmp_path,
        product("chese", "Chese Grater"),  # the literal word, rare
        product("kimchee", "Kim Chee"),  # one edit from "chese" too, but rarer than cheese
        *(product(f"cheese-{n}", f"Cheddar Cheese Block {n}") for n in range(3)),
        product("slices", "Cheese Slices"),
    ):
        # The rest of the query agrees with the typo match: it ranks first.
        assert ids(index, "chese slices")[0] == "slices"
        # Alone, the exact word comes first; then the commonest word one edit away.
        found = ids(index, "chese")
        assert found[0] == "chese"
        assert found.index("kimchee") > max(found.index(f"cheese-{n}") for n in range(3))


def test_the_title_ranks_above_the_brand(tmp_path: Path) -> None:
    for index in _shop(
        tmp_path,
        replace(product("by-brand", "Butter Cookies"), brand="Amul"),
        product("by-title", "Amul Butter"),
    ):
        assert ids(index, "amul butter") == ["by-title", "by-brand"]
        assert ids(index, "amul") == ["by-title", "by-brand"]
