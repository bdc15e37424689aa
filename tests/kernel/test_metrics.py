"""/metrics: request counts and latencies by method, route template and status, the shop's
own figures, who may read it, and several workers summed (multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from retail.categories.config import CategoriesSettings
from retail.categories.main import create_app as create_categories_app
from retail.kernel.metrics import LATENCY_BUCKETS, ProcessTally
from retail.kernel.settings import fresh_metrics_dir
from tests.kernel.shop import Shop, open_shop
from tests.support import SECRET, admin_headers, assert_error, make_settings, serve

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
CATEGORY = "/api/categories/{category_id}"


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path) as opened:
        yield opened


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_requests_are_counted_by_method_route_template_and_status(tmp_path: Path) -> None:
    async with serve(create_categories_app(make_settings(CategoriesSettings, tmp_path))) as client:
        created = await client.post(
            "/api/categories", json={"name": "Pens"}, headers=admin_headers()
        )
        category_id = created.json()["id"]
        before = await scrape(client)  # the registry is the process's: compare differences
        for _ in range(3):  # the second and third are answered from the read cache on SQLite
            assert (await client.get(f"/api/categories/{category_id}")).status_code == 200
        assert (await client.get("/api/categories/no-such-id")).status_code == 404
        assert (await client.get(f"/no/such/route/{category_id}")).status_code == 404
        after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"method": "GET", "route": CATEGORY, "status": "200"}
    assert grew("http_requests_total", **ok) == 3
    assert grew("http_request_duration_seconds_count", **ok) == 3
    assert grew("http_request_duration_seconds_bucket", **ok, le="+Inf") == 3
    assert grew("http_request_duration_seconds_sum", **ok) > 0
    assert grew("http_requests_total", method="GET", route=CATEGORY, status="404") == 1
    assert grew("http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(after, "http_requests_total", method="POST", route="/api/categories", status="201")
    routes = {dict(labels).get("route") for _, labels in after}
    assert not any(category_id in str(route) for route in routes)  # never a raw path


async def test_the_shop_counts_its_orders_reservations_and_releases(shop: Shop) -> None:
    before = await scrape(shop.orders)
    before_stock = await scrape(shop.inventory)
    pen = await shop.product("Gel pen", stock=3)
    placed = await shop.order(pen, 2)
    assert placed.status_code == 201, placed.text
    assert (await shop.order(pen, 2)).status_code == 409  # 1 left
    cancel = await shop.orders.post(f"/api/orders/{placed.json()['id']}/cancel", headers=shop.alice)
    assert cancel.status_code == 200, cancel.text
    after, stock = await scrape(shop.orders), await scrape(shop.inventory)

    def grew(found: Samples, was: Samples, name: str, **labels: str) -> float:
        return value(found, name, **labels) - value(was, name, **labels)

    assert grew(after, before, "retail_orders_total", outcome="confirmed") == 1
    assert grew(after, before, "retail_orders_total", outcome="failed") == 1
    assert grew(after, before, "retail_orders_total", outcome="cancelled") == 1
    reservations = "retail_stock_reservations_total"
    assert grew(stock, before_stock, reservations, outcome="reserved") == 1
    assert grew(stock, before_stock, reservations, outcome="refused") == 1
    assert grew(stock, before_stock, "retail_stock_releases_total", outcome="released") == 1
    # Read from inventory's database when scraped: 3 in stock, at the default threshold 5.
    assert value(stock, "retail_low_stock_products") == 1


async def test_feed_lag_is_zero_once_a_follower_caught_up(shop: Shop) -> None:
    await shop.product("Desk lamp", stock=9)  # caught up by inventory's follower
    found = await scrape(shop.inventory)
    assert value(found, "retail_feed_lag_events", feed="products") == 0
    assert ("retail_feed_lag_seconds", frozenset({("feed", "products")})) in found


async def test_a_metrics_token_is_required_when_set(tmp_path: Path) -> None:
    token = "scrape-" + SECRET[:20]
    settings = make_settings(CategoriesSettings, tmp_path, metrics_token=token)
    async with serve(create_categories_app(settings)) as client:
        assert_error(await client.get("/metrics"), 401, "UNAUTHORIZED")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert_error(wrong, 401, "UNAUTHORIZED")
        found = await scrape(client, Authorization=f"Bearer {token}")
    assert value(found, "http_requests_total", method="GET", route="/metrics", status="401") == 2


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    settings = make_settings(CategoriesSettings, tmp_path, metrics_enabled=False)
    async with serve(create_categories_app(settings)) as client:
        assert_error(await client.get("/metrics"), 404)


def test_the_process_tally_exports_what_prometheus_client_would() -> None:
    """The per-request figures are plain numbers exported when scraped; the families must be
    the ones prometheus-client's Counter and Histogram give for the same observations."""
    observations = [
        ("GET", "/api/products/{product_id}", 200, 0.001),  # exactly on a bucket's bound
        ("GET", "/api/products/{product_id}", 200, 0.0011),
        ("GET", "/api/products/{product_id}", 200, 0.3),
        ("GET", "/api/products/{product_id}", 404, 0.0004),
        ("POST", "/api/orders", 201, 12.0),  # past the last bound: only +Inf
        ("BREW", "unmatched", 404, 0.002),  # an unknown method is OTHER
    ]
    tally = ProcessTally()
    reference = CollectorRegistry()
    labels = ("method", "route", "status")
    counter = Counter("http_requests", "HTTP requests answered", labels, registry=reference)
    histogram = Histogram(
        "http_request_duration_seconds",
        "Time from a request's arrival to its answer",
        labels,
        buckets=LATENCY_BUCKETS,
        registry=reference,
    )
    for method, route, status, seconds in observations:
        tally.observe(method, route, status, seconds)
        shown = (method if method != "BREW" else "OTHER", route, str(status))
        counter.labels(*shown).inc()
        histogram.labels(*shown).observe(seconds)
    tally.unit_opened("write")
    tally.unit_opened("read")
    tally.unit_closed("read")

    mine = CollectorRegistry()
    mine.register(tally)
    exported = samples(generate_latest(mine).decode())
    expected = {
        key: found
        for key, found in samples(generate_latest(reference).decode()).items()
        if not key[0].endswith("_created")
    }
    assert {k: v for k, v in exported.items() if not k[0].startswith("retail_")} == expected
    assert value(exported, "retail_db_units_open", mode="write") == 1
    assert value(exported, "retail_db_units_open", mode="read") == 0


# --- several workers ----------------------------------------------------------------------

WORKER = """
import asyncio, sys
import httpx
from retail.categories.main import create_app

async def main(requests, scrape):
    app = create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            for _ in range(requests):
                assert (await client.get("/health")).status_code == 200
            if scrape:
                print((await client.get("/metrics")).text)

asyncio.run(main(int(sys.argv[1]), sys.argv[2] == "scrape"))
"""


def _worker(data_dir: Path, metrics_dir: Path, requests: int, *, scrape: bool = False) -> str:
    """A worker process of one service, as `retail serve --workers N` starts them."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))},
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "DATA_DIR": str(data_dir),
        "JWT_SECRET_KEY": SECRET,
        "RETAIL_ENV": "test",
        "LOG_LEVEL": "ERROR",
        "FOLLOW_REVOCATIONS": "false",
        "DATABASE_URL": "",
    }
    mode = "scrape" if scrape else "serve"
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(requests), mode],
        env=env,
        cwd=data_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_workers_counts_are_summed_by_any_worker(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    _worker(tmp_path, metrics_dir, 3)
    found = samples(_worker(tmp_path, metrics_dir, 2, scrape=True))
    health = {"method": "GET", "route": "/health", "status": "200"}
    assert value(found, "http_requests_total", **health) == 5
    assert value(found, "http_request_duration_seconds_count", **health) == 5
    # The first worker is gone: its units of work no longer count as open.
    assert value(found, "retail_db_units_open", mode="read") == 0


def test_a_fresh_metrics_dir_holds_nothing_of_an_earlier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    stale = tmp_path / "categories-8003" / "counter_123.db"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    directory = fresh_metrics_dir("categories", 8003)
    assert directory == stale.parent
    assert list(directory.iterdir()) == []
