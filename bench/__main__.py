"""`uv run python -m bench`: every service against the bare-framework ceiling, in one run.

Starts the six services on the embedded default (temporary DATA_DIR, free ports) and a bare
FastAPI app on uvicorn + uvloop + httptools (the reference the targets are set against; the
services run asyncio's loop, docs/architecture.md), seeds a catalogue with
`retail seed-demo`, then drives each endpoint with the same load generator at a few
concurrency levels and prints one table: requests/s, p50, p99, and the ratio of requests/s to
the bare app at the same concurrency. Absolute figures drift on a shared machine; the ratio
measured side by side is what to compare across runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench.load import Result, Target, have_wrk, run
from bench.procs import cpu_seconds, cpu_total, usage_by_service
from bench.stack import Stack
from retail.kernel.settings import SERVICE_PORTS

DEFAULT_LEVELS = (16, 64)
BARE = "bare app /static"
ORDER_TARGET = "POST /api/orders"
PRODUCT_TARGET = "GET /api/products/{id}"
ORDERS_ALONGSIDE = 16  # the concurrency of the orders placed during the product reads
DURING_ORDERS = f"GET /api/products/{{id}}, while orders are placed at {ORDERS_ALONGSIDE}"
SERVICES = tuple(SERVICE_PORTS)


def _row(result: Result, ceiling: float | None, cpu_us: float | None) -> str:
    ratio = f"{result.rps / ceiling:.2f}" if ceiling else "-"
    cpu = f"{cpu_us:,.0f}" if cpu_us else "-"
    return (
        f"| {result.target} | {result.concurrency} | {result.rps:,.0f} | {result.p50_ms:.1f} "
        f"| {result.p99_ms:.1f} | {ratio} | {cpu} | {result.errors} |"
    )


def render(
    results: list[Result], catalogue: str, seconds: int, cpu_us: dict[tuple[str, int], float]
) -> str:
    ceilings = {r.concurrency: r.rps for r in results if r.target == BARE}
    tool = results[0].tool if results else "-"
    lines = [
        f"{catalogue}, {seconds}s per cell, load generator: {tool}",
        "",
        "| endpoint | concurrency | requests/s | p50 ms | p99 ms | ratio to bare "
        "| server CPU µs/request | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        _row(r, ceilings.get(r.concurrency), cpu_us.get((r.target, r.concurrency))) for r in results
    ]
    return "\n".join(lines)


def targets(stack: Stack) -> list[Target]:
    return [
        Target(BARE, stack.bare_url, ["/static"]),
        Target("GET /api/products (page)", stack.url("products"), stack.product_list_paths()),
        Target(PRODUCT_TARGET, stack.url("products"), stack.product_paths()),
        Target("GET /api/categories", stack.url("categories"), ["/api/categories"]),
        Target(
            "GET /api/products (page), uncached",
            stack.url("products"),
            stack.product_list_paths(),
            unique=True,
        ),
        Target(
            "GET /api/products/{id}, uncached",
            stack.url("products"),
            stack.product_paths(),
            unique=True,
        ),
        Target(
            "GET /api/categories, uncached",
            stack.url("categories"),
            ["/api/categories"],
            unique=True,
        ),
        Target("GET /api/search?q=", stack.url("search"), stack.search_paths()),
        Target(
            ORDER_TARGET,
            stack.url("orders"),
            ["/api/orders"],
            method="POST",
            bodies=stack.order_bodies(),
            headers=stack.customer_headers(),
        ),
        Target(
            "GET /api/orders (the customer's own, 10 a page)",
            stack.url("orders"),
            stack.orders_page_paths(),
            headers=stack.customer_headers(),
        ),
    ]


@dataclass(frozen=True, slots=True)
class Cell:
    result: Result
    # CPU of the process that answered (the service, or the bare app) per request: the cost,
    # which the machine's other load moves far less than it moves requests/s.
    cpu_us: float | None
    note: str


def measure(stack: Stack, target: Target, level: int, seconds: int) -> Cell:
    """One cell; for orders also the CPU every service process spent per order placed."""
    service = stack.service_of(target.base_url)
    before = usage_by_service(stack.services_pid, SERVICES)
    bare_before = cpu_seconds(stack.bare_pid)
    result = run(target, level, seconds)
    after = usage_by_service(stack.services_pid, SERVICES)
    if not before or result.requests == 0:
        return Cell(result, None, "")
    spent = {name: after[name].cpu_seconds - before[name].cpu_seconds for name in after}
    answering = spent.get(service, 0.0) if service else cpu_seconds(stack.bare_pid) - bare_before
    cpu_us = 1e6 * answering / result.requests
    if target.name != ORDER_TARGET:
        return Cell(result, cpu_us, "")
    per_order = {name: 1000 * cpu / result.requests for name, cpu in spent.items() if cpu > 0}
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(per_order.items()))
    note = (
        f"CPU ms per order at concurrency {level}: {sum(per_order.values()):.2f} "
        f"(every service process, feed followers included: {parts})"
    )
    return Cell(result, cpu_us, note)


def during_orders(reads: Target, orders: Target, level: int, seconds: int) -> tuple[Result, str]:
    """Product pages read while orders are placed (at `ORDERS_ALONGSIDE`), both at once.
    Every order commits a stock change in products: the read cache must keep the other
    products' pages through it (docs/architecture.md, "Own commits drop only what they
    change"). The row's ratio is against the bare app alone; the orders take CPU too."""
    placed: list[Result] = []
    placing = threading.Thread(target=lambda: placed.append(run(orders, ORDERS_ALONGSIDE, seconds)))
    placing.start()
    try:
        result = run(replace(reads, name=DURING_ORDERS), level, seconds)
    finally:
        placing.join()
    orders_per_second = placed[0].rps if placed else 0.0
    return result, f"Orders placed during the reads at {level}: {orders_per_second:,.0f}/s"


def idle_and_memory(stack: Stack, idle_seconds: float) -> str:
    """Resident memory of each service after the run, and CPU while nothing happens."""
    before = usage_by_service(stack.services_pid, SERVICES)
    if not before:
        return "(no /proc: memory and idle CPU not measured)"
    time.sleep(idle_seconds)
    after = usage_by_service(stack.services_pid, SERVICES)
    idle = (cpu_total(after) - cpu_total(before)) / idle_seconds
    rss = ", ".join(
        f"{name} {after[name].rss_bytes / 2**20:.0f} / {after[name].pss_bytes / 2**20:.0f}"
        for name in SERVICES
    )
    total = sum(one.rss_bytes for one in after.values()) / 2**20
    total_pss = sum(one.pss_bytes for one in after.values()) / 2**20
    # By service: a follower still applying the run's events is not idle, and shows here.
    shares = ", ".join(
        f"{name} {100 * (after[name].cpu_seconds - before[name].cpu_seconds) / idle_seconds:.2f}"
        for name in SERVICES
    )
    return (
        f"Memory after the run, MiB, RSS / PSS (bench/procs.py): {rss};"
        f" all six {total:.0f} / {total_pss:.0f}\n\n"
        f"Idle CPU of the six services over {idle_seconds:.0f} s: {100 * idle:.1f}% of one core"
        f" ({shares})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--levels", type=int, nargs="+", default=list(DEFAULT_LEVELS))
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.md"))
    parser.add_argument("--only", nargs="*", default=[], help="cells whose name contains one")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument(
        "--catalogue",
        type=Path,
        help="import this BigBasket-shaped CSV (e.g. ../shared/datasets/bigbasket/products.csv)"
        " instead of seeding --products generated ones",
    )
    args = parser.parse_args()
    if not have_wrk():
        print("wrk not found (apt-get install wrk): using the slower Python load generator")
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp)) as stack:
        stack.seed(args.products, args.catalogue)
        chosen = [
            target
            for target in targets(stack)
            if target.name == BARE or not args.only or any(o in target.name for o in args.only)
        ]
        cells = [
            measure(stack, target, level, args.seconds)
            for target in chosen
            for level in args.levels
        ]
        results = [cell.result for cell in cells]
        by_name = {target.name: target for target in chosen}
        if PRODUCT_TARGET in by_name and ORDER_TARGET in by_name:
            for level in args.levels:
                result, note = during_orders(
                    by_name[PRODUCT_TARGET], by_name[ORDER_TARGET], level, args.seconds
                )
                results.append(result)
                cells.append(Cell(result, None, note))
        cpu_us = {
            (cell.result.target, cell.result.concurrency): cell.cpu_us
            for cell in cells
            if cell.cpu_us is not None
        }
        notes = [cell.note for cell in cells if cell.note]
        login = Target(
            "POST /api/auth/login (bcrypt)",
            stack.url("auth"),
            ["/api/auth/login"],
            method="POST",
            bodies=[json.dumps(stack.customer_credentials())],
        )
        if not args.only or any(o in login.name for o in args.only):
            results.append(run(login, 4, args.seconds))
        oversell = stack.oversell_report()
        footer = [
            f"All six services answered /ready {stack.ready_seconds:.1f} s after `retail up`",
            *notes,
            oversell,
            idle_and_memory(stack, args.idle_seconds),
        ]
    catalogue = str(args.catalogue) if args.catalogue else f"{args.products:,} products"
    table = render(results, catalogue, args.seconds, cpu_us) + "\n\n" + "\n\n".join(footer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
