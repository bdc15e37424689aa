"""Re-ranking of the best candidates by the rules, in order (after Meilisearch's ranking
rules, fitted to product titles):

1. words: more query words matched (typos, completions, splits and joins included);
2. typos: fewer edits in total; between equal edits, the commoner intended word;
3. proximity: query words side by side in the title, in the query's order;
4. field: words found in the title, then the brand, the category name, the description;
5. exactness: the whole title is the query; then whole words over completions;
6. a shorter title (a title that repeats a word does not rank higher for it);
7. then the candidate order: in stock first, then newer (`schema.tie_weight`).

A term counts once per field however often a title repeats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retail.search.engine.queries import Match, Plan
from retail.search.engine.schema import FIELDS

# The cost of a pair of query words not side by side in the title (Meilisearch's cap).
FAR = 8
Key = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A product's terms, as indexed: the title's in order, the other fields' as sets."""

    title: tuple[str, ...]
    others: tuple[frozenset[str], ...]  # brand, category, description

    @classmethod
    def of(cls, stored: dict[str, list[str]]) -> Candidate:
        def terms(name: str) -> list[str]:
            values = stored.get(name) or [""]
            return values[0].split()

        others = tuple(frozenset(terms(name)) for name in FIELDS[1:])
        return cls(tuple(terms("title")), others)


@dataclass(slots=True)
class _Best:
    cost: tuple[int, int, int]
    field: int
    position: int  # in the title; -1 elsewhere


def rank_key(plan: Plan, candidate: Candidate) -> Key:
    best: dict[int, _Best] = {}
    for position, term in enumerate(candidate.title):
        for match in plan.matches.get(term, ()):
            _better(best, match, 0, position)
    for position, (first, second) in plan.splits.items():
        at = _side_by_side(candidate.title, first, second)
        if at is not None:
            _better(best, Match(position, position), 0, at)
    for rank, terms in enumerate(candidate.others, start=1):
        for term in terms & plan.matches.keys():
            for match in plan.matches[term]:
                _better(best, match, rank, -1)
        for position, halves in plan.splits.items():
            if position not in best and set(halves) <= terms:
                _better(best, Match(position, position), rank, -1)
    edits = sum(b.cost[0] for b in best.values())
    rarity = sum(b.cost[1] for b in best.values())
    completions = sum(b.cost[2] for b in best.values())
    fields = sum(b.field for b in best.values())
    whole = int(_is_whole_title(plan, candidate, best))
    proximity = _proximity(len(plan.words), best)
    return (-len(best), edits, rarity, proximity, fields, -whole, completions, len(candidate.title))


def _better(best: dict[int, _Best], match: Match, field: int, position: int) -> None:
    found = _Best(match.cost(), field, position)
    for word in range(match.first, match.last + 1):
        current = best.get(word)
        if current is None or (found.cost, found.field) < (current.cost, current.field):
            best[word] = found


def _side_by_side(title: Sequence[str], first: str, second: str) -> int | None:
    for position in range(len(title) - 1):
        if title[position] == first and title[position + 1] == second:
            return position
    return None


def _proximity(words: int, best: dict[int, _Best]) -> int:
    total = 0
    for word in range(words - 1):
        left, right = best.get(word), best.get(word + 1)
        if left is None or right is None or left.position < 0 or right.position < 0:
            total += FAR
            continue
        distance = right.position - left.position
        total += min(FAR, distance if distance > 0 else 1 - distance)
    return total


def _is_whole_title(plan: Plan, candidate: Candidate, best: dict[int, _Best]) -> bool:
    """Every query word matched in the title without typos, and every title term is one."""
    if len(best) < len(plan.words) or not candidate.title:
        return False
    if any(b.field or b.cost[0] for b in best.values()):
        return False
    exact = {term for term, matches in plan.matches.items() if any(not m.edits for m in matches)}
    return all(term in exact for term in candidate.title)


def rerank(plan: Plan, candidates: Sequence[Candidate]) -> list[int]:
    """The candidates' indexes, best first; equal keys keep the candidates' order."""
    keys = [rank_key(plan, candidate) for candidate in candidates]
    return sorted(range(len(candidates)), key=keys.__getitem__)
