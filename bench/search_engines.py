"""Compare embedded search engines on one generated catalogue: which one should search use?

    uv run python bench/search_engines.py --products 50000 --queries 300

Every engine indexes the same products with the same analysis (retail.search.engine.analysis:
case and accent folding, plural stripping) and answers the same queries under the same
rules: every word must match, a word of 5+ letters may carry one typo and of 9+ two, and the
last word also matches as a prefix. Per engine it prints build time; p50/p95 latency (top 10)
of the known-item queries and of as-you-type queries ("s", "sh", "shi", ...: they match
thousands of products and set the tail); the median time for a changed product to become
searchable; index size on disk; and known-item success at 1 and at 10 per query kind.
A second table puts the chosen ProductIndex under the service's workload: filters, deep
pages, suggestions, and searches on two threads while stock batches commit.

Latency is wall time on this machine; compare engines within one run, not across machines.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bm25s
import tantivy

from retail.demo.catalogue import (
    Catalogue,
    CatalogueProduct,
    KnownItemQuery,
    QueryKind,
    broad_queries,
    generate_catalogue,
    known_item_queries,
)
from retail.search.engine import IndexedProduct, ProductIndex, SearchQuery
from retail.search.engine.analysis import (
    QueryWord,
    analysed_words,
    index_terms,
    query_words,
)
from retail.search.engine.vocabulary import Vocabulary, count_documents

TOP = 10
UPDATES = 20
FIELD_WEIGHTS = {"title": 4.0, "description": 1.0, "category": 2.0}
# Below an exact match: what a prefix completion and a typo are worth (tantivy, bm25s).
PREFIX_WEIGHT, TYPO_WEIGHT = 0.5, 0.2
MAX_PREFIX_TERMS = 64


class Engine(Protocol):
    name: str

    def build(self, catalogue: Catalogue, directory: Path) -> None: ...
    def search(self, text: str) -> list[str]: ...
    def update(self, product: CatalogueProduct, category_name: str) -> None: ...
    def close(self) -> None: ...


def _fields(product: CatalogueProduct, category_name: str) -> dict[str, list[str]]:
    return {
        "title": index_terms(product.title),
        "description": index_terms(product.description),
        "category": index_terms(category_name),
    }


def _document(product: CatalogueProduct) -> dict[str, Any]:
    return {"id": product.id, "title": product.title, "price": product.price_cents / 100}


class SqliteFts5Engine:
    """SQLite FTS5 (stdlib): bm25() with column weights, the `ascii` tokenizer over the
    analyser's terms, prefix indexes, and the in-memory vocabulary for typos. Exact and
    typo matches are two tiers, as in the library (FTS5 cannot weight OR-ed terms)."""

    name = "SQLite FTS5 + vocabulary"

    def build(self, catalogue: Catalogue, directory: Path) -> None:
        self._db = sqlite3.connect(directory / "fts5.sqlite3", isolation_level=None)
        self._db.executescript(_FTS5_SCHEMA)
        self._names = {c.id: c.name for c in catalogue.categories}
        self._vocabulary = Vocabulary()
        self._db.execute("BEGIN")
        for number, product in enumerate(catalogue.products):
            self._write(number, product)
        self._db.execute("COMMIT")
        self._numbers = {p.id: n for n, p in enumerate(catalogue.products)}

    def _write(self, number: int, product: CatalogueProduct) -> None:
        texts = (product.title, product.description, self._names[product.category_id])
        words = [analysed_words(text) for text in texts]
        self._db.execute("DELETE FROM product_text WHERE rowid = ?", (number,))
        self._db.execute(
            "INSERT INTO product_text (rowid, title, description, category) VALUES (?, ?, ?, ?)",
            (number, *(" ".join(t for _, t in field) for field in words)),
        )
        self._db.execute(
            "INSERT OR REPLACE INTO products VALUES (?, ?, ?, ?)",
            (number, product.id, product.stock, product.created_at),
        )
        pairs = [pair for field in words for pair in field]
        self._vocabulary.add(self._vocabulary.unknown(pairs), {})

    def search(self, text: str) -> list[str]:
        found: list[str] = []
        for expression in self._tiers(query_words(text)):
            rows = self._db.execute(_FTS5_SEARCH, (expression, TOP - len(found)))
            found += [product_id for (product_id,) in rows]
            if len(found) == TOP:
                break
        return found

    def _tiers(self, words: Sequence[QueryWord]) -> list[str]:
        exact, tolerant = [], []
        for word in words:
            alternatives = [f'"{word.term}"']
            if word.prefix is not None:
                alternatives.append(f'"{word.prefix}" *')
                alternatives += [f'"{t}"' for t in self._vocabulary.plural_completions(word.prefix)]
            typos = self._vocabulary.typo_matches(word.typed, word.term, word.typo_budget)
            exact.append("(" + " OR ".join(alternatives) + ")")
            tolerant.append("(" + " OR ".join(alternatives + [f'"{t}"' for t in typos]) + ")")
        if exact == tolerant:
            return [" AND ".join(exact)]
        return [" AND ".join(exact), f"({' AND '.join(tolerant)}) NOT ({' AND '.join(exact)})"]

    def update(self, product: CatalogueProduct, category_name: str) -> None:
        self._db.execute("BEGIN")
        self._write(self._numbers[product.id], product)
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


_FTS5_SCHEMA = """
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE products (
        doc_number INTEGER PRIMARY KEY, id TEXT NOT NULL, stock INTEGER, created_at TEXT
    );
    CREATE VIRTUAL TABLE product_text USING fts5 (
        title, description, category, tokenize = 'ascii', prefix = '2 3', detail = column
    );
"""
_FTS5_SEARCH = """
    SELECT p.id FROM product_text CROSS JOIN products AS p ON p.doc_number = product_text.rowid
    WHERE product_text MATCH ?
    ORDER BY bm25(product_text, 4.0, 1.0, 2.0), p.stock > 0 DESC, p.created_at DESC LIMIT ?
"""


class LibraryEngine:
    """The chosen engine as shipped: retail.search.engine.ProductIndex (tantivy, with the
    vocabulary for typos of plurals, exact/typo tiers and in-stock/newer tie-breaks)."""

    name = "ProductIndex (tantivy + vocabulary)"

    def build(self, catalogue: Catalogue, directory: Path) -> None:
        self._index = ProductIndex(directory)
        with self._index.batch() as batch:
            for category in catalogue.categories:
                batch.set_category_name(category.id, category.name)
        products = [self._indexed(p) for p in catalogue.products]
        for start in range(0, len(products), 5000):
            self._index.upsert(products[start : start + 5000])

    @staticmethod
    def _indexed(product: CatalogueProduct) -> IndexedProduct:
        return IndexedProduct(
            product.id,
            product.title,
            product.description,
            product.price_cents,
            product.category_id,
            product.stock,
            product.created_at,
            _document(product),
        )

    def search(self, text: str) -> list[str]:
        return [str(d["id"]) for d in self._index.search(SearchQuery(text, limit=TOP))]

    def update(self, product: CatalogueProduct, category_name: str) -> None:
        self._index.upsert([self._indexed(product)])

    def close(self) -> None:
        self._index.close()


class TantivyEngine:
    """tantivy with its own FuzzyTermQuery (Levenshtein automata) for typos and prefixes."""

    name = "tantivy + FuzzyTermQuery"

    def build(self, catalogue: Catalogue, directory: Path) -> None:
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("id", stored=True, tokenizer_name="raw")
        for field in FIELD_WEIGHTS:
            builder.add_text_field(field, tokenizer_name="whitespace")
        builder.add_integer_field("stock", fast=True, indexed=True)
        builder.add_text_field("document", stored=True, tokenizer_name="raw")
        self._schema = builder.build()
        self._index = tantivy.Index(self._schema, path=str(directory))
        self._writer = self._index.writer(heap_size=256_000_000, num_threads=2)
        names = {c.id: c.name for c in catalogue.categories}
        for product in catalogue.products:
            self._writer.add_document(self._doc(product, names[product.category_id]))
        self._writer.commit()
        self._writer.wait_merging_threads()
        self._writer = self._index.writer(heap_size=64_000_000, num_threads=1)
        self._index.reload()

    def _doc(self, product: CatalogueProduct, category_name: str) -> tantivy.Document:
        fields = {name: " ".join(terms) for name, terms in _fields(product, category_name).items()}
        return tantivy.Document(
            id=product.id,
            stock=product.stock,
            document=orjson.dumps(_document(product)).decode(),
            **fields,
        )

    def search(self, text: str) -> list[str]:
        groups = [(tantivy.Occur.Must, self._word_query(w)) for w in query_words(text)]
        searcher = self._index.searcher()
        hits = searcher.search(tantivy.Query.boolean_query(groups), TOP, count=False).hits
        return [str(searcher.doc(address)["id"][0]) for _, address in hits]

    def _word_query(self, word: QueryWord) -> tantivy.Query:
        schema, should = self._schema, tantivy.Occur.Should
        alternatives: list[tuple[Any, tantivy.Query]] = []
        for field, weight in FIELD_WEIGHTS.items():
            exact = tantivy.Query.term_query(schema, field, word.term)
            alternatives.append((should, tantivy.Query.boost_query(exact, weight)))
            if word.prefix is not None:
                prefix = tantivy.Query.fuzzy_term_query(
                    schema, field, word.prefix, distance=0, prefix=True
                )
                alternatives.append(
                    (should, tantivy.Query.boost_query(prefix, weight * PREFIX_WEIGHT))
                )
            if word.typo_budget:
                typo = tantivy.Query.fuzzy_term_query(
                    schema, field, word.term, distance=word.typo_budget
                )
                alternatives.append((should, tantivy.Query.boost_query(typo, weight * TYPO_WEIGHT)))
        return tantivy.Query.boolean_query(alternatives)

    def update(self, product: CatalogueProduct, category_name: str) -> None:
        self._writer.delete_documents_by_term("id", product.id)
        self._writer.add_document(self._doc(product, category_name))
        self._writer.commit()
        self._index.reload()

    def close(self) -> None:
        self._writer.wait_merging_threads()


class Bm25sEngine:
    """bm25s (numpy sparse BM25) per field; rapidfuzz against the vocabulary for typos."""

    name = "bm25s + rapidfuzz"

    def build(self, catalogue: Catalogue, directory: Path) -> None:
        names = {c.id: c.name for c in catalogue.categories}
        self._catalogue = catalogue
        fields = [_fields(p, names[p.category_id]) for p in catalogue.products]
        self._ids = [p.id for p in catalogue.products]
        self._retrievers: dict[str, Any] = {}
        for field in FIELD_WEIGHTS:
            retriever = bm25s.BM25()
            retriever.index([f[field] for f in fields], show_progress=False)
            retriever.save(str(directory / field))
            self._retrievers[field] = retriever
        counts = count_documents([t for terms in f.values() for t in terms] for f in fields)
        texts = (f"{p.title} {p.description}" for p in catalogue.products)
        surface_terms = {w: t for text in texts for w, t in analysed_words(text)}
        surface_terms |= {w: t for c in catalogue.categories for w, t in analysed_words(c.name)}
        self._vocabulary = Vocabulary(surface_terms, counts)
        self._sorted_terms = sorted(counts)
        self._counts = counts

    def search(self, text: str) -> list[str]:
        total = np.zeros(len(self._ids), dtype=np.float32)
        matched_all = np.ones(len(self._ids), dtype=bool)
        for word in query_words(text):
            score = self._word_scores(word)
            matched_all &= score > 0
            total += score
        total[~matched_all] = 0
        best = np.argsort(-total)[:TOP]
        return [self._ids[i] for i in best if total[i] > 0]

    def _word_scores(self, word: QueryWord) -> np.ndarray[Any, Any]:
        weighted = [([word.term], 1.0)]
        typos = self._vocabulary.typo_matches(word.typed, word.term, word.typo_budget)
        weighted.append((typos, TYPO_WEIGHT))
        if word.prefix is not None:
            completions = self._completions(word.prefix)
            completions += self._vocabulary.plural_completions(word.prefix)
            weighted.append((completions, PREFIX_WEIGHT))
        score = np.zeros(len(self._ids), dtype=np.float32)
        for field, field_weight in FIELD_WEIGHTS.items():
            retriever = self._retrievers[field]
            for terms, weight in weighted:
                known = [t for t in terms if t in retriever.vocab_dict]
                if known:
                    score += field_weight * weight * retriever.get_scores(known)
        return score

    def _completions(self, prefix: str) -> list[str]:
        start = bisect.bisect_left(self._sorted_terms, prefix)
        end = bisect.bisect_left(self._sorted_terms, prefix + "\U0010ffff")
        found = self._sorted_terms[start:end]
        return sorted(found, key=lambda t: -self._counts[t])[:MAX_PREFIX_TERMS]

    def update(self, product: CatalogueProduct, category_name: str) -> None:
        # bm25s has no incremental update: a changed product means indexing everything again.
        products = tuple(product if p.id == product.id else p for p in self._catalogue.products)
        with tempfile.TemporaryDirectory() as scratch:
            self.build(replace(self._catalogue, products=products), Path(scratch))

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Measurement:
    engine: str
    build_s: float
    known_ms: tuple[float, float]  # p50, p95 of the known-item queries
    broad_ms: tuple[float, float]  # p50, p95 of the as-you-type queries
    update_ms: float
    size_mb: float
    success: dict[QueryKind, tuple[float, float]]  # kind -> (at 1, at 10)


def _directory_size(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def _percentiles(latencies: Sequence[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49], cuts[94]


def measure(
    engine: Engine,
    catalogue: Catalogue,
    queries: Sequence[KnownItemQuery],
    broad: Sequence[str],
) -> Measurement:
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        engine.build(catalogue, Path(scratch))
        build_s = time.perf_counter() - started
        for query in queries[:20]:  # warm caches before timing
            engine.search(query.text)
        latencies, ranks = _run_queries(engine, [q.text for q in queries], queries)
        broad_latencies, _ = _run_queries(engine, broad, [])
        update_ms = _update_latency(engine, catalogue)
        engine.close()
        size = _directory_size(Path(scratch))
    return Measurement(
        engine.name,
        build_s,
        _percentiles(latencies),
        _percentiles(broad_latencies),
        update_ms,
        size / 1e6,
        _success(queries, ranks),
    )


def _run_queries(
    engine: Engine, texts: Sequence[str], known: Sequence[KnownItemQuery]
) -> tuple[list[float], list[int | None]]:
    """Latency of each query, and the rank of the known item where one is given."""
    latencies: list[float] = []
    ranks: list[int | None] = []
    for n, text in enumerate(texts):
        started = time.perf_counter()
        found = engine.search(text)
        latencies.append((time.perf_counter() - started) * 1000)
        if known:
            wanted = known[n].product_id
            ranks.append(found.index(wanted) if wanted in found else None)
    return latencies, ranks


def _update_latency(engine: Engine, catalogue: Catalogue) -> float:
    """Median time from changing a product's title to finding it by the new word."""
    names = {c.id: c.name for c in catalogue.categories}
    timings: list[float] = []
    for n, product in enumerate(catalogue.products[:UPDATES]):
        changed = replace(product, title=f"{product.title} Quokkaberry{n}")
        started = time.perf_counter()
        engine.update(changed, names[product.category_id])
        found = engine.search(f"quokkaberry{n}")
        timings.append((time.perf_counter() - started) * 1000)
        if product.id not in found:
            raise AssertionError(f"{engine.name}: an updated product is not searchable")
        if isinstance(engine, Bm25sEngine):
            break  # one full rebuild tells the story
    return statistics.median(timings)


def _success(
    queries: Sequence[KnownItemQuery], ranks: Sequence[int | None]
) -> dict[QueryKind, tuple[float, float]]:
    success: dict[QueryKind, tuple[float, float]] = {}
    for kind in QueryKind:
        kind_ranks = [r for q, r in zip(queries, ranks, strict=True) if q.kind == kind]
        if kind_ranks:
            at_1 = sum(r == 0 for r in kind_ranks) / len(kind_ranks)
            at_10 = sum(r is not None for r in kind_ranks) / len(kind_ranks)
            success[kind] = (at_1, at_10)
    return success


def render(measurements: Sequence[Measurement]) -> str:
    kinds = [k for k in QueryKind if any(k in m.success for m in measurements)]
    header = ["engine", "build s", "known-item p50 / p95 ms", "as-you-type p50 / p95 ms"]
    header += ["update ms", "size MB"] + [f"{k} @1 / @10" for k in kinds]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in measurements:
        cells = [m.engine, f"{m.build_s:.1f}"]
        cells += [f"{m.known_ms[0]:.1f} / {m.known_ms[1]:.1f}"]
        cells += [f"{m.broad_ms[0]:.1f} / {m.broad_ms[1]:.1f}"]
        cells += [f"{m.update_ms:.1f}", f"{m.size_mb:.0f}"]
        cells += [f"{m.success[k][0]:.0%} / {m.success[k][1]:.0%}" for k in kinds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


ENGINES: dict[str, Callable[[], Engine]] = {
    "fts5": SqliteFts5Engine,
    "tantivy": TantivyEngine,
    "bm25s": Bm25sEngine,
    "library": LibraryEngine,
}


def service_workload(
    catalogue: Catalogue, queries: Sequence[KnownItemQuery], broad: Sequence[str]
) -> str:
    """The chosen ProductIndex under what the service will ask of it: filters, deep pages,
    suggestions, and two searching threads while a third applies stock batches."""
    texts = [q.text for q in queries] + list(broad)
    rng = random.Random(5)
    categories = [c.id for c in catalogue.categories]
    engine = LibraryEngine()
    with tempfile.TemporaryDirectory() as scratch:
        engine.build(catalogue, Path(scratch))
        index = engine._index
        rows = {
            "plain (known-item + as-you-type)": lambda t: index.search(SearchQuery(t)),
            "filtered (category, price, in stock)": lambda t: index.search(
                SearchQuery(t, rng.choice(categories), 1000, 20000, True)
            ),
            "page 11 (offset 200, limit 20)": lambda t: index.search(SearchQuery(t, offset=200)),
            "suggest": lambda t: index.suggest(t),
        }
        lines = ["| ProductIndex workload | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|"]
        for label, run in rows.items():
            lines.append(_latency_row(label, [_timed(run, t) for t in texts]))
        lines += _concurrent_rows(index, catalogue, texts)
        engine.close()
    return "\n".join(lines)


def _timed(run: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    run(text)
    return (time.perf_counter() - started) * 1000


def _latency_row(label: str, latencies: Sequence[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    return f"| {label} | {cuts[49]:.1f} | {cuts[94]:.1f} | {cuts[98]:.1f} |"


def _concurrent_rows(index: ProductIndex, catalogue: Catalogue, texts: Sequence[str]) -> list[str]:
    """Two threads search while the caller's thread commits batches of 100 stock changes."""
    stop = threading.Event()
    latencies: list[float] = []
    commits: list[float] = []

    def search_until_stopped(offset: int) -> None:
        for n in itertools.count(offset):
            if stop.is_set():
                return
            latencies.append(_timed(lambda t: index.search(SearchQuery(t)), texts[n % len(texts)]))

    readers = [threading.Thread(target=search_until_stopped, args=(n * 997,)) for n in range(2)]
    for reader in readers:
        reader.start()
    rng = random.Random(3)
    for cursor in range(30):
        started = time.perf_counter()
        with index.batch(meta={"inventory": str(cursor)}) as batch:
            for product in rng.sample(catalogue.products, 100):
                batch.set_stock(product.id, rng.randint(0, 50))
        commits.append((time.perf_counter() - started) * 1000)
        time.sleep(0.1)
    stop.set()
    for reader in readers:
        reader.join()
    return [
        _latency_row("search, 2 threads, while stock batches commit", latencies),
        _latency_row("commit of 100 stock changes + cursor", commits),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=300, help="known-item queries per kind")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-workload", action="store_true", help="no ProductIndex workload")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    catalogue = generate_catalogue(args.products, seed=args.seed)
    queries = known_item_queries(catalogue, args.queries, seed=args.seed + 4)
    broad = broad_queries(catalogue, args.queries, seed=args.seed + 6)
    print(
        f"{args.products:,} products, {len(queries):,} known-item queries ({args.queries} per "
        f"kind), {len(broad)} as-you-type queries, "
        f"top {TOP}; {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"catalogue made in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    measurements = []
    for key in args.engines.split(","):
        measurements.append(measure(ENGINES[key.strip()](), catalogue, queries, broad))
        print(f"  {measurements[-1].engine}: done", flush=True)
    print()
    print(render(measurements))
    if not args.skip_workload:
        print()
        print(service_workload(catalogue, queries, broad))


if __name__ == "__main__":
    main()
