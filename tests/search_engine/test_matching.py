"""Which words match: typo budgets, the prefix of the last word, accents, case, plurals."""

from __future__ import annotations

import pytest

from retail.search.engine import ProductIndex
from tests.search_engine.catalogue import ids


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("mgu", [], id="3 letters, 1 typo: no match"),
        pytest.param("bleu", ["mug", "tee"], id="4 letters, 1 typo: match"),
        pytest.param("tabel", ["lamp"], id="5 letters, 1 typo (transposition): match"),
        pytest.param("tible", ["lamp"], id="5 letters, 1 typo (substitution): match"),
        pytest.param("tbael", [], id="5 letters, 2 typos: no match"),
        pytest.param("evreyday", ["everyday-bag", "tee"], id="8 letters, 1 typo: match"),
        pytest.param("evreydya", ["everyday-bag", "tee"], id="8 letters, 2 typos: match"),
        pytest.param("evrydy", [], id="typed 6 letters, 2 edits away: no match"),
        pytest.param("chcolatte", ["chocolate"], id="9 letters, 2 typos: match"),
        pytest.param("chocolaet", ["chocolate"], id="9 letters, 1 typo: match"),
        pytest.param("chcolattee", [], id="10 letters, 3 typos: no match"),
    ],
)
def test_typo_budget_follows_word_length(
    index: ProductIndex, query: str, expected: list[str]
) -> None:
    assert sorted(ids(index, query)) == sorted(expected)


def test_a_typo_in_a_plural_still_matches(index: ProductIndex) -> None:
    # "Berries" is indexed as "berry"; "berires" is one edit from what is written.
    assert ids(index, "berires") == ["berries"]


def test_the_last_word_matches_as_a_prefix(index: ProductIndex) -> None:
    # The tee by its title, the Oxford shirt by its category, "Men's T-Shirts"; then what
    # matches "sh" alone (words are optional).
    assert ids(index, "t-sh")[:2] == ["tee", "oxford"]
    assert set(ids(index, "blu")) == {"mug", "tee", "berries"}  # blue, blue, blueberry
    assert ids(index, "mug blu")[0] == "mug"  # both words; then "blu" alone


def test_only_the_last_word_is_a_prefix(index: ProductIndex) -> None:
    # "blu" is no word and, before the last word, no prefix: the mug is found by "mug" only.
    assert ids(index, "blu mug") == ["mug"]
    assert ids(index, "blu lamp") == ["lamp"]


def test_a_finished_last_word_is_not_a_prefix(index: ProductIndex) -> None:
    assert ids(index, "blu ") == []


def test_a_prefix_reaching_into_a_plural_ending_still_completes(index: ProductIndex) -> None:
    # "Boxes" is indexed as "box"; "boxe" is a prefix of what is written, not of "box".
    assert ids(index, "boxe") == ["boxes"]


def test_a_joined_hyphenated_word_matches(index: ProductIndex) -> None:
    # Title, then category name ("T-Shirts"), then "shirt" one edit away.
    assert ids(index, "tshirt ") == ["tee", "oxford", "jacket"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("CREME BRULEE", ["creme"]),
        ("crème brûlée", ["creme"]),
        ("Crème", ["creme"]),
        ("cafe stool", ["cafe-stool"]),
        ("CAFÉ", ["cafe-stool"]),
        ("café", ["cafe-stool"]),
    ],
)
def test_case_and_accents_do_not_matter(
    index: ProductIndex, query: str, expected: list[str]
) -> None:
    assert ids(index, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("shirts ", {"tee", "oxford", "jacket"}),
        ("box ", {"boxes"}),
        ("berry ", {"berries"}),
        ("blueberries ", {"berries"}),
        ("knife ", {"chef-knife", "pocket-knife"}),
    ],
)
def test_plural_and_singular_forms_meet_exactly(
    index: ProductIndex, query: str, expected: set[str]
) -> None:
    # Exact matches come first; typo matches ("shirts" ~ "shorts") may follow them.
    found = ids(index, query)
    assert set(found[: len(expected)]) == expected


def test_an_irregular_plural_meets_its_singular(index: ProductIndex) -> None:
    # The stemmer leaves "knives" as "knive"; the list of irregular forms maps it to "knife".
    assert set(ids(index, "knives ")) == {"chef-knife", "pocket-knife"}
