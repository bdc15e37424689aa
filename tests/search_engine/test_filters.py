"""Filters, limit and offset, alone and across the exact and typo tiers."""

from __future__ import annotations

import pytest

from retail.search.engine import InvalidQuery, ProductIndex, SearchQuery
from tests.search_engine.catalogue import ids


def test_category_filter(index: ProductIndex) -> None:
    assert ids(index, "knife", category_id="cat-kitchen") == ["chef-knife"]
    assert ids(index, "knife", category_id="cat-unknown") == []


def test_price_bounds_are_inclusive(index: ProductIndex) -> None:
    # Knives cost 5900 (chef) and 2900 (pocket).
    assert ids(index, "knife", min_price_cents=5900) == ["chef-knife"]
    assert ids(index, "knife", max_price_cents=2900) == ["pocket-knife"]
    assert ids(index, "knife", min_price_cents=3000, max_price_cents=5000) == []
    both = ids(index, "knife", min_price_cents=2900, max_price_cents=5900)
    assert set(both) == {"chef-knife", "pocket-knife"}


def test_in_stock_filter(index: ProductIndex) -> None:
    # The Oxford shirt has no stock; the tee has ten.
    assert "oxford" not in ids(index, "shirt ", in_stock=True)
    assert "tee" in ids(index, "shirt ", in_stock=True)
    assert ids(index, "shirt ", in_stock=False) == ["oxford"]


def test_filters_apply_to_typo_matches_too(index: ProductIndex) -> None:
    assert set(ids(index, "short ", category_id="cat-shirts")) == {"tee", "oxford"}


def test_limit_and_offset_page_through_the_ranking(index: ProductIndex) -> None:
    everything = ids(index, "short ")  # one exact match, then three typo matches
    assert len(everything) == 4
    pages = [ids(index, "short ", limit=1, offset=n) for n in range(5)]
    assert pages == [[everything[0]], [everything[1]], [everything[2]], [everything[3]], []]
    assert ids(index, "short ", limit=2, offset=1) == everything[1:3]
    assert ids(index, "short ", limit=3, offset=2) == everything[2:]


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery("shirt", limit=0),
        SearchQuery("shirt", limit=101),
        SearchQuery("shirt", offset=-1),
        SearchQuery("shirt", offset=10_001),
        SearchQuery("shirt", min_price_cents=-1),
        SearchQuery("shirt", min_price_cents=2**63),
        SearchQuery("shirt", min_price_cents=500, max_price_cents=100),
        SearchQuery("shirt", category_id="x" * 201),
    ],
)
def test_out_of_range_paging_and_filters_are_invalid(
    index: ProductIndex, query: SearchQuery
) -> None:
    with pytest.raises(InvalidQuery):
        index.search(query)
