"""Text analysis shared by indexing and querying.

Indexed text and query words go through the same folding (case, accents, a few letters that
Unicode does not decompose) and the same plural stripping, so both sides meet on one form.
The result is plain alphanumeric terms, indexed with tantivy's whitespace tokenizer and
looked up with term queries: no query parser ever sees the user's text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

MAX_QUERY_CHARS = 1000
MAX_QUERY_WORDS = 32
# Longer "words" are not language (hashes, pasted junk); tantivy also caps a term's bytes.
MAX_WORD_CHARS = 64

# NFKD leaves these as single letters, so accent stripping alone would not reach ASCII.
_UNDECOMPOSED_LETTERS = str.maketrans(
    {"ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ł": "l", "Ł": "l"}
    | {"đ": "d", "Đ": "d", "\u0131": "i", "þ": "th", "Þ": "th", "ð": "d", "Ð": "d"}
)
_WORD = re.compile(r"[^\W_]+")
_HYPHENATED = re.compile(r"[^\W_]+(?:-[^\W_]+)+")
# Suffixes where the plural adds "es" to the singular (boxes, dresses, watches, brushes).
_ES_PLURALS = ("sses", "xes", "ches", "shes", "zzes")
_NOT_PLURAL = ("ss", "us", "is")


def fold(text: str) -> str:
    """Lower-case and strip accents: "Crème BRÛLÉE" -> "creme brulee"."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def singular(word: str) -> str:
    """Strip a regular English plural: shirts -> shirt, boxes -> box, berries -> berry.

    Deliberately simple: both sides of a match go through it, so a wrong singular
    ("series" -> "sery") still meets itself and costs nothing.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(_ES_PLURALS):
        return word[:-2]
    if word.endswith(_NOT_PLURAL) or not word.endswith("s"):
        return word
    return word[:-1]


def analysed_words(text: str) -> list[tuple[str, str]]:
    """(folded word, indexed term) pairs of a field; a hyphenated word also yields its
    joined form, so "tshirt" finds "T-Shirt"."""
    folded = fold(text)
    words = _WORD.findall(folded)
    words += [compound.replace("-", "") for compound in _HYPHENATED.findall(folded)]
    return [(word, singular(word)) for word in words if len(word) <= MAX_WORD_CHARS]


def index_terms(text: str) -> list[str]:
    """The terms stored for a field."""
    return [term for _, term in analysed_words(text)]


def typo_budget(word: str) -> int:
    """Edits allowed for a query word (Meilisearch/Typesense: 5+ letters one, 9+ two)."""
    if len(word) >= 9:
        return 2
    if len(word) >= 5:
        return 1
    return 0


@dataclass(frozen=True, slots=True)
class QueryWord:
    """One query word as typed (folded), and the term it matches exactly. It also matches
    within `typo_budget` edits and, for the last word, as a `prefix` of any word."""

    typed: str
    term: str
    typo_budget: int
    prefix: str | None = None


def query_words(text: str) -> list[QueryWord]:
    """The searchable words of a query, at most MAX_QUERY_WORDS; the last one is a prefix.

    A query that ends in a separator ("blue ") ends on a finished word, and a query cut at
    MAX_QUERY_WORDS was not being typed there, so neither has a prefix.
    """
    folded = fold(text)
    words = [word for word in _unique(_WORD.findall(folded)) if len(word) <= MAX_WORD_CHARS]
    typed_last_word = len(words) <= MAX_QUERY_WORDS and bool(_WORD.fullmatch(folded[-1:]))
    parsed = [QueryWord(w, singular(w), typo_budget(w)) for w in words[:MAX_QUERY_WORDS]]
    if parsed and typed_last_word:
        last = parsed[-1]
        parsed[-1] = QueryWord(last.typed, last.term, last.typo_budget, prefix=last.typed)
    return parsed


def _unique(words: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for word in words:
        if word not in seen:
            seen.add(word)
            yield word
