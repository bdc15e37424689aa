"""From query words and filters to a `Plan`: the tantivy query that gathers candidates, and
what each term found in a candidate means for the ranking (`ranking.py`).

Every word is optional (Meilisearch's `matchingStrategy`, done as ranking rather than
dropping words): a product is a candidate when any query word matches it, and products
that match more words rank first. A word matches through:

- its exact term, in any field;
- a typo: a known word 1 edit away (4+ letters) or 2 (8+ letters);
- for the word being typed (the last, unless the query ends in a separator): the words it
  starts, and the words whose start is a typo of it ("chocl" -> "chocolate");
- a split: "cocacola" as the known words "coca cola", side by side (a phrase query);
- a join: "coca cola" as the known word "cocacola" (one term meets two query words).

The tantivy query scores each word by its best match (a disjunction max of constant
scores): many words, fewer typos, title before brand, category and description; adjacent
query words in order and a whole-title match add a little. That order only has to bring
the right products into the re-ranking window; `ranking.py` orders the window exactly.

Queries are built from the analyser's terms with term, phrase and range queries only. No
query parser sees the user's text, so its syntax (quotes, AND, -, *, :) is just text.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import tantivy

from retail.search.engine.analysis import QueryWord
from retail.search.engine.model import SearchQuery
from retail.search.engine.schema import FIELDS, TITLE_KEY_FIELD
from retail.search.engine.vocabulary import Vocabulary

_SHOULD, _MUST = tantivy.Occur.Should, tantivy.Occur.Must
_Clauses = list[tuple[tantivy.Occur, tantivy.Query]]
# Candidate scores: a matched word is worth WORD, less its cost; the bonuses are smaller
# than any difference in words, and a typo costs more than a whole field step.
WORD, TYPO, COMPLETION, FIELD_STEP, ADJACENT, WHOLE_TITLE = 100.0, 20.0, 2.0, 3.0, 6.0, 4.0
FEW_COMPLETIONS = 3


@dataclass(frozen=True, slots=True)
class Match:
    """What finding a term means: it meets query words `first`..`last` (two for a join),
    with `edits` typos, as a completion of the word being typed or not, and `rank` among
    the typo candidates of the word (0: the commonest)."""

    first: int
    last: int
    edits: int = 0
    completion: bool = False
    rank: int = 0

    def cost(self) -> tuple[int, int, int]:
        return (self.edits, self.rank, int(self.completion))


@dataclass(slots=True)
class Plan:
    words: Sequence[QueryWord]
    matches: dict[str, list[Match]] = field(default_factory=dict)  # term -> what it meets
    splits: dict[int, tuple[str, str]] = field(default_factory=dict)  # word -> its halves
    query: tantivy.Query | None = None

    def add(self, term: str, match: Match) -> None:
        self.matches.setdefault(term, []).append(match)


def plan_query(
    schema: tantivy.Schema,
    words: Sequence[QueryWord],
    vocabulary: Vocabulary,
    filters: Sequence[tantivy.Query] = (),
    fields: Sequence[str] = FIELDS,
) -> Plan:
    plan = Plan(words)
    for position, word in enumerate(words):
        _word_matches(plan, position, word, vocabulary)
    for position in range(len(words) - 1):
        joined = vocabulary.term_of(words[position].typed + words[position + 1].typed)
        if joined is not None:
            plan.add(joined, Match(position, position + 1))
    text: _Clauses = [(_SHOULD, _word_query(schema, plan, i, fields)) for i in range(len(words))]
    text += _join_queries(schema, plan, fields)
    clauses: _Clauses = [(_MUST, tantivy.Query.boolean_query(text))]
    clauses += _bonus_queries(schema, words)
    # Filters select without scoring, so they never change the order.
    clauses += [(_MUST, tantivy.Query.const_score_query(f, 0.0)) for f in filters]
    plan.query = tantivy.Query.boolean_query(clauses)
    return plan


def _word_matches(plan: Plan, position: int, word: QueryWord, vocabulary: Vocabulary) -> None:
    plan.add(word.term, Match(position, position))
    typos = vocabulary.typo_edits(word.typed, word.term, word.typo_budget)
    for rank, (term, edits) in enumerate(typos):
        plan.add(term, Match(position, position, edits, rank=rank))
    if word.prefix is not None:
        completions = vocabulary.completions(word.prefix)
        for _, term in completions:
            plan.add(term, Match(position, position, completion=True))
        # A word being typed that starts few words and is no word with a typo may be the
        # start of a word with a typo ("chocl" for "chocolate").
        if len(completions) < FEW_COMPLETIONS and not typos:
            prefix_typos = vocabulary.prefix_typos(word.prefix, word.typo_budget)
            for rank, (term, edits) in enumerate(prefix_typos):
                plan.add(term, Match(position, position, edits, completion=True, rank=rank))
    # A split only where the word as typed is no commoner than either half: "cocacola"
    # splits, "peanut" (commoner than "pea" or "nut") does not.
    halves = vocabulary.split(word.typed)
    if halves is not None and vocabulary.documents(word.term) <= min(
        map(vocabulary.documents, halves)
    ):
        plan.splits[position] = halves


def _word_query(
    schema: tantivy.Schema, plan: Plan, position: int, fields: Sequence[str]
) -> tantivy.Query:
    alternatives: list[tantivy.Query] = []
    for term, matches in plan.matches.items():
        for match in matches:
            if match.first == position == match.last:
                alternatives += _scored(schema, term, _score(match), fields)
    if position in plan.splits:
        halves: list[str | tuple[int, str]] = list(plan.splits[position])
        for rank, name in enumerate(fields):
            phrase = tantivy.Query.phrase_query(schema, name, halves)
            alternatives.append(tantivy.Query.const_score_query(phrase, WORD - rank * FIELD_STEP))
    return tantivy.Query.disjunction_max_query(alternatives)


def _join_queries(schema: tantivy.Schema, plan: Plan, fields: Sequence[str]) -> _Clauses:
    return [
        (_SHOULD, query)
        for term, matches in plan.matches.items()
        for match in matches
        if match.last > match.first
        for query in _scored(schema, term, 2 * WORD, fields)
    ]


def _scored(
    schema: tantivy.Schema, term: str, score: float, fields: Sequence[str]
) -> list[tantivy.Query]:
    return [
        tantivy.Query.const_score_query(
            tantivy.Query.term_query(schema, name, term), score - rank * FIELD_STEP
        )
        for rank, name in enumerate(fields)
    ]


def _score(match: Match) -> float:
    return WORD - TYPO * match.edits - COMPLETION * match.completion - 0.1 * min(match.rank, 9)


def _bonus_queries(schema: tantivy.Schema, words: Sequence[QueryWord]) -> _Clauses:
    """Adjacent query words side by side in the title, in order; the whole title."""
    terms = [word.term for word in words]
    bonuses: _Clauses = []
    for first, second in itertools.pairwise(terms):
        phrase = tantivy.Query.phrase_query(schema, "title", [first, second])
        bonuses.append((_SHOULD, tantivy.Query.const_score_query(phrase, ADJACENT)))
    whole = tantivy.Query.term_query(schema, TITLE_KEY_FIELD, " ".join(terms))
    bonuses.append((_SHOULD, tantivy.Query.const_score_query(whole, WHOLE_TITLE)))
    return bonuses


def filter_queries(schema: tantivy.Schema, query: SearchQuery) -> list[tantivy.Query]:
    filters: list[tantivy.Query] = []
    if query.category_id is not None:
        filters.append(tantivy.Query.term_query(schema, "category_id", query.category_id))
    if query.min_price_cents is not None or query.max_price_cents is not None:
        filters.append(
            _integer_range(schema, "price_cents", query.min_price_cents, query.max_price_cents)
        )
    if query.in_stock is True:
        filters.append(_integer_range(schema, "stock", 1, None))
    elif query.in_stock is False:
        filters.append(_integer_range(schema, "stock", None, 0))
    return filters


def _integer_range(
    schema: tantivy.Schema, field: str, lowest: int | None, highest: int | None
) -> tantivy.Query:
    return tantivy.Query.range_query(
        schema, field, tantivy.FieldType.Integer, lower_bound=lowest, upper_bound=highest
    )
