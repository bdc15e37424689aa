"""The words seen in indexed text, held in memory, for typo and plural-prefix look-ups.

The index stores singular terms ("peach"), but people misspell the words they see
("peahces" for "peaches"). So the vocabulary keeps every folded surface word with the term
it was indexed as, matches typos against surface words, and hands back their terms.

Surface words are bucketed by length: a word within k edits of another is within k
characters of its length, so a look-up scores only a few buckets (rapidfuzz, in C++).

Readers never lock. `add` only inserts dict keys (atomic under the GIL; readers never iterate
the dicts) and replaces, never mutates, the lists that readers iterate. The index
serialises writers.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

from rapidfuzz import process
from rapidfuzz.distance import OSA

# A typo word expands to at most this many terms: enough for real near-misses, and it bounds
# the query a hostile input can produce.
MAX_TYPO_MATCHES = 12
MAX_PLURAL_COMPLETIONS = 8
# A plural ending only hides a completion from a prefix query when the prefix reaches into
# it, so short prefixes need no scan; the scan is bounded for prefixes with many completions.
MIN_PLURAL_PREFIX = 3
MAX_PLURAL_SCAN = 2000


class Vocabulary:
    def __init__(
        self,
        surface_terms: Mapping[str, str] | None = None,
        term_documents: Mapping[str, int] | None = None,
    ) -> None:
        self._terms: dict[str, str] = {}
        self._documents: dict[str, int] = dict(term_documents or {})
        self._buckets: dict[int, list[str]] = {}
        self._sorted: list[str] = []
        self.add(surface_terms or {}, {})

    def __len__(self) -> int:
        return len(self._terms)

    def unknown(self, surface_terms: Iterable[tuple[str, str]]) -> dict[str, str]:
        """The surface words (with their terms) that the vocabulary does not hold yet."""
        return {surface: term for surface, term in surface_terms if surface not in self._terms}

    def add(self, surface_terms: Mapping[str, str], term_documents: Mapping[str, int]) -> None:
        """Learn words and count documents per term. Deletions are not subtracted: a stale
        word only costs a look-up that matches nothing; `ProductIndex.clear` starts afresh."""
        for term, count in term_documents.items():
            self._documents[term] = self._documents.get(term, 0) + count
        new = [surface for surface in surface_terms if surface not in self._terms]
        if not new:
            return
        # Terms first: a reader that finds a surface word in a bucket must find its term.
        self._terms.update((surface, surface_terms[surface]) for surface in new)
        for surface in new:
            bucket = self._buckets.get(len(surface), [])
            self._buckets[len(surface)] = [*bucket, surface]
        self._sorted = sorted([*self._sorted, *new])

    def typo_matches(self, typed: str, term: str, max_edits: int) -> list[str]:
        """Terms of the words 1..max_edits edits from what was typed or from its singular
        (a transposition is one edit), nearest and most common first; never `term` itself."""
        if max_edits <= 0:
            return []
        terms, documents = self._terms, self._documents
        nearest: dict[str, int] = {}
        for word in {typed, term}:
            for surface, edits in self._near(word, max_edits):
                found = terms[surface]
                if found != term:
                    nearest[found] = min(edits, nearest.get(found, edits))
        ranked = sorted(nearest, key=lambda t: (nearest[t], -documents.get(t, 0), t))
        return ranked[:MAX_TYPO_MATCHES]

    def _near(self, word: str, max_edits: int) -> list[tuple[str, int]]:
        buckets = self._buckets
        near: list[tuple[str, int]] = []
        for length in range(len(word) - max_edits, len(word) + max_edits + 1):
            near += [
                (surface, int(edits))
                for surface, edits, _ in process.extract_iter(
                    word, buckets.get(length, ()), scorer=OSA.distance, score_cutoff=max_edits
                )
            ]
        return near

    def plural_completions(self, prefix: str) -> list[str]:
        """Terms of words starting with `prefix` that their term does not start with:
        "berri" completes "berries", indexed as "berry", which a prefix query misses."""
        if len(prefix) < MIN_PLURAL_PREFIX:
            return []
        ordered, terms = self._sorted, self._terms
        start = bisect.bisect_left(ordered, prefix)
        found: list[str] = []
        for surface in ordered[start : start + MAX_PLURAL_SCAN]:
            if not surface.startswith(prefix) or len(found) == MAX_PLURAL_COMPLETIONS:
                break
            if not terms[surface].startswith(prefix) and terms[surface] not in found:
                found.append(terms[surface])
        return found


def count_documents(term_lists: Iterable[Iterable[str]]) -> dict[str, int]:
    """How many of the given documents hold each term."""
    counts: dict[str, int] = {}
    for terms in term_lists:
        for term in set(terms):
            counts[term] = counts.get(term, 0) + 1
    return counts
