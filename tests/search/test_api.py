"""The search API through the real app, over a small fixed catalogue that the fake feeds
served: wire shape, ranking, typo and prefix rules, filters, pages, suggest, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.search.conftest import Search
from tests.support import assert_error, bearer, service_headers

PRODUCT_FIELDS = {
    "id", "title", "description", "price", "tax_percent", "image_url", "category_id", "stock",
    "add_ons", "combos", "created_at", "sku", "brand",
}  # fmt: skip


# --- answers ---------------------------------------------------------------------------


async def test_results_are_products_in_the_wire_shape(shop: Search) -> None:
    tee = (await shop.find("organic cotton tee"))[0]
    assert set(tee) == PRODUCT_FIELDS
    assert tee == shop.feeds.products["tee"]  # what products answers for it, field for field


async def test_the_latest_product_version_is_answered(shop: Search) -> None:
    shop.feeds.update_product("lamp", price=64.5, title="Table Lamp - Brushed Brass")
    await shop.sync()
    [lamp] = await shop.find("lamp")
    assert (lamp["price"], lamp["title"]) == (64.5, "Table Lamp - Brushed Brass")


async def test_search_is_public(shop: Search) -> None:
    anonymous = await shop.client.get("/api/search", params={"q": "lamp"})
    signed_in = await shop.client.get("/api/search", params={"q": "lamp"}, headers=bearer())
    assert anonymous.json() == signed_in.json() != []


# --- ranking -----------------------------------------------------------------------------


async def test_a_title_match_ranks_above_a_description_match(shop: Search) -> None:
    found = await shop.ids("shirt ")
    assert set(found[:2]) == {"tee", "oxford"}
    assert found[2:] == ["jacket"]  # "shirt" only in its description


async def test_the_category_name_counts(shop: Search) -> None:
    # Both titles say knife; the chef's knife is in Kitchen, the other only says kitchen.
    assert (await shop.ids("kitchen knife "))[:2] == ["chef-knife", "pocket-knife"]
    assert set(await shop.ids("fruit ")) == {"berries", "chocolate"}


async def test_an_exact_word_ranks_above_a_typo_match(shop: Search) -> None:
    found = await shop.ids("short ")  # one edit from "shirt"
    assert found[0] == "shorts"
    assert set(found[1:]) == {"tee", "oxford", "jacket"}


async def test_equal_relevance_puts_in_stock_first_then_newer(shop: Search) -> None:
    assert await shop.ids("enamel mug") == ["mug-new", "mug-old", "mug-sold-out"]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("chocolatte", ["chocolate"]),  # 9+ letters: up to two edits
        ("chcolatte", ["chocolate"]),  # two edits
        ("chocolatr bar", ["chocolate"]),
        ("jakcet", ["jacket"]),  # 5+ letters: one edit (a transposition counts as one)
        ("jkcaet", []),  # but not two
        ("lamb", ["lamp"]),  # 4+ letters: one edit
        ("lam ", []),  # under 4 letters: no typo allowed
        ("CRÈME brulee", ["creme"]),  # case and accents do not matter
        ("crème brûlée kit ", ["creme"]),
        ("berry", ["berries"]),
    ],
)
async def test_typo_accent_and_plural_rules(shop: Search, typed: str, expected: list[str]) -> None:
    assert await shop.ids(typed) == expected


async def test_the_last_word_matches_as_a_prefix_while_typing(shop: Search) -> None:
    assert set((await shop.ids("t-sh"))[:2]) == {"tee", "oxford"}  # then "sh" alone
    assert (await shop.ids("chef kni"))[0] == "chef-knife"  # then "kni" alone
    assert await shop.ids("kni ") == []  # a finished word is not a prefix


# --- filters and pages -------------------------------------------------------------------


async def test_category_filter(shop: Search) -> None:
    assert set(await shop.ids("shirt ", category_id="cat-shirts")) == {"tee", "oxford"}
    assert await shop.ids("shirt ", category_id="cat-kitchen") == []
    assert await shop.ids("shirt ", category_id="no-such-category") == []


async def test_price_filters_are_inclusive_and_in_currency_units(shop: Search) -> None:
    assert set(await shop.ids("shirt ", min_price="25")) == {"tee", "oxford", "jacket"}
    assert set(await shop.ids("shirt ", min_price="25.01")) == {"oxford", "jacket"}
    assert set(await shop.ids("shirt ", max_price="45.00")) == {"tee", "oxford"}
    assert await shop.ids("shirt ", min_price="30", max_price="50") == ["oxford"]
    assert await shop.ids("shirt ", min_price="45", max_price="45") == ["oxford"]


async def test_in_stock_filter(shop: Search) -> None:
    assert set(await shop.ids("shirt ", in_stock="true")) == {"tee", "jacket"}
    assert await shop.ids("shirt ", in_stock="false") == ["oxford"]
    assert await shop.ids("mug", in_stock="true", category_id="cat-shirts") == []


async def test_filters_combine(shop: Search) -> None:
    found = await shop.ids("shirt", category_id="cat-shirts", max_price="30", in_stock="true")
    assert found == ["tee"]


async def test_limit_offset_and_page_walk_the_same_ranking(shop: Search) -> None:
    everything = await shop.ids("enamel mug", limit=100)
    assert len(everything) == 3
    assert await shop.ids("enamel mug", limit=2) == everything[:2]
    assert await shop.ids("enamel mug", limit=2, offset=2) == everything[2:]
    assert await shop.ids("enamel mug", limit=1, offset=1) == everything[1:2]
    assert await shop.ids("enamel mug", limit=2, page=2) == everything[2:]
    assert await shop.ids("enamel mug", limit=1, page=2, offset=0) == everything[1:2]
    assert await shop.ids("enamel mug", offset=3) == []


async def test_the_default_limit_is_20(search: Search) -> None:
    for n in range(25):
        search.feeds.product(f"p{n:02d}", f"Wool Sock {n}")
    await search.sync()
    assert len(await search.ids("sock")) == 20
    assert len(await search.ids("sock", page=2)) == 5


# --- suggest -----------------------------------------------------------------------------


async def test_suggest_completes_what_is_typed(shop: Search) -> None:
    response = await shop.client.get("/api/search/suggest", params={"q": "kni"})
    assert response.status_code == 200
    assert response.json() == ["knife"]
    two = await shop.client.get("/api/search/suggest", params={"q": "k", "limit": 2})
    assert two.json() == ["knife", "kit"]  # words of titles, by how many carry them


async def test_suggest_gives_each_completion_once(shop: Search) -> None:
    response = await shop.client.get("/api/search/suggest", params={"q": "enamel m"})
    assert response.json() == ["enamel mug"]


async def test_suggest_finds_nothing_for_unknown_words(shop: Search) -> None:
    response = await shop.client.get("/api/search/suggest", params={"q": "xyzzy"})
    assert (response.status_code, response.json()) == (200, [])


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/search", "/api/search/suggest"])
@pytest.mark.parametrize("q", ["", " ", "\t\n  "])
async def test_blank_q_is_a_422(search: Search, path: str, q: str) -> None:
    assert_error(await search.client.get(path, params={"q": q}), 422, "INVALID_QUERY")


@pytest.mark.parametrize("path", ["/api/search", "/api/search/suggest"])
async def test_missing_or_too_long_q_is_a_422(search: Search, path: str) -> None:
    assert_error(await search.client.get(path), 422, "VALIDATION_ERROR")
    too_long = await search.client.get(path, params={"q": "a" * 501})
    assert_error(too_long, 422, "INVALID_QUERY")
    assert "500" in too_long.json()["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"min_price": "50", "max_price": "10"},
        {"min_price": "-1"},
        {"max_price": "1.234"},
        {"min_price": "abc"},
        {"min_price": "NaN"},
        {"max_price": "Infinity"},
        {"min_price": "1e400"},
        {"limit": "0"},
        {"limit": "101"},
        {"offset": "-1"},
        {"offset": "10001"},
        {"page": "0"},
        {"in_stock": "perhaps"},
        {"category_id": "c" * 65},
    ],
)
async def test_bad_parameters_are_a_422(shop: Search, params: dict[str, str]) -> None:
    response = await shop.client.get("/api/search", params={"q": "shirt", **params})
    assert_error(response, 422)


HOSTILE = [
    '"unbalanced quote',
    "'; DROP TABLE products; --",
    "' OR '1'='1",
    "title:shirt AND (knife OR",
    "shirt^10 knife~2 NOT -mug +lamp",
    "* ? [a-z] {1,3}",
    ".*(a|b)+$ \\d+ (?i)",
    "%_% \\ / \\\\",
    "nul\x00byte",
    "\x00",
    "👕🔥 t-shirt 🧦",
    "\u202etxet\u200b\ufeff",
    "a" * 10_000,
    "shirt " * 2_000,
    "\U0001d530\U0001d525\U0001d526\U0001d52f\U0001d531",  # "shirt" in Fraktur letters
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("q", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("path", ["/api/search", "/api/search/suggest"])
async def test_hostile_input_gets_results_or_a_4xx_never_a_500(
    shop: Search, path: str, q: str
) -> None:
    response = await shop.client.get(path, params={"q": q, "category_id": q[:64]})
    _results_or_client_error(response.status_code, response.json())
    bare = await shop.client.get(path, params={"q": q})
    _results_or_client_error(bare.status_code, bare.json())
    if len(q) > 500:
        assert_error(bare, 422, "INVALID_QUERY")


def _results_or_client_error(status: int, body: Any) -> None:
    if status == 200:
        assert isinstance(body, list)
    else:
        assert 400 <= status < 500
        assert set(body) >= {"status_code", "error_code", "message"}
        assert body["status_code"] == status


@pytest.mark.parametrize("raw", ["q=%FF%FE", "q=%00", "q=shirt&q=knife", "q=%E2%80", "q="])
async def test_malformed_query_strings_never_500(shop: Search, raw: str) -> None:
    response = await shop.client.get(f"/api/search?{raw}")
    _results_or_client_error(response.status_code, response.json())


async def test_hostile_input_changes_nothing(shop: Search) -> None:
    for q in HOSTILE:
        await shop.client.get("/api/search", params={"q": q})
    assert await shop.ids("shirt ", limit=100) == ["oxford", "tee", "jacket"]


# --- probes and the internal API --------------------------------------------------------


async def test_ready_checks_the_index(search: Search) -> None:
    response = await search.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "service": "search", "checks": {"index": "ok"}}
    health = await search.client.get("/health")
    assert health.json() == {"status": "ok", "service": "search"}


@pytest.mark.parametrize(
    "headers",
    [{}, bearer(), bearer("admin-1", "admin"), {"Authorization": "Bearer not-a-token"}],
    ids=["none", "customer", "admin", "garbage"],
)
async def test_reindex_answers_service_tokens_only(shop: Search, headers: dict[str, str]) -> None:
    assert_error(await shop.client.post("/internal/reindex", headers=headers), 401)
    assert len(await shop.ids("shirt ")) == 3  # and nothing was cleared


async def test_reindex_with_a_service_token(shop: Search) -> None:
    response = await shop.client.post("/internal/reindex", headers=service_headers("tests"))
    assert response.status_code == 200, response.text
    assert response.json() == {"events_applied": 16, "products_indexed": 13}
