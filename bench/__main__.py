"""`uv run python -m bench`: every service against the bare-framework ceiling, in one run.

Starts the six services on the embedded default (temporary DATA_DIR, free ports) and a bare
FastAPI app on the same server stack (uvicorn + uvloop + httptools), seeds a catalogue with
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
from pathlib import Path

from bench.load import Result, Target, have_wrk, run
from bench.stack import Stack

DEFAULT_LEVELS = (16, 64)


def _row(result: Result, ceiling: float | None) -> str:
    ratio = f"{result.rps / ceiling:.2f}" if ceiling else "-"
    return (
        f"| {result.target} | {result.concurrency} | {result.rps:,.0f} | {result.p50_ms:.1f} "
        f"| {result.p99_ms:.1f} | {ratio} | {result.errors} |"
    )


def render(results: list[Result], products: int, seconds: int) -> str:
    ceilings = {r.concurrency: r.rps for r in results if r.target == "bare app /static"}
    tool = results[0].tool if results else "-"
    lines = [
        f"{products:,} products, {seconds}s per cell, load generator: {tool}",
        "",
        "| endpoint | concurrency | requests/s | p50 ms | p99 ms | ratio to bare | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_row(r, ceilings.get(r.concurrency)) for r in results]
    return "\n".join(lines)


def targets(stack: Stack) -> list[Target]:
    return [
        Target("bare app /static", stack.bare_url, ["/static"]),
        Target("GET /api/products (page)", stack.url("products"), stack.product_list_paths()),
        Target("GET /api/products/{id}", stack.url("products"), stack.product_paths()),
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
            "POST /api/orders",
            stack.url("orders"),
            ["/api/orders"],
            method="POST",
            bodies=stack.order_bodies(),
            headers=stack.customer_headers(),
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--levels", type=int, nargs="+", default=list(DEFAULT_LEVELS))
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.md"))
    args = parser.parse_args()
    if not have_wrk():
        print("wrk not found (apt-get install wrk): using the slower Python load generator")
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp)) as stack:
        stack.seed(args.products)
        results = [
            run(target, level, args.seconds) for target in targets(stack) for level in args.levels
        ]
        login = Target(
            "POST /api/auth/login (bcrypt)",
            stack.url("auth"),
            ["/api/auth/login"],
            method="POST",
            bodies=[json.dumps(stack.customer_credentials())],
        )
        results.append(run(login, 4, args.seconds))
        oversell = stack.oversell_report()
    table = render(results, args.products, args.seconds) + "\n\n" + oversell
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
