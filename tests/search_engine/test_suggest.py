"""Completions for an as-you-type box: product titles."""

from __future__ import annotations

from pathlib import Path

from retail.search.engine import ProductIndex
from tests.search_engine.catalogue import product


def test_suggest_completes_titles_from_a_prefix(index: ProductIndex) -> None:
    # Both titles only complete "bl" (an equal score) and tie on stock and age.
    assert set(index.suggest("bl")) == {"Blue Mug", "Organic Cotton Crew-Neck T-Shirt - Navy Blue"}
    assert index.suggest("oxf") == ["Oxford Shirt - White"]
    assert index.suggest("crème b") == ["Crème Brûlée Kit"]
    assert index.suggest("CREME BR") == ["Crème Brûlée Kit"]


def test_suggest_only_looks_at_titles(index: ProductIndex) -> None:
    assert index.suggest("raspb") == []  # only in a description


def test_suggest_tolerates_typos_after_exact_matches(index: ProductIndex) -> None:
    assert index.suggest("chcolatte") == ["Dark Chocolate Bar"]


def test_suggest_respects_the_limit_and_repeats_no_title(tmp_path: Path) -> None:
    products = [product(f"p{n}", f"Wool Scarf {n % 3}") for n in range(30)]
    products += [product(f"q{n}", "Wool Scarf 0") for n in range(5)]
    with ProductIndex(tmp_path) as index:
        index.upsert(products)
        assert sorted(index.suggest("wool sc")) == ["Wool Scarf 0", "Wool Scarf 1", "Wool Scarf 2"]
        assert len(index.suggest("wool", limit=2)) == 2
        assert index.suggest("  ") == []
