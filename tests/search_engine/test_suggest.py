"""Completions for an as-you-type box: the last word completed from the index's words,
the completions that most products carry first."""

from __future__ import annotations

from pathlib import Path

from retail.search.engine import ProductIndex
from tests.search_engine.catalogue import product


def test_suggest_completes_the_last_word(index: ProductIndex) -> None:
    assert index.suggest("oxf") == ["oxford"]
    assert index.suggest("crème b") == ["creme brulee"]
    assert index.suggest("CREME BR") == ["creme brulee"]


def test_suggest_only_completes_words_of_titles_and_brands(index: ProductIndex) -> None:
    assert index.suggest("raspb") == []  # only in a description


def test_suggest_tolerates_typos(index: ProductIndex) -> None:
    assert index.suggest("chcolatte") == ["chocolate"]
    assert index.suggest("chocl") == ["chocolate"]  # a typo in a word being typed


def test_suggest_ranks_completions_by_how_many_products_carry_them(tmp_path: Path) -> None:
    products = [product(f"bar{n}", f"Chocolate Bar {n}") for n in range(3)]
    products += [product("cookie", "Choco Chip Cookie"), product("pie", "Choco Pie")]
    products += [product("tub", "Choc Ice Tub")]
    products += [product("chips", "Potato Chips"), product("chips2", "Corn Chips")]
    with ProductIndex(tmp_path) as index:
        index.upsert(products)
        assert index.suggest("choc") == ["chocolate", "choco", "choc"]
        # Plural and singular are one completion, shown in its shortest form.
        assert index.suggest("chi") == ["chip"]
        # The earlier words narrow the count: only one product says "corn" and "chips".
        assert index.suggest("corn ch") == ["corn chip"]


def test_suggest_respects_the_limit(tmp_path: Path) -> None:
    products = [product(f"p{n}", f"Wool {word}") for n, word in enumerate(
        ["Scarf", "Scarf", "Scarf", "Sock", "Sock", "Sweater"]
    )]  # fmt: skip
    with ProductIndex(tmp_path) as index:
        index.upsert(products)
        assert index.suggest("wool s") == ["wool scarf", "wool sock", "wool sweater"]
        assert index.suggest("wool s", limit=2) == ["wool scarf", "wool sock"]
        assert index.suggest("  ") == []
