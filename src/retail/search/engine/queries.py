"""From query words and filters to tantivy queries, one per ranking tier.

Exact matches rank above typo matches whatever BM25 says, as Meilisearch's "typo" rule
does: tier 0 needs every word exactly (the last also as a prefix); tier 1 lets words match
with typos and excludes tier 0. Within a tier, BM25 over the weighted fields orders.

Queries are built from the analyser's terms with term, fuzzy-prefix and range queries only.
No query parser sees the user's text, so its syntax (quotes, AND, -, *, :) is just text.
"""

from __future__ import annotations

from collections.abc import Sequence

import tantivy

from retail.search.engine.analysis import QueryWord
from retail.search.engine.model import SearchQuery
from retail.search.engine.schema import FIELD_WEIGHTS
from retail.search.engine.vocabulary import Vocabulary

# What a prefix completion and a typo are worth beside an exact word. A prefix match scores
# a constant: which completion matched does not make a product more relevant.
PREFIX_WEIGHT = 0.5
TYPO_WEIGHT = 0.5
_SHOULD, _MUST, _MUST_NOT = tantivy.Occur.Should, tantivy.Occur.Must, tantivy.Occur.MustNot
_Clauses = list[tuple[tantivy.Occur, tantivy.Query]]


def tier_queries(
    schema: tantivy.Schema,
    words: Sequence[QueryWord],
    vocabulary: Vocabulary,
    filters: Sequence[tantivy.Query] = (),
    fields: Sequence[str] = tuple(FIELD_WEIGHTS),
) -> list[tantivy.Query]:
    """The query of each tier, best first: one, or two when some word has typo matches."""
    exact_words: _Clauses = []
    tolerant_words: _Clauses = []
    has_typos = False
    for word in words:
        exact = _exact_alternatives(schema, word, vocabulary, fields)
        typos = vocabulary.typo_matches(word.typed, word.term, word.typo_budget)
        has_typos = has_typos or bool(typos)
        typo_alternatives = _term_alternatives(schema, typos, TYPO_WEIGHT, fields)
        exact_words.append((_MUST, tantivy.Query.boolean_query(exact)))
        tolerant_words.append((_MUST, tantivy.Query.boolean_query(exact + typo_alternatives)))
    exact_text = tantivy.Query.boolean_query(exact_words)
    # Filters select without scoring, so they never change the order.
    filtering: _Clauses = [(_MUST, tantivy.Query.const_score_query(f, 0.0)) for f in filters]
    tiers = [tantivy.Query.boolean_query([(_MUST, exact_text), *filtering])]
    if has_typos:
        tolerant_text = tantivy.Query.boolean_query(tolerant_words)
        clauses = [(_MUST, tolerant_text), (_MUST_NOT, exact_text), *filtering]
        tiers.append(tantivy.Query.boolean_query(clauses))
    return tiers


def _exact_alternatives(
    schema: tantivy.Schema, word: QueryWord, vocabulary: Vocabulary, fields: Sequence[str]
) -> _Clauses:
    # The exact term stays beside its prefix so that a whole word outscores a completion
    # ("blue" above "blueberry" for the query "blue").
    alternatives = _term_alternatives(schema, [word.term], 1.0, fields)
    if word.prefix is not None:
        for field in fields:
            prefix = tantivy.Query.fuzzy_term_query(
                schema, field, word.prefix, distance=0, prefix=True
            )
            boost = FIELD_WEIGHTS[field] * PREFIX_WEIGHT
            alternatives.append((_SHOULD, tantivy.Query.boost_query(prefix, boost)))
        completions = vocabulary.plural_completions(word.prefix)
        alternatives += _term_alternatives(schema, completions, PREFIX_WEIGHT, fields)
    return alternatives


def _term_alternatives(
    schema: tantivy.Schema, terms: Sequence[str], weight: float, fields: Sequence[str]
) -> _Clauses:
    clauses: _Clauses = []
    for field in fields:
        boost = FIELD_WEIGHTS[field] * weight
        for term in terms:
            exact = tantivy.Query.term_query(schema, field, term)
            clauses.append((_SHOULD, tantivy.Query.boost_query(exact, boost)))
    return clauses


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
