"""Any text at all gives results or InvalidQuery, never another exception."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from retail.search.engine import EmptyQuery, InvalidQuery, ProductIndex, SearchQuery
from tests.search_engine.catalogue import open_index

HOSTILE = [
    '"',
    '"unbalanced shirt',
    "'; DROP TABLE products; --",
    "shirt' OR '1'='1",
    "AND",
    "OR OR OR",
    "NOT shirt",
    "-shirt +blue",
    "shirt AND NOT blue",
    "*",
    "shi*",
    "?",
    "title:shirt",
    "shirt~2",
    "shirt^10",
    "(shirt OR (blue",
    "[a TO z]",
    "{}",
    "\\",
    "/.*/",
    "^(a+)+$",
    "%_%",
    "NEAR(shirt blue, 2)",
    "\x00shirt",
    "\ud800",
    "\u202eeulb",
    "\u200b\u200b",
    "\u0301\u0301\u0301",
    "🙂",
    "👕 shirt",
    "👨‍👩‍👧‍👦" * 50,
    "\uff33\uff48\uff49\uff52\uff54",  # fullwidth "Shirt"
    "ﬁre",
    "ß" * 300,
    "Дом",
    "毛衣",
    "x" * 1000,
    "a " * 499,
    "shirt " * 150,
    "a" * 70 + " shirt",
    " ".join(f"w{n}" for n in range(300)),
]
TOO_LONG = ["x" * 10_000, "shirt " * 2000, "🙂" * 10_000]
BLANK = ["", " ", "\n\t  \r", "\u3000"]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductIndex]:
    """One index for the module: these tests only read."""
    opened = open_index(tmp_path_factory.mktemp("hostile"))
    yield opened
    opened.close()


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_searches_safely(index: ProductIndex, text: str) -> None:
    try:
        found = index.search(SearchQuery(text))
    except InvalidQuery:
        return
    assert isinstance(found, list)
    assert all(isinstance(document, dict) for document in found)


@pytest.mark.parametrize("text", HOSTILE + TOO_LONG + BLANK)
def test_hostile_text_suggests_safely(index: ProductIndex, text: str) -> None:
    suggestions = index.suggest(text)
    assert isinstance(suggestions, list)
    assert all(isinstance(title, str) for title in suggestions)


@pytest.mark.parametrize("text", TOO_LONG)
def test_very_long_text_is_invalid(index: ProductIndex, text: str) -> None:
    with pytest.raises(InvalidQuery):
        index.search(SearchQuery(text))


@pytest.mark.parametrize("text", BLANK)
def test_blank_text_is_invalid(index: ProductIndex, text: str) -> None:
    with pytest.raises(EmptyQuery):
        index.search(SearchQuery(text))


def test_query_syntax_is_searched_as_words(index: ProductIndex) -> None:
    # "title" is a word like any other (optional, matching nothing), not a field name.
    assert [d["id"] for d in index.search(SearchQuery("title:oxford"))] == ["oxford"]
    # "-" excludes nothing: the Oxford shirt has both words, first.
    assert next(d["id"] for d in index.search(SearchQuery("oxford -shirt"))) == "oxford"
    assert [d["id"] for d in index.search(SearchQuery('"oxford" (white)'))] == ["oxford"]


def test_hostile_filters_are_safe(index: ProductIndex) -> None:
    assert index.search(SearchQuery("shirt", category_id="' OR 1=1 --")) == []
    assert index.search(SearchQuery("shirt", category_id="*")) == []
