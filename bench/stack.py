"""The system under measurement: six services and the bare app as real processes."""

from __future__ import annotations

import collections
import compileall
import csv
import json
import os
import random
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlencode

import httpx

from retail.kernel.settings import SERVICE_PORTS

SECRET = "bench-signing-secret-0123456789-0123456789-0123456789"
ADMIN = {"email": "bench-admin@shop.test", "password": "bench-admin-pass"}
# `retail import`'s arguments for ../shared/datasets/bigbasket/products.csv (its SOURCE.md).
BIGBASKET_IMPORT = (
    "--create-categories",
    *("--map", "sku=id", "--map", "category=subcategory", "--ignore", "category"),
)
CUSTOMER = {"email": "bench-customer@shop.test", "password": "bench-customer-pass", "name": "B"}
QUERIES = ["shirt", "blue cotton", "runing shoes", "organic", "kitchen knife", "lamp", "wool"]


def _last_title(catalogue: Path) -> str:
    with catalogue.open(newline="", encoding="utf-8") as rows:
        return str(collections.deque(csv.DictReader(rows), maxlen=1)[0]["title"])


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


def compile_installed() -> None:
    """Bytecode for the installed packages, as `./run_all_services.sh` has it (`uv sync
    --compile-bytecode`). `uv run python -m bench` does not compile, and where no bytecode
    is written (PYTHONDONTWRITEBYTECODE) every process would compile its imports at each
    start: /ready would measure the compiler (2.7 s on a first start instead of 1.3)."""
    compileall.compile_dir(sysconfig.get_paths()["purelib"], quiet=2)


def wait_until_ok(urls: list[str], timeout: float, *, request_timeout: float = 2.0) -> None:
    """Until every URL answers 200, or TimeoutError after `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    # One client for every poll: a new one builds an SSL context each time (30-50 ms of CPU),
    # which on two cores competes with the start-up being timed.
    with httpx.Client(timeout=request_timeout) as client:
        for url in urls:
            while True:
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(url)
                time.sleep(0.2)


class Stack:
    def __init__(self, data_dir: Path) -> None:
        *service_ports, bare_port = _free_ports(len(SERVICE_PORTS) + 1)
        self.ports = dict(zip(SERVICE_PORTS, service_ports, strict=True))
        self.bare_url = f"http://127.0.0.1:{bare_port}"
        self.env = {
            **os.environ,
            "DATA_DIR": str(data_dir),
            "JWT_SECRET_KEY": SECRET,
            "LOG_LEVEL": "WARNING",
            "ADMIN_EMAIL": ADMIN["email"],
            "ADMIN_PASSWORD": ADMIN["password"],
        }
        for service, port in self.ports.items():
            self.env[f"{service.upper()}_PORT"] = str(port)
            self.env[f"{service.upper()}_URL"] = self.url(service)
        self._processes: list[subprocess.Popen[bytes]] = []
        self.product_ids: list[str] = []
        self._customer_token = ""
        self._stocked_product = ""
        self._stock_before = 0
        self.ready_seconds = 0.0
        self._titles: list[str] = []

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def services_pid(self) -> int:
        """The `retail up` process: every service runs under it."""
        return self._processes[0].pid

    @property
    def bare_pid(self) -> int:
        return self._processes[1].pid

    def service_of(self, url: str) -> str | None:
        """The service a URL points at (None: the bare app)."""
        return next((s for s in SERVICE_PORTS if url == self.url(s)), None)

    def __enter__(self) -> Self:
        python = sys.executable
        compile_installed()
        started = time.monotonic()
        self._processes.append(subprocess.Popen([python, "-m", "retail", "up"], env=self.env))
        try:
            self._wait([self.url(s) + "/ready" for s in SERVICE_PORTS])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.ready_seconds = time.monotonic() - started
        bare = [
            python,
            "-m",
            "uvicorn",
            "bench.bare_app:app",
            "--port",
            self.bare_url[-5:],
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        self._processes.append(subprocess.Popen(bare, env=self.env))
        try:
            self._wait([self.bare_url + "/static"])
        except BaseException:
            self.__exit__(None, None, None)  # never leave the services running
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            process.wait(30)

    def _wait(self, urls: list[str], timeout: float = 90.0) -> None:
        wait_until_ok(urls, timeout)

    def seed(self, products: int, catalogue: Path | None = None) -> None:
        """The generated demo catalogue, or a real one imported with `retail import` (the
        BigBasket file's columns, as README's worked example maps them)."""
        if catalogue is None:
            command = ["seed-demo", "--products", str(products)]
        else:
            command = ["import", str(catalogue), *BIGBASKET_IMPORT, "--no-progress"]
        subprocess.run([sys.executable, "-m", "retail", *command], env=self.env, check=True)
        listing = httpx.get(f"{self.url('products')}/api/products", params={"limit": 100}).json()
        self.product_ids = [p["id"] for p in listing["products"]]
        self._titles = [p["title"] for p in listing["products"]]
        self._prepare_orders()
        self._wait_for_search(_last_title(catalogue) if catalogue else None)

    def _prepare_orders(self) -> None:
        auth = self.url("auth")
        httpx.post(f"{auth}/api/auth/register", json=CUSTOMER)
        login = httpx.post(f"{auth}/api/auth/login", json=self.customer_credentials())
        self._customer_token = login.json()["access_token"]
        admin = httpx.post(f"{auth}/api/auth/login", json=ADMIN).json()["access_token"]
        self._stocked_product = self.product_ids[0]
        self._stock_before = 10_000_000
        response = httpx.patch(
            f"{self.url('inventory')}/api/inventory/{self._stocked_product}",
            json={"stock": self._stock_before, "reason": "benchmark"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        response.raise_for_status()

    def _wait_for_search(self, last_title: str | None, timeout: float = 600.0) -> None:
        """Until search finds something, or, for an imported file, its last row: search
        applies products' feed in order, so the rest is indexed too."""
        query = last_title or "a"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = httpx.get(f"{self.url('search')}/api/search", params={"q": query})
            hits = answer.json() if answer.status_code == 200 else []
            if hits and (last_title is None or last_title in {h["title"] for h in hits}):
                return
            time.sleep(1)
        raise TimeoutError("search never indexed the catalogue")

    def product_paths(self) -> list[str]:
        return [f"/api/products/{pid}" for pid in self.product_ids]

    def product_list_paths(self) -> list[str]:
        return [f"/api/products?page={page}&limit=20" for page in range(1, 6)]

    def search_paths(self) -> list[str]:
        """Varied queries: the fixed ones, and one to three words of each listed title."""
        rng = random.Random(7)
        queries = list(QUERIES)
        for title in self._titles:
            words = title.split()
            start = rng.randrange(len(words))
            queries.append(" ".join(words[start : start + rng.randint(1, 3)]).lower())
        rng.shuffle(queries)
        return [f"/api/search?{urlencode({'q': q, 'limit': 20})}" for q in queries]

    def orders_page_paths(self) -> list[str]:
        """The customer's own orders, 10 a page (the order cells ran first and filled them)."""
        return [f"/api/orders?page={page}&limit=10" for page in range(1, 6)]

    def order_bodies(self) -> list[str]:
        line = {"product_id": self._stocked_product, "quantity": 1}
        return [json.dumps({"items": [line], "shipping_address": "1 Bench Street, Testville"})]

    def customer_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._customer_token}"}

    def customer_credentials(self) -> dict[str, str]:
        return {"email": CUSTOMER["email"], "password": CUSTOMER["password"]}

    def oversell_report(self) -> str:
        """Stock left + units in confirmed orders (one unit each) must equal the stock seeded."""
        token = httpx.post(f"{self.url('auth')}/api/auth/login", json=ADMIN).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        level = httpx.get(
            f"{self.url('inventory')}/api/inventory/{self._stocked_product}", headers=headers
        ).json()
        orders = httpx.get(
            f"{self.url('orders')}/api/orders",
            params={"limit": 1, "status": "confirmed"},
            headers=headers,
        ).json()
        left, confirmed = int(level["stock"]), int(orders["total"])
        verdict = "OK" if left + confirmed == self._stock_before and left >= 0 else "MISMATCH"
        return (
            f"Oversell check: {verdict}: {left:,} left + {confirmed:,} confirmed one-unit orders"
            f" = {left + confirmed:,}, seeded {self._stock_before:,}"
        )
