"""Catalogue import benchmark (not a test): `retail import` of a generated catalogue into
the running system, until every product's stock is at inventory and the last product is
found by search, then the same file again (every row unchanged).

    uv run python -m bench.importing --products 50000
    uv run python -m bench.importing --products 50000 \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

With --database-url, a fresh database is created beside the one named (and dropped after).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.procs import usage_by_service
from bench.stack import ADMIN, SECRET, _free_ports
from retail.demo.catalogue import generate_catalogue
from retail.kernel.settings import SERVICE_PORTS

COLUMNS = ("sku", "title", "description", "brand", "price", "tax_percent", "stock", "category")


def write_catalogue(path: Path, products: int) -> str:
    """The generated shop as an import file; returns the last row's sku."""
    catalogue = generate_catalogue(products, seed=5)
    names = {c.id: c.name for c in catalogue.categories}
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for n, p in enumerate(catalogue.products):
            brand = p.title.split()[0]
            price = f"{p.price_cents // 100}.{p.price_cents % 100:02d}"
            category = names[p.category_id]
            writer.writerow(
                [f"SKU-{n:06d}", p.title, p.description, brand, price, "20", p.stock or 1, category]
            )
    return f"SKU-{products - 1:06d}"


def _env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    ports = dict(zip(SERVICE_PORTS, _free_ports(len(SERVICE_PORTS)), strict=True))
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "JWT_SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        "ADMIN_EMAIL": ADMIN["email"],
        "ADMIN_PASSWORD": ADMIN["password"],
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    for service, port in ports.items():
        env[f"{service.upper()}_PORT"] = str(port)
        env[f"{service.upper()}_URL"] = f"http://127.0.0.1:{port}"
    return env


def _wait(check: object, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():  # type: ignore[operator]
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(what)


def _run_import(env: dict[str, str], path: Path) -> float:
    started = time.monotonic()
    command = [sys.executable, "-m", "retail", "import", str(path), "--create-categories"]
    subprocess.run([*command, "--no-progress"], env=env, check=True)
    return time.monotonic() - started


def measure(products: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        path = data_dir / "catalogue.csv"
        last_sku = write_catalogue(path, products)
        env = _env(data_dir, database_url)
        up = subprocess.Popen([sys.executable, "-m", "retail", "up"], env=env)
        try:
            urls = [env[f"{s.upper()}_URL"] for s in SERVICE_PORTS]
            _wait(
                lambda: all(httpx.get(u + "/ready").status_code == 200 for u in urls), 120, "ready"
            )
            _report(env, path, products, last_sku, up.pid)
        finally:
            up.terminate()
            up.wait(30)


def _report(env: dict[str, str], path: Path, products: int, last_sku: str, root: int) -> None:
    before = usage_by_service(root, tuple(SERVICE_PORTS))
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    first = _run_import(env, path)
    client = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = client.ru_utime + client.ru_stime - client_before.ru_utime - client_before.ru_stime
    login = httpx.post(env["AUTH_URL"] + "/api/auth/login", json=ADMIN).json()
    admin = {"Authorization": f"Bearer {login['access_token']}"}
    last = httpx.get(env["PRODUCTS_URL"] + "/api/products", params={"sku": last_sku}).json()
    product = last["products"][0]

    def stocked() -> bool:
        answer = httpx.get(
            env["INVENTORY_URL"] + "/api/inventory", params={"limit": 1}, headers=admin
        )
        return bool(answer.json()["total"] == products)

    def searchable() -> bool:
        answer = httpx.get(
            env["SEARCH_URL"] + "/api/search", params={"q": product["title"], "limit": 100}
        )
        return any(hit["id"] == product["id"] for hit in answer.json())

    inventory_done = _wait(stocked, 600, "inventory") - started
    search_done = _wait(searchable, 600, "search") - started
    after = usage_by_service(root, tuple(SERVICE_PORTS))
    again = _run_import(env, path)
    print(
        f"{products} products: import {first:.1f} s; stock at inventory {inventory_done:.1f} s; "
        f"searchable {search_done:.1f} s; second run (all unchanged) {again:.1f} s"
    )
    cpu = {s: after[s].cpu_seconds - before[s].cpu_seconds for s in after if s in before}
    spent = ", ".join(f"{s} {seconds:.1f}" for s, seconds in cpu.items() if seconds >= 0.1)
    print(f"CPU seconds until searchable: {spent}, import command {client_cpu:.1f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores shared)")


async def _database(url: str, name: str, *, create: bool) -> str:
    import asyncpg

    plain = url.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(plain)
    try:
        await connection.execute(f'{"CREATE" if create else "DROP"} DATABASE "{name}"')
    finally:
        await connection.close()
    return url.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.importing")
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--database-url", help="PostgreSQL (default: the embedded SQLite)")
    args = parser.parse_args()
    if not args.database_url:
        measure(args.products, None)
        return
    name = f"bench_import_{os.getpid()}"
    url = asyncio.run(_database(args.database_url, name, create=True))
    try:
        measure(args.products, url)
    finally:
        asyncio.run(_database(args.database_url, name, create=False))


if __name__ == "__main__":
    main()
