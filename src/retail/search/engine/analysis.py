"""Text analysis shared by indexing and querying.

Indexed text and query words go through the same folding (case, accents, a few letters that
Unicode does not decompose), the same splitting and the same stemming, so both sides meet on
one form. The result is plain alphanumeric terms, indexed with tantivy's whitespace
tokenizer and looked up with term queries: no query parser ever sees the user's text.

- Numbers are split from the letters they are glued to, on both sides: "16oz" and "16 Oz"
  are both the words "16" and "oz" ("500ml", "2kg", "B12" alike).
- A hyphenated word is also indexed joined: "tshirt" finds "T-Shirt".
- Words are stemmed by the Snowball English stemmer (PyStemmer): chocolates, chocolate ->
  "chocol"; berries -> "berri". The stemmer knows no irregular forms, so a short list maps
  them first (`IRREGULAR`); a wrong stem costs nothing as long as both sides share it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import Stemmer  # type: ignore[import-not-found]  # PyStemmer ships no types

MAX_QUERY_CHARS = 1000
MAX_QUERY_WORDS = 32
# Longer "words" are not language (hashes, pasted junk); tantivy also caps a term's bytes.
MAX_WORD_CHARS = 64
# Typo budgets by word length (Typesense: one typo from 4 characters; two from 8).
ONE_TYPO_FROM, TWO_TYPOS_FROM = 4, 8

# NFKD leaves these as single letters, so accent stripping alone would not reach ASCII.
_UNDECOMPOSED_LETTERS = str.maketrans(
    {"ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ł": "l", "Ł": "l"}
    | {"đ": "d", "Đ": "d", "\u0131": "i", "þ": "th", "Þ": "th", "ð": "d", "Ð": "d"}
)
_WORD = re.compile(r"[^\W_]+")
_HYPHENATED = re.compile(r"[^\W_]+(?:-[^\W_]+)+")
_DIGITS_OR_NOT = re.compile(r"\d+|[^\d]+")

# Irregular English plurals (and a few forms the stemmer splits from their singular): mapped
# to the singular before stemming. Regular forms need no entry.
IRREGULAR = {
    "leaves": "leaf", "loaves": "loaf", "knives": "knife", "halves": "half",
    "shelves": "shelf", "wolves": "wolf", "calves": "calf", "scarves": "scarf",
    "wives": "wife", "lives": "life", "thieves": "thief", "hooves": "hoof",
    "children": "child", "men": "man", "women": "woman", "teeth": "tooth", "feet": "foot",
    "geese": "goose", "mice": "mouse", "dice": "die", "oxen": "ox", "people": "person",
    "potatoes": "potato", "tomatoes": "tomato", "mangoes": "mango", "heroes": "hero",
    "cacti": "cactus", "fungi": "fungus", "radii": "radius", "indices": "index",
}  # fmt: skip

_stemmers = threading.local()  # PyStemmer's stemmers are not thread-safe: one per thread


def _stemmer() -> Stemmer.Stemmer:
    stemmer: Stemmer.Stemmer | None = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    return stemmer


def fold(text: str) -> str:
    """Lower-case and strip accents: "Crème BRÛLÉE" -> "creme brulee"."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def stem(word: str) -> str:
    """The term a folded word is indexed as: knives -> "knife", berries -> "berri"."""
    word = IRREGULAR.get(word, word)
    if len(word) <= 2 or not word.isalpha():
        return word
    return str(_stemmer().stemWord(word))


def singular(word: str) -> str:
    """`stem` (the name older callers know)."""
    return stem(word)


def words_of(folded: str) -> list[str]:
    """The words of folded text, numbers split from letters: "16oz" -> "16", "oz"."""
    words: list[str] = []
    for word in _WORD.findall(folded):
        if word.isalpha() or word.isdigit():
            words.append(word)
        else:
            words += _DIGITS_OR_NOT.findall(word)
    return words


def analysed_words(text: str) -> list[tuple[str, str]]:
    """(folded word, indexed term) pairs of a field, in order; a hyphenated word also yields
    its joined form at the end, so "tshirt" finds "T-Shirt"."""
    folded = fold(text)
    words = words_of(folded)
    words += [compound.replace("-", "") for compound in _HYPHENATED.findall(folded)]
    return [(word, stem(word)) for word in words if len(word) <= MAX_WORD_CHARS]


def index_terms(text: str) -> list[str]:
    """The terms stored for a field."""
    return [term for _, term in analysed_words(text)]


def typo_budget(word: str) -> int:
    """Edits allowed for a query word: 4+ letters one, 8+ two; none for numbers."""
    if not word.isalpha() or len(word) < ONE_TYPO_FROM:
        return 0
    return 2 if len(word) >= TWO_TYPOS_FROM else 1


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
    MAX_QUERY_WORDS was not being typed there, so neither has a prefix. A repeated word
    counts once.
    """
    folded = fold(text)
    words = [word for word in _unique(words_of(folded)) if len(word) <= MAX_WORD_CHARS]
    typed_last_word = len(words) <= MAX_QUERY_WORDS and bool(_WORD.fullmatch(folded[-1:]))
    parsed = [QueryWord(w, stem(w), typo_budget(w)) for w in words[:MAX_QUERY_WORDS]]
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
