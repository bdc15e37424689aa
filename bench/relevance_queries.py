"""Known-item queries made from real product titles, with a fixed seed (`bench.relevance`).

For a product drawn at random, the query words are 2 or 3 consecutive title words, the run
that the fewest other titles also contain (a shopper types what sets the product apart).
Words are compared as written (lower-cased), never through the engine's own analysis, so
the queries favour no engine. From those words, each kind makes its query:

- exact: the words as written;
- typo: one edit (substitution, deletion, insertion or transposition, never of the first
  letter) in a word of 4 or more letters;
- prefix: the first word and the first 3 letters of the next (a word of 4+ letters);
- joined: two adjacent words written as one ("peanut butter" -> "peanutbutter", "500 g"
  -> "500g");
- split: a title word that is two other words of the catalogue (each of 3+ letters and a
  word of its own in 5+ titles), written apart ("cornflakes" -> "corn flakes"), or a
  number glued to its unit apart ("500g" -> "500 g");
- plural: one word of 4+ letters in the other grammatical number, by the regular English
  rules only (-s, -es, -ies), when that form is a word of its own in 5+ titles (so no
  "presseds"); irregular plurals are not generated.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

KINDS = ("exact", "typo", "prefix", "joined", "split", "plural")
_WORD = re.compile(r"[^\W_]+")
_NUMBER_UNIT = re.compile(r"^(\d+(?:\.\d+)?)([a-z]+)$")
_TRIES = 40
MIN_TITLES_FOR_A_WORD = 5


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    title: str
    brand: str
    category_id: str
    category_name: str
    description: str
    price_cents: int


@dataclass(frozen=True, slots=True)
class Known:
    kind: str
    text: str
    product_id: str
    title: str


class Titles:
    """Which titles hold a word (lower-cased, as written)."""

    def __init__(self, products: Sequence[Product]) -> None:
        self.products = products
        self.words = [_WORD.findall(p.title) for p in products]
        self.holding: dict[str, set[int]] = {}
        for position, words in enumerate(self.words):
            for word in words:
                self.holding.setdefault(word.lower(), set()).add(position)

    def common(self, word: str) -> bool:
        """Whether `word` is a word of its own in several titles (a real word, not a chunk)."""
        return len(self.holding.get(word, ())) >= MIN_TITLES_FOR_A_WORD

    def sharing(self, words: Sequence[str]) -> int:
        sets = [self.holding.get(w.lower(), set()) for w in words]
        return len(set.intersection(*sets))

    def distinctive_run(self, position: int) -> list[str] | None:
        words = self.words[position]
        runs = [words[i : i + n] for n in (2, 3) for i in range(len(words) - n + 1)]
        if not runs:
            return None
        return min(runs, key=lambda run: (self.sharing(run), len(run)))


def known_item_queries(
    products: Sequence[Product], per_kind: int, rng: random.Random
) -> list[Known]:
    titles = Titles(products)
    makers: dict[str, Callable[[list[str], random.Random], str | None]] = {
        "exact": lambda words, _: " ".join(words),
        "typo": _typo,
        "prefix": _prefix,
        "joined": _joined,
        "split": lambda words, r: _split(words, r, titles),
        "plural": lambda words, r: _plural(words, r, titles),
    }
    queries: list[Known] = []
    for kind, make in makers.items():
        made = 0
        for position in rng.sample(range(len(products)), len(products)):
            run = titles.distinctive_run(position)
            text = make(run, rng) if run else None
            if text:
                product = products[position]
                queries.append(Known(kind, text, product.id, product.title))
                made += 1
                if made == per_kind:
                    break
    return queries


def _typo(words: list[str], rng: random.Random) -> str | None:
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return None
    i = rng.choice(candidates)
    word = words[i]
    for _ in range(_TRIES):
        typo = _edit(word, rng)
        if typo.lower() != word.lower():
            return " ".join([*words[:i], typo, *words[i + 1 :]])
    return None


def _edit(word: str, rng: random.Random) -> str:
    at = rng.randrange(1, len(word))
    letter = rng.choice(string.ascii_lowercase)
    match rng.choice(("substitute", "delete", "insert", "transpose")):
        case "substitute":
            return word[:at] + letter + word[at + 1 :]
        case "delete":
            return word[:at] + word[at + 1 :]
        case "insert":
            return word[:at] + letter + word[at:]
        case _:
            at = min(at, len(word) - 2)
            return word[:at] + word[at + 1] + word[at] + word[at + 2 :]


def _prefix(words: list[str], _: random.Random) -> str | None:
    if len(words[1]) < 4:
        return None
    return f"{words[0]} {words[1][:3]}"


def _joined(words: list[str], rng: random.Random) -> str | None:
    pairs = [
        i for i in range(len(words) - 1)
        if (words[i].isalpha() and words[i + 1].isalpha() and min(map(len, words[i : i + 2])) >= 3)
        or (words[i].isdigit() and words[i + 1].isalpha())
    ]  # fmt: skip
    if not pairs:
        return None
    i = rng.choice(pairs)
    return " ".join([*words[:i], words[i] + words[i + 1], *words[i + 2 :]])


def _split(words: list[str], rng: random.Random, titles: Titles) -> str | None:
    splits: list[tuple[int, str]] = []
    for i, word in enumerate(words):
        unit = _NUMBER_UNIT.match(word.lower())
        if unit:
            splits.append((i, f"{word[: len(unit[1])]} {word[len(unit[1]) :]}"))
            continue
        for cut in range(3, len(word) - 2):
            head, tail = word[:cut].lower(), word[cut:].lower()
            if word.isalpha() and titles.common(head) and titles.common(tail):
                splits.append((i, f"{word[:cut]} {word[cut:]}"))
                break
    if not splits:
        return None
    i, apart = rng.choice(splits)
    return " ".join([*words[:i], apart, *words[i + 1 :]])


def _plural(words: list[str], rng: random.Random, titles: Titles) -> str | None:
    candidates = [
        i for i, w in enumerate(words)
        if len(w) >= 4 and w.isalpha() and titles.common(_other_number(w).lower())
    ]  # fmt: skip
    if not candidates:
        return None
    i = rng.choice(candidates)
    return " ".join([*words[:i], _other_number(words[i]), *words[i + 1 :]])


def _other_number(word: str) -> str:
    lower = word.lower()
    if lower.endswith("ies"):
        return word[:-3] + "y"
    if lower.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")):
        return word[:-1]
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"
