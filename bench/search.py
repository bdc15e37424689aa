"""The search service on a generated catalogue, measured through its HTTP API.

    uv run python -m bench.search --products 50000 --per-kind 60

The app runs in this process (httpx over ASGI, so no sockets: the HTTP stack of FastAPI,
the middleware and the JSON answers are measured, uvicorn is not). Fake products,
categories and inventory services serve the generated catalogue as their change feeds, as
`retail.demo.catalogue` makes it: one `product.created` and one `stock.changed` per
product. The script prints:

- index build time: `POST /internal/reindex`, so the followers read every feed page by
  page and apply each page as one index commit, as a rebuild or a first start does;
- how long a changed product takes to become searchable once polled;
- p50 / p95 / p99 latency of `GET /api/search` (limit 10) over known-item queries (exact,
  1 typo, 2 typos, prefix, accent/case), as-you-type prefixes, and filtered queries, and of
  `GET /api/search/suggest`;
- known-item success at 1 and at 10, per kind.

Latency is wall time on this machine, one request at a time; the load average is printed
before and after, because the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from retail.demo.catalogue import (
    Catalogue,
    CatalogueProduct,
    KnownItemQuery,
    QueryKind,
    broad_queries,
    generate_catalogue,
    known_item_queries,
)
from retail.kernel.security import TokenCodec
from retail.search.config import SearchSettings
from retail.search.main import create_app

SECRET = "bench-search-signing-secret-0123456789-0123456789-01234"
TOP = 10
UPDATES = 20


class Feeds:
    """The three peers' feeds over the generated catalogue, behind httpx.MockTransport."""

    def __init__(self, catalogue: Catalogue) -> None:
        now = datetime.now(UTC).isoformat()
        self.events: dict[str, list[dict[str, Any]]] = {"categories": [], "inventory": []}
        for category in catalogue.categories:
            data = {"id": category.id, "name": category.name, "logo": None}
            self._add("categories", "category.created", category.id, data, now)
        self.events["products"] = []
        for product in catalogue.products:
            self.product(product, "product.created")
            stock = {"product_id": product.id, "stock": product.stock, "change": product.stock}
            self._add("inventory", "stock.changed", product.id, stock, now)

    def product(self, product: CatalogueProduct, event_type: str) -> None:
        data = {
            "id": product.id,
            "title": product.title,
            "description": product.description,
            "price": product.price_cents / 100,
            "tax_percent": 20.0,
            "image_url": None,
            "category_id": product.category_id,
            "stock": product.stock,
            "add_ons": [],
            "combos": [],
            "created_at": product.created_at,
            "price_cents": product.price_cents,
            "tax_bp": 2000,
        }
        self._add("products", event_type, product.id, data, product.created_at)

    def _add(self, feed: str, kind: str, key: str, data: dict[str, Any], at: str) -> None:
        seq = len(self.events[feed]) + 1
        event = {"seq": seq, "type": kind, "key": key, "data": data, "occurred_at": at}
        self.events[feed].append(event)

    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        return {feed: httpx.MockTransport(self._handler(feed)) for feed in self.events}

    def _handler(self, feed: str) -> Any:
        def handle(request: httpx.Request) -> httpx.Response:
            after, limit = int(request.url.params["after"]), int(request.url.params["limit"])
            page = self.events[feed][after : after + limit]  # seq n is at position n - 1
            body = {"events": page, "last_seq": page[-1]["seq"] if page else after}
            return httpx.Response(200, content=orjson.dumps(body))

        return handle


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    latencies_ms: list[float]

    def render(self) -> str:
        cuts = statistics.quantiles(self.latencies_ms, n=100)
        count = len(self.latencies_ms)
        return f"| {self.label} | {count} | {cuts[49]:.1f} | {cuts[94]:.1f} | {cuts[98]:.1f} |"


async def timed_get(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> Any:
    started = time.perf_counter()
    response = await client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:200]}")
    return elapsed, response.json()


async def known_items(
    client: httpx.AsyncClient, queries: Sequence[KnownItemQuery]
) -> tuple[list[float], dict[QueryKind, list[int | None]]]:
    latencies: list[float] = []
    ranks: dict[QueryKind, list[int | None]] = {}
    for query in queries:
        elapsed, found = await timed_get(client, "/api/search", {"q": query.text, "limit": TOP})
        latencies.append(elapsed)
        ids = [product["id"] for product in found]
        rank = ids.index(query.product_id) if query.product_id in ids else None
        ranks.setdefault(query.kind, []).append(rank)
    return latencies, ranks


async def latencies_of(
    client: httpx.AsyncClient, path: str, many: Sequence[dict[str, Any]]
) -> list[float]:
    return [(await timed_get(client, path, params))[0] for params in many]


def filtered(
    catalogue: Catalogue, queries: Sequence[KnownItemQuery], count: int
) -> list[dict[str, Any]]:
    rng = random.Random(3)
    categories = [c.id for c in catalogue.categories]
    chosen = rng.sample(list(queries), min(count, len(queries)))
    return [
        {"q": q.text, "limit": TOP, "category_id": rng.choice(categories), "min_price": "10",
         "max_price": "200", "in_stock": "true"}
        for q in chosen
    ]  # fmt: skip


async def searchable_after_change(
    app: FastAPI, client: httpx.AsyncClient, feeds: Feeds, catalogue: Catalogue
) -> float:
    """Median time for one poll of the products feed to make a retitled product findable."""
    follower = app.state.followers["products"]
    timings: list[float] = []
    for n, product in enumerate(catalogue.products[:UPDATES]):
        word = f"quokkaberry{n}"
        feeds.product(_retitled(product, word), "product.updated")
        started = time.perf_counter()
        await follower.catch_up()
        _, found = await timed_get(client, "/api/search", {"q": word})
        timings.append((time.perf_counter() - started) * 1000)
        if not found or found[0]["id"] != product.id:
            raise RuntimeError(f"{word}: the changed product is not searchable")
    return statistics.median(timings)


def _retitled(product: CatalogueProduct, word: str) -> CatalogueProduct:
    return CatalogueProduct(
        product.id,
        f"{product.title} {word}",
        product.description,
        product.price_cents,
        product.category_id,
        product.stock,
        product.created_at,
    )


def success_table(ranks: dict[QueryKind, list[int | None]]) -> list[str]:
    lines = ["| query kind | queries | @1 | @10 |", "|---|---|---|---|"]
    every: list[int | None] = []
    for kind, kind_ranks in ranks.items():
        every += kind_ranks
        lines.append(_success_row(str(kind), kind_ranks))
    lines.append(_success_row("all known-item", every))
    return lines


def _success_row(label: str, ranks: Sequence[int | None]) -> str:
    at_1 = sum(r == 0 for r in ranks) / len(ranks)
    at_10 = sum(r is not None for r in ranks) / len(ranks)
    return f"| {label} | {len(ranks)} | {at_1:.0%} | {at_10:.0%} |"


async def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    catalogue = generate_catalogue(args.products, seed=args.seed)
    queries = known_item_queries(catalogue, args.per_kind, seed=args.seed + 4)
    as_you_type = broad_queries(catalogue, args.as_you_type, seed=args.seed + 6)
    feeds = Feeds(catalogue)
    print(
        f"{args.products:,} products, {len(queries)} known-item queries ({args.per_kind} per "
        f"kind), {len(as_you_type)} as-you-type (also sent to suggest), {args.filtered} "
        "filtered; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
        f"{_load()}; catalogue made in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as data_dir:
        settings = SearchSettings(
            _env_file=None,
            data_dir=Path(data_dir),
            jwt_secret_key=SECRET,
            follow_feeds=False,
            log_level="WARNING",
            log_format="text",
        )
        app = create_app(settings, transports=feeds.transports())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://search", timeout=3600.0
            ) as client:
                await measure(app, client, feeds, catalogue, queries, as_you_type, args)
    print(f"\nload average after the run: {_load()}")


async def measure(
    app: FastAPI,
    client: httpx.AsyncClient,
    feeds: Feeds,
    catalogue: Catalogue,
    queries: Sequence[KnownItemQuery],
    as_you_type: Sequence[str],
    args: argparse.Namespace,
) -> None:
    service = {"Authorization": f"Bearer {TokenCodec(SECRET).issue_service('bench')}"}
    started, cpu = time.perf_counter(), time.process_time()
    rebuilt = await client.post("/internal/reindex", headers=service)
    build_s, build_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    result = rebuilt.json()
    print(
        f"\nindex build (POST /internal/reindex): {build_s:.1f}s ({build_cpu_s:.1f}s of CPU) for "
        f"{result['events_applied']:,} feed events, {result['products_indexed']:,} products"
    )
    for query in queries[:20]:  # warm up before timing
        await client.get("/api/search", params={"q": query.text, "limit": TOP})
    known_ms, ranks = await known_items(client, queries)
    typing_params = [{"q": text, "limit": TOP} for text in as_you_type]
    rows = [
        Row("known-item", known_ms),
        Row("as-you-type", await latencies_of(client, "/api/search", typing_params)),
        Row(
            "filtered (category, price, in stock)",
            await latencies_of(client, "/api/search", filtered(catalogue, queries, args.filtered)),
        ),
    ]
    rows.append(Row("all searches", [ms for row in rows for ms in row.latencies_ms]))
    rows.append(Row("suggest", await latencies_of(client, "/api/search/suggest", typing_params)))
    change_ms = await searchable_after_change(app, client, feeds, catalogue)
    print(f"a retitled product searchable after one poll: median {change_ms:.0f} ms")
    print("\n| GET | requests | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|")
    print("\n".join(row.render() for row in rows))
    print()
    print("\n".join(success_table(ranks)))


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--per-kind", type=int, default=60, help="known-item queries per kind")
    parser.add_argument("--as-you-type", type=int, default=100)
    parser.add_argument("--filtered", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
