"""Search relevance on a real catalogue: ProductIndex beside SQLite FTS5 (bm25).

    uv run python -m bench.relevance [--csv PATH] [--per-kind 300] [--seed 15]

Loads a catalogue CSV (`id,title,brand,category,subcategory,price,description`; by default
`../shared/datasets/bigbasket/products.csv` beside this repository) straight into the engine
(no HTTP), makes known-item queries from the titles with a fixed seed, and prints per query
kind MRR@10, hit@1, hit@10 and the empty-answer rate, for ProductIndex and for SQLite FTS5,
then the p50/p95 latency of one query, also at twice the catalogue (every row again under
another id: `--copies`).

A catalogue can list one title several times (pack sizes of one product): a hit is an answer
with the wanted product's title (case-insensitive), not necessarily its id.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.relevance_queries import KINDS, Known, Product, known_item_queries
from retail.search.engine import IndexedProduct, ProductIndex, SearchQuery

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared/datasets/bigbasket/products.csv"
TOP = 10
Engine = Callable[[str], list[str]]  # query -> titles of the top 10, best first


def load_products(path: Path, copies: int) -> list[Product]:
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    products: list[Product] = []
    for copy in range(copies):
        for row in rows:
            price = round(float(row["price"] or 0) * 100)
            product_id = row["id"] if copy == 0 else f"{row['id']}-{copy}"
            category = f"{row['category']} / {row['subcategory']}"
            products.append(
                Product(product_id, row["title"], row["brand"], category, row["subcategory"],
                        row["description"], price)
            )  # fmt: skip
    return products


# --- the engines -------------------------------------------------------------------------


def ours(products: Sequence[Product], directory: Path) -> tuple[ProductIndex, Engine]:
    index = ProductIndex(directory)
    categories = {p.category_id: p.category_name for p in products}
    with index.batch() as batch:
        for category_id, name in categories.items():
            batch.set_category_name(category_id, name)
    for start in range(0, len(products), 5000):
        index.upsert([_indexed(p) for p in products[start : start + 5000]])

    def search(text: str) -> list[str]:
        return [str(d["title"]) for d in index.search(SearchQuery(text, limit=TOP))]

    return index, search


def _indexed(product: Product) -> IndexedProduct:
    document = {
        "id": product.id, "title": product.title, "brand": product.brand,
        "description": product.description, "price": product.price_cents / 100,
        "category_id": product.category_id, "stock": 10, "created_at": "2024-01-01T00:00:00Z",
    }  # fmt: skip
    return IndexedProduct(
        id=product.id,
        title=product.title,
        description=product.description,
        price_cents=product.price_cents,
        category_id=product.category_id,
        stock=10,
        created_at="2024-01-01T00:00:00Z",
        document=document,
        brand=product.brand,
    )


_FTS_WORD = re.compile(r"[^\W_]+")


def fts5(products: Sequence[Product]) -> tuple[sqlite3.Connection, Engine]:
    """FTS5 as a newcomer would set it up: unicode61 without diacritics, porter stemming,
    bm25 weighting title 4, brand 2, category 1, description 1; every word must match and
    the last one may be a prefix."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute(
        "CREATE VIRTUAL TABLE p USING fts5(title, brand, category, description,"
        " tokenize='porter unicode61 remove_diacritics 2')"
    )
    db.executemany(
        "INSERT INTO p (title, brand, category, description) VALUES (?, ?, ?, ?)",
        [(p.title, p.brand, p.category_name, p.description) for p in products],
    )

    def search(text: str) -> list[str]:
        words = _FTS_WORD.findall(text)
        if not words:
            return []
        match = " ".join(f'"{w}"' for w in words[:-1]) + f' "{words[-1]}"*'
        rows = db.execute(
            "SELECT title FROM p WHERE p MATCH ? ORDER BY bm25(p, 4, 2, 1, 1) LIMIT ?",
            (match, TOP),
        )
        return [str(title) for (title,) in rows]

    return db, search


# --- measuring ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    rank: int | None  # 0-based rank of the first answer with the wanted title
    empty: bool
    ms: float


def run_queries(engine: Engine, queries: Sequence[Known]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for query in queries:
        started = time.perf_counter()
        titles = engine(query.text)
        elapsed = (time.perf_counter() - started) * 1000
        folded = [title.casefold() for title in titles]
        wanted = query.title.casefold()
        rank = folded.index(wanted) if wanted in folded else None
        outcomes.append(Outcome(rank, not titles, elapsed))
    return outcomes


def quality_rows(name: str, queries: Sequence[Known], outcomes: Sequence[Outcome]) -> list[str]:
    rows: list[str] = []
    for kind in KINDS:
        got = [o for q, o in zip(queries, outcomes, strict=True) if q.kind == kind]
        if not got:
            continue
        mrr = sum(1 / (o.rank + 1) for o in got if o.rank is not None) / len(got)
        at_1 = sum(o.rank == 0 for o in got) / len(got)
        at_10 = sum(o.rank is not None for o in got) / len(got)
        empty = sum(o.empty for o in got) / len(got)
        rows.append(
            f"| {name} | {kind} | {len(got)} | {mrr:.2f} | {at_1:.2f} | {at_10:.2f} | {empty:.1%} |"
        )
    return rows


def latency_row(name: str, size: int, outcomes: Sequence[Outcome]) -> str:
    cuts = statistics.quantiles([o.ms for o in outcomes], n=100)
    p50, p95, p99 = cuts[49], cuts[94], cuts[98]
    return f"| {name} | {size:,} | {len(outcomes)} | {p50:.2f} | {p95:.2f} | {p99:.2f} |"


def measure(
    products: Sequence[Product], queries: Sequence[Known], with_fts: bool
) -> tuple[list[str], list[str]]:
    quality: list[str] = []
    latency: list[str] = []
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        index, search = ours(products, Path(directory))
        print(f"ProductIndex: {len(products):,} products indexed in "
              f"{time.perf_counter() - started:.1f}s", flush=True)  # fmt: skip
        try:
            run_queries(search, queries[:50])  # warm up
            outcomes = run_queries(search, queries)
        finally:
            index.close()
    quality += quality_rows("ProductIndex", queries, outcomes)
    latency.append(latency_row("ProductIndex", len(products), outcomes))
    if with_fts:
        db, fts_search = fts5(products)
        fts_outcomes = run_queries(fts_search, queries)
        db.close()
        quality += quality_rows("SQLite FTS5 bm25", queries, fts_outcomes)
        latency.append(latency_row("SQLite FTS5 bm25", len(products), fts_outcomes))
    return quality, latency


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--per-kind", type=int, default=300, help="known-item queries per kind")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--copies", type=int, default=2, help="catalogue copies for latency")
    args = parser.parse_args(argv)
    products = load_products(args.csv, 1)
    queries = known_item_queries(products, args.per_kind, random.Random(args.seed))
    print(f"{args.csv.name}: {len(products):,} products, {len(queries)} known-item queries; "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
          f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)  # fmt: skip
    quality, latency = measure(products, queries, with_fts=True)
    if args.copies > 1:
        bigger = load_products(args.csv, args.copies)
        quality_big, latency_big = measure(bigger, queries, with_fts=True)
        latency += latency_big
    print("\n| engine | query kind | queries | MRR@10 | hit@1 | hit@10 | empty |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(quality))
    if args.copies > 1:
        print(f"\nThe same at {len(bigger):,} products:\n")
        print("\n".join(quality_big))
    print("\n| engine | products | queries | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|---|")
    print("\n".join(latency))


if __name__ == "__main__":
    main()
