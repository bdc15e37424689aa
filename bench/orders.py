"""Order placement throughput: products, inventory and orders as real processes on free
ports (embedded SQLite), one product stocked for the run, N orders at concurrency C.

    uv run python -m bench.orders --orders 2000 --concurrency 32

Prints orders per second, p50/p95/p99 latency, and the oversell check: stock left plus
units in confirmed orders must equal the stock seeded, and no level may go negative.
The load generator (asyncio + aiohttp, one process) shares the machine with the services,
so on a small machine it takes a share of the CPU the services could have used; its CPU is
reported beside theirs, as is the whole machine's (every process, a database server too).
aiohttp rather than httpx: at concurrency 64 httpx's pool cost 4.6 ms of CPU per order and
was the bottleneck of the run (docs/performance.md, round 6).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from retail.kernel.security import TokenCodec

SECRET = "bench-orders-signing-secret-0123456789-0123456789-0123"
SERVICES = ("categories", "products", "inventory", "orders")
CUSTOMERS = 200
WARM_UP_ORDERS = 50
codec = TokenCodec(SECRET)
ADMIN = {"Authorization": f"Bearer {codec.issue_access('bench-admin', 'admin')}"}


@dataclass(frozen=True, slots=True)
class Options:
    orders: int
    concurrency: int
    workers: int
    keys: bool


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    latencies: list[float]
    statuses: Counter[int]
    # CPU seconds each process spent during the run.
    cpu: dict[str, float]
    # CPU seconds the whole machine spent during the run.
    machine: float = 0.0


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class Stack:
    urls: dict[str, str]
    pids: dict[str, int]


@contextmanager
def services(
    data_dir: Path,
    workers: int,
    database_url: str | None = None,
    *,
    prefix: Sequence[str] = (),
    start_timeout: float = 120.0,
) -> Iterator[Stack]:
    """Products, inventory and orders; categories gets a port nobody listens on. `prefix`
    runs each under another command (valgrind, for bench.instructions)."""
    ports = dict(zip(SERVICES, _free_ports(len(SERVICES)), strict=True))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PORT", "_URL"))}
    env |= {"DATA_DIR": str(data_dir), "JWT_SECRET_KEY": SECRET, "LOG_LEVEL": "WARNING"}
    env |= {"FEED_POLL_SECONDS": "0.1"}
    if database_url:  # e.g. PostgreSQL: every service in schemas of its own for this run
        env |= {"DATABASE_URL": database_url, "DATABASE_SCHEMA_PREFIX": f"bench{os.getpid()}_"}
    env |= {f"{name.upper()}_PORT": str(port) for name, port in ports.items()}
    env |= {f"{name.upper()}_URL": url for name, url in urls.items()}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, count in [("products", 1), ("inventory", workers), ("orders", workers)]:
            command = [sys.executable, "-m", "retail", "serve", name, "--port", str(ports[name])]
            command += ["--workers", str(count)]
            processes[name] = subprocess.Popen([*prefix, *command], env=env)
            _wait_for(f"{urls[name]}/health", timeout=start_timeout)
        yield Stack(urls, {name: process.pid for name, process in processes.items()})
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(30)


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (uvicorn's workers), from /proc (Linux)."""
    total = 0.0
    for candidate in Path("/proc").iterdir():
        if not candidate.name.isdigit():
            continue
        try:
            fields = (candidate / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(candidate.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_by_service(pids: dict[str, int]) -> dict[str, float]:
    if not Path("/proc/self/stat").exists():
        return {}
    return {name: cpu_seconds(pid) for name, pid in pids.items()} | {
        "load generator": time.process_time()
    }


def _wait_for(url: str, headers: dict[str, str] | None = None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def seed(urls: dict[str, str], stock: int) -> str:
    body = {"title": "Benchmark widget", "price": 19.99, "tax_percent": 7.25, "stock": stock}
    made = httpx.post(f"{urls['products']}/api/products", json=body, headers=ADMIN, timeout=10)
    made.raise_for_status()
    product_id = str(made.json()["id"])
    # Inventory learns the product (and its stock) from the products feed.
    _wait_for(f"{urls['inventory']}/api/inventory/{product_id}", ADMIN)
    return product_id


async def place_orders(
    stack: Stack, product_id: str, count: int, options: Options, first: int = 0
) -> Run:
    tokens = [codec.issue_access(f"bench-customer-{n}", "customer") for n in range(CUSTOMERS)]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    queue = iter(range(first, first + count))
    url = f"{stack.urls['orders']}/api/orders"

    async def customer_loop(client: aiohttp.ClientSession) -> None:
        for n in queue:
            headers = {"Authorization": f"Bearer {tokens[n % CUSTOMERS]}"}
            if options.keys:
                headers["Idempotency-Key"] = f"bench-{n}"
            body: dict[str, Any] = {
                "items": [{"product_id": product_id, "quantity": 1}],
                "shipping_address": {"line1": "1 Bench Street", "city": "Testville"},
            }
            started = time.perf_counter()
            async with client.post(url, json=body, headers=headers) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            statuses[response.status] += 1

    connector = aiohttp.TCPConnector(limit=options.concurrency)
    timeout = aiohttp.ClientTimeout(total=60.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        cpu_before = cpu_by_service(stack.pids)
        machine_before = machine_cpu_seconds()
        started = time.perf_counter()
        await asyncio.gather(*(customer_loop(client) for _ in range(options.concurrency)))
        seconds = time.perf_counter() - started
        cpu = {k: v - cpu_before[k] for k, v in cpu_by_service(stack.pids).items()}
        machine = machine_cpu_seconds() - machine_before
        return Run(seconds, latencies, statuses, cpu, machine)


def machine_cpu_seconds() -> float:
    """CPU time every process of the machine spent (all cores, idle and I/O wait excluded),
    from /proc/stat: the services, the load generator, a database server and anything else."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def oversell_report(urls: dict[str, str], product_id: str, seeded: int) -> tuple[bool, str]:
    level = httpx.get(f"{urls['inventory']}/api/inventory/{product_id}", headers=ADMIN).json()
    confirmed = 0
    page = 1
    while True:
        listing = httpx.get(
            f"{urls['orders']}/api/orders",
            params={"status": "confirmed", "limit": 100, "page": page},
            headers=ADMIN,
            timeout=30,
        ).json()
        confirmed += sum(i["quantity"] for o in listing["orders"] for i in o["items"])
        if page >= listing["total_pages"]:
            break
        page += 1
    ok = level["stock"] >= 0 and level["stock"] + confirmed == seeded
    verdict = "OK" if ok else "OVERSOLD OR LOST"
    return (
        ok,
        f"stock left {level['stock']} + confirmed units {confirmed} = seeded {seeded}: {verdict}",
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


def report(run: Run, options: Options) -> str:
    ordered = sorted(run.latencies)
    ms = [1000 * percentile(ordered, f) for f in (0.5, 0.95, 0.99)]
    return "\n".join(
        [
            f"machine: nproc={os.cpu_count()}, python {sys.version.split()[0]}, "
            f"load average at the end {os.getloadavg()[0]:.1f}",
            f"orders: {options.orders} at concurrency {options.concurrency}, "
            f"{options.workers} worker(s) each for inventory and orders, "
            f"Idempotency-Key: {'yes' if options.keys else 'no'}",
            f"answers: {dict(sorted(run.statuses.items()))}",
            f"throughput: {options.orders / run.seconds:.0f} orders/s ({run.seconds:.2f} s)",
            f"latency ms: p50 {ms[0]:.1f}, p95 {ms[1]:.1f}, p99 {ms[2]:.1f}, "
            f"mean {1000 * statistics.fmean(ordered):.1f}",
            "CPU ms per order: "
            + ", ".join(f"{name} {1000 * s / options.orders:.1f}" for name, s in run.cpu.items())
            + f"; total {1000 * sum(run.cpu.values()) / options.orders:.1f}",
            f"machine CPU ms per order (every process, a database server included): "
            f"{1000 * run.machine / options.orders:.1f}",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orders")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="processes of inventory, orders")
    parser.add_argument("--no-keys", dest="keys", action="store_false")
    parser.add_argument(
        "--database-url", help="a server instead of the embedded SQLite, e.g. postgresql+asyncpg://"
    )
    args = parser.parse_args()
    options = Options(args.orders, args.concurrency, args.workers, args.keys)
    seeded = options.orders + WARM_UP_ORDERS
    with (
        tempfile.TemporaryDirectory() as data_dir,
        services(Path(data_dir), args.workers, args.database_url) as stack,
    ):
        product_id = seed(stack.urls, seeded)
        warm = Options(WARM_UP_ORDERS, min(8, options.concurrency), options.workers, options.keys)
        asyncio.run(place_orders(stack, product_id, WARM_UP_ORDERS, warm))
        run = asyncio.run(place_orders(stack, product_id, options.orders, options, WARM_UP_ORDERS))
        ok, oversell = oversell_report(stack.urls, product_id, seeded)
    print(report(run, options))
    print(f"oversell check: {oversell}")
    # A 503 is load shed (a peer call timed out under overload, and the saga released the
    # stock); anything else but a 201 is a fault, as is any unit oversold or lost.
    return 0 if ok and set(run.statuses) <= {201, 503} else 1


if __name__ == "__main__":
    raise SystemExit(main())
