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
# A prefix expands to the terms of at most this many words, the commonest (a prefix that
# starts thousands of words ranks the products of its common completions).
MAX_COMPLETIONS = 40
MAX_COMPLETION_SCAN = 5000
# A joined query word splits into two known words of at least this many letters.
MIN_SPLIT_PART = 2


class Vocabulary:
    def __init__(
        self,
        surface_terms: Mapping[str, str] | None = None,
        term_documents: Mapping[str, int] | None = None,
    ) -> None:
        self._terms: dict[str, str] = {}
        self._words: dict[str, str] = {}  # term -> its shortest word
        self._documents: dict[str, int] = dict(term_documents or {})
        self._buckets: dict[int, list[str]] = {}
        self._sorted: list[str] = []
        self._starts_by_length: dict[int, tuple[list[str], dict[str, list[str]]]] = {}
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
            term = surface_terms[surface]
            if len(surface) < len(self._words.get(term, surface + " ")):
                self._words[term] = surface
        for surface in new:
            bucket = self._buckets.get(len(surface), [])
            self._buckets[len(surface)] = [*bucket, surface]
        self._sorted = sorted([*self._sorted, *new])
        self._starts_by_length = {}

    def documents(self, term: str) -> int:
        """How many products carry `term` (as of when it was counted)."""
        return self._documents.get(term, 0)

    def term_of(self, surface: str) -> str | None:
        return self._terms.get(surface)

    def word_of(self, term: str) -> str:
        """The shortest word indexed as `term` (the term itself if none is known)."""
        return self._words.get(term, term)

    def typo_matches(self, typed: str, term: str, max_edits: int) -> list[str]:
        """`typo_edits` without the edits."""
        return [found for found, _ in self.typo_edits(typed, term, max_edits)]

    def typo_edits(self, typed: str, term: str, max_edits: int) -> list[tuple[str, int]]:
        """(term, edits) of the words 1..max_edits edits from what was typed (a
        transposition is one edit), nearest and most common first; never `term` itself.
        Typos are looked up among the words as written ("peahces" is one edit from
        "peaches"), then mapped to their terms."""
        if max_edits <= 0:
            return []
        terms = self._terms
        nearest: dict[str, int] = {}
        for surface, edits in self._near(typed, max_edits):
            found = terms[surface]
            if found != term:
                nearest[found] = min(edits, nearest.get(found, edits))
        return self._ranked(nearest)[:MAX_TYPO_MATCHES]

    def _ranked(self, edits: Mapping[str, int]) -> list[tuple[str, int]]:
        documents = self._documents
        ranked = sorted(edits, key=lambda t: (edits[t], -documents.get(t, 0), t))
        return [(term, edits[term]) for term in ranked]

    def _near(self, word: str, max_edits: int) -> list[tuple[str, int]]:
        buckets = self._buckets
        near: list[tuple[str, int]] = []
        for length in range(len(word) - max_edits, len(word) + max_edits + 1):
            bucket = buckets.get(length)
            if bucket:
                near += [
                    (surface, int(edits))
                    for surface, edits, _ in process.extract(
                        word, bucket, scorer=OSA.distance, score_cutoff=max_edits, limit=None
                    )
                ]
        return near

    def completions(self, prefix: str, limit: int = MAX_COMPLETIONS) -> list[tuple[str, str]]:
        """(word, term) of the words that start with `prefix`, one per term, the terms most
        products carry first (the shortest word for a term: "chocolate", not "chocolates")."""
        ordered, terms, documents = self._sorted, self._terms, self._documents
        start = bisect.bisect_left(ordered, prefix)
        words: dict[str, str] = {}
        for surface in ordered[start : start + MAX_COMPLETION_SCAN]:
            if not surface.startswith(prefix):
                break
            term = terms[surface]
            if term not in words or len(surface) < len(words[term]):
                words[term] = surface
        best = sorted(words, key=lambda t: (-documents.get(t, 0), len(words[t]), t))[:limit]
        return [(words[term], term) for term in best]

    def plural_completions(self, prefix: str) -> list[str]:
        """Terms of words starting with `prefix` that their term does not start with:
        "berri" completes "berries", indexed as "berry", which a prefix query misses."""
        if len(prefix) < MIN_PLURAL_PREFIX:
            return []
        found = [t for _, t in self.completions(prefix) if not t.startswith(prefix)]
        return found[:MAX_PLURAL_COMPLETIONS]

    def prefix_typos(self, typed: str, max_edits: int) -> list[tuple[str, int]]:
        """(term, edits) of words that start with something 1..max_edits edits from what was
        typed: "chocl" -> "chocolate" (typos while the word is being typed), commonest first.
        Words that start with `typed` itself are `completions`, not typos."""
        if max_edits <= 0:
            return []
        nearest: dict[str, int] = {}
        for length in range(len(typed) - max_edits, len(typed) + max_edits + 1):
            keys, starts = self._starts(length)
            for start, edits, _ in process.extract(
                typed, keys, scorer=OSA.distance, score_cutoff=max_edits, limit=None
            ):
                if edits == 0:
                    continue
                for surface in starts[start][:MAX_COMPLETION_SCAN]:
                    term = self._terms[surface]
                    nearest[term] = min(int(edits), nearest.get(term, int(edits)))
        return self._ranked(nearest)[:MAX_TYPO_MATCHES]

    def _starts(self, length: int) -> tuple[list[str], dict[str, list[str]]]:
        """Words by their first `length` letters, built when first asked after a change."""
        found = self._starts_by_length.get(length)
        if found is None:
            starts: dict[str, list[str]] = {}
            for surface in self._sorted:
                if len(surface) >= length:
                    starts.setdefault(surface[:length], []).append(surface)
            found = self._starts_by_length[length] = (list(starts), starts)
        return found

    def split(self, word: str) -> tuple[str, str] | None:
        """The terms of two known words that `word` joins ("cocacola" -> "coca", "cola"),
        the split whose rarer half is the most common; None if there is none."""
        best: tuple[int, tuple[str, str]] | None = None
        for cut in range(MIN_SPLIT_PART, len(word) - MIN_SPLIT_PART + 1):
            head, tail = self._terms.get(word[:cut]), self._terms.get(word[cut:])
            if head is None or tail is None:
                continue
            common = min(self.documents(head), self.documents(tail))
            if best is None or common > best[0]:
                best = (common, (head, tail))
        return None if best is None else best[1]


def count_documents(term_lists: Iterable[Iterable[str]]) -> dict[str, int]:
    """How many of the given documents hold each term."""
    counts: dict[str, int] = {}
    for terms in term_lists:
        for term in set(terms):
            counts[term] = counts.get(term, 0) + 1
    return counts
