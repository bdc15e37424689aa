"""`uv run python -m bench.instructions [--orders]`: what a request costs in CPU instructions,
counted by valgrind's callgrind, so that a difference of 1-2% shows on a machine whose load
moves requests/s by a factor of two.

`--orders-page N`: the customer's own orders page instead (10 a page, pages 1 to 5 in
turn), for a customer with N orders, written straight into the database before the orders
service starts alone under callgrind (no feeds followed, nothing recovered).

`--orders`: the order path instead. Products, inventory and orders each run under
callgrind (bench.orders' stack); one stocked product; then `--requests` orders placed one
after another by rotating customers, with every process counted from the first order until
the followers have applied the last one's events (a fixed settling time, the same for
every tree measured). Prints instructions per order, by process and in all.

Starts `retail serve products` under callgrind (nothing counted until asked), once per
setting (metrics on and off by default, both at once: the counts do not depend on the
machine's load), creates one product, then counts the server's instructions over a window of
`--requests` GETs of that product through uvicorn: answered from the read cache, and with a
query string never sent before (routed, read from SQLite, serialised). Each window runs
twice; the table gives instructions per request for each. Only the server is counted, not
the client. Needs valgrind (`apt-get install valgrind`); about four minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.orders import codec, seed, services
from bench.stack import wait_until_ok
from retail.kernel.db import engine_for, migrate
from retail.kernel.security import TokenCodec
from retail.orders.adapters.sql import OrdersUnitOfWork
from retail.orders.config import OrdersSettings
from retail.orders.domain import Order, OrderLine
from retail.orders.main import MIGRATIONS

SECRET = "bench-instructions-signing-secret-long-enough-for-hs256"

WINDOWS = ("cached", "uncached", "cached, again", "uncached, again")
SETTINGS = {"metrics on": {}, "metrics off": {"METRICS_ENABLED": "false"}}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _total(dump: Path) -> int:
    out = subprocess.run(["callgrind_annotate", str(dump)], capture_output=True, text=True)
    line = next(x for x in out.stdout.splitlines() if "PROGRAM TOTALS" in x)
    return int(line.split()[0].replace(",", ""))


def _serve_under_callgrind(
    service: str, data_dir: Path, env_extra: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """`retail serve <service>` under callgrind, counting nothing until asked: the process,
    its port and the prefix of its dump files."""
    port = _free_port()
    env = {
        **os.environ,
        **env_extra,
        "DATA_DIR": str(data_dir),
        "JWT_SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    out = data_dir / "callgrind"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}.%p",
        sys.executable,
        "-m",
        "retail",
        "serve",
        service,
        "--port",
        str(port),
    ]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return server, port, out


def count(env_extra: dict[str, str], requests: int) -> dict[str, float]:
    """Instructions per request of each window, for one setting."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**env_extra, "FOLLOW_REVOCATIONS": "false"}
        server, port, out = _serve_under_callgrind("products", Path(tmp), env)
        base = f"http://127.0.0.1:{port}"
        found: dict[str, float] = {}
        try:
            # Under callgrind the service starts in minutes, and answers slowly.
            wait_until_ok([base + "/ready"], 600, request_timeout=30)
            with httpx.Client(base_url=base, timeout=60) as client:
                body = {"title": "Tea bags", "price": 3.5, "description": "Assam", "stock": 5}
                admin = {"Authorization": f"Bearer {TokenCodec(SECRET).issue_access('a', 'admin')}"}
                created = client.post("/api/products", json=body, headers=admin)
                created.raise_for_status()
                path = f"/api/products/{created.json()['id']}"
                for number, window in enumerate(WINDOWS, start=1):
                    unique = window.startswith("uncached")

                    def query(
                        n: int, unique: bool = unique, number: int = number
                    ) -> dict[str, str] | None:
                        return {"n": f"{number}-{n}"} if unique else None

                    for n in range(-20, 0):  # warm: the cache keeps the answer, caches fill
                        client.get(path, params=query(n)).raise_for_status()
                    _callgrind(server.pid, "-z")
                    _callgrind(server.pid, "-i", "on")
                    for n in range(requests):
                        client.get(path, params=query(n)).raise_for_status()
                    _callgrind(server.pid, "-i", "off")
                    _callgrind(server.pid, "-d", window)
                    found[window] = _total(Path(f"{out}.{server.pid}.{number}")) / requests
        finally:
            server.terminate()
            server.wait(120)
        return found


SETTLE_SECONDS = 5.0  # under the catalogue view's 10 s of rest, so it stays awake


def count_orders(orders: int) -> dict[str, float]:
    """Instructions per order placed, by service process, under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind"
        prefix = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        prefix.append(f"--callgrind-out-file={out}.%p")
        with services(Path(tmp), 1, prefix=prefix, start_timeout=600) as stack:
            product = seed(stack.urls, orders + 100)
            tokens = [codec.issue_access(f"customer-{n}", "customer") for n in range(20)]
            body = {"items": [{"product_id": product, "quantity": 1}], "shipping_address": "1 A St"}
            with httpx.Client(base_url=stack.urls["orders"], timeout=60) as client:

                def place(n: int) -> None:
                    headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
                    client.post("/api/orders", json=body, headers=headers).raise_for_status()

                for n in range(20):  # warm: connections, caches, the catalogue view
                    place(n)
                time.sleep(SETTLE_SECONDS)
                for pid in stack.pids.values():
                    _callgrind(pid, "-z")
                    _callgrind(pid, "-i", "on")
                for n in range(orders):
                    place(n)
                time.sleep(SETTLE_SECONDS)  # the followers apply the last events
                for pid in stack.pids.values():
                    _callgrind(pid, "-i", "off")
                    _callgrind(pid, "-d", "orders")
            found = {
                name: _total(Path(f"{out}.{pid}.1")) / orders for name, pid in stack.pids.items()
            }
    return found


PAGE_CUSTOMER = "bench-page-customer"


async def _fill_orders(data_dir: Path, count: int) -> None:
    """`count` confirmed orders of one customer, written straight into the orders database
    (placing them through the saga under callgrind would take an hour)."""
    settings = OrdersSettings(_env_file=None, data_dir=data_dir, jwt_secret_key=SECRET)
    engine = engine_for(settings)
    await migrate(engine, MIGRATIONS)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    line = OrderLine("bench-product", "Tea bags", 350, 1, 500)
    async with OrdersUnitOfWork(engine) as uow:
        for n in range(count):
            at = start + timedelta(seconds=n)
            order = Order(
                id=str(uuid.UUID(int=n)),
                order_number=f"RP-{n:08d}",
                user_id=PAGE_CUSTOMER,
                status="confirmed",
                lines=(line,),
                shipping_address={"line1": "1 Bench Street", "city": "Testville"},
                created_at=at,
                updated_at=at,
                reservation_id=str(uuid.UUID(int=n)),
                recovery_lease_until=at,
            )
            await uow.orders.add(order)
        await uow.commit()
    await engine.dispose()


def count_orders_page(orders: int, requests: int) -> float:
    """Instructions per request of the customer's own orders page (10 a page, pages 1-5), for
    a customer with `orders` orders, the orders service alone under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_fill_orders(Path(tmp), orders))
        alone = {  # no peers to follow, nothing to recover: only the requests are counted
            "FOLLOW_FEEDS": "false",
            "FOLLOW_REVOCATIONS": "false",
            "RECOVER_PENDING": "false",
        }
        server, port, out = _serve_under_callgrind("orders", Path(tmp), alone)
        base = f"http://127.0.0.1:{port}"
        token = TokenCodec(SECRET).issue_access(PAGE_CUSTOMER, "customer")
        try:
            # /health: /ready would wait for products and inventory, which are not started.
            wait_until_ok([base + "/health"], 600, request_timeout=30)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, timeout=60, headers=headers) as client:

                def page(n: int) -> None:
                    answer = client.get("/api/orders", params={"page": n % 5 + 1, "limit": 10})
                    answer.raise_for_status()
                    assert answer.json()["total"] == orders

                for n in range(20):
                    page(n)
                _callgrind(server.pid, "-z")
                _callgrind(server.pid, "-i", "on")
                for n in range(requests):
                    page(n)
                _callgrind(server.pid, "-i", "off")
                _callgrind(server.pid, "-d", "page")
                return _total(Path(f"{out}.{server.pid}.1")) / requests
        finally:
            server.terminate()
            server.wait(120)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    parser.add_argument("--requests", type=int, default=300, help="per counted window")
    parser.add_argument("--orders", action="store_true", help="the order path instead")
    parser.add_argument(
        "--orders-page",
        type=int,
        metavar="ORDERS",
        help="the orders page of a customer with this many orders instead",
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind not found (apt-get install valgrind)")
        return 1
    if args.orders_page is not None:
        per_page = count_orders_page(args.orders_page, args.requests)
        print(f"instructions per orders page (10 of {args.orders_page:,} orders): {per_page:,.0f}")
        return 0
    if args.orders:
        per_order = count_orders(args.requests)
        parts = ", ".join(f"{name} {count:,.0f}" for name, count in per_order.items())
        print(f"instructions per order: {sum(per_order.values()):,.0f} ({parts})")
        return 0
    with ThreadPoolExecutor(len(SETTINGS)) as pool:
        futures = {name: pool.submit(count, env, args.requests) for name, env in SETTINGS.items()}
        results = {name: future.result() for name, future in futures.items()}
    names = list(SETTINGS)
    print(f"| GET /api/products/{{id}} | {' | '.join(names)} | {names[0]} / {names[1]} |")
    print("|---|" + "---|" * (len(names) + 1))
    for window in WINDOWS:
        first, second = (results[name][window] for name in names)
        print(f"| {window} | {first:,.0f} | {second:,.0f} | {first / second:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
