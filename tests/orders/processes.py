"""Products, inventory and orders as real processes on free ports, and an HTTP client that
drives them like a storefront and an admin console: what the order e2e tests share.

Categories gets a port nobody listens on: products keeps retrying its feed meanwhile, and
nothing here needs categories.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from retail.kernel.security import TokenCodec
from tests.e2e.harness import free_ports, stop, system_env, wait_until_ready
from tests.support import SECRET, FreshHeaders

SERVICES = ("categories", "products", "inventory", "orders")
REPO_ROOT = Path(__file__).resolve().parents[2]
# What `retail serve` gives uvicorn besides the app and the port.
UVICORN_AS_SERVE = [
    *("--loop", "asyncio", "--http", "httptools", "--no-access-log", "--no-proxy-headers"),
    *("--timeout-keep-alive", "65", "--timeout-graceful-shutdown", "5"),
]
POLL_SECONDS = 0.1
# Generous: the machine running the tests may be busy with other work.
EVENTUALLY_SECONDS = 90.0
Json = dict[str, Any]

_codec = TokenCodec(SECRET)
ADMIN = FreshHeaders(lambda: {"Authorization": f"Bearer {_codec.issue_access('admin-1', 'admin')}"})


def customer(n: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {_codec.issue_access(f'customer-{n}', 'customer')}"}


@dataclass
class Processes:
    """The services of one test system; `start` and `kill` them one at a time."""

    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(init=False)
    running: dict[str, subprocess.Popen[bytes]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, service: str, *, workers: int = 1, app: str | None = None, **env: str) -> None:
        """`retail serve <service>`; or, given `app` (a test-only factory such as
        `tests.orders.faulty_app:create_app`), that app on the service's port."""
        environment = system_env(self.data_dir, self.ports, **{**self.extra_env, **env})
        port = ["--port", str(self.ports[service]), "--workers", str(workers)]
        if app is None:
            command = [sys.executable, "-m", "retail", "serve", service, *port]
        else:
            environment["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")])
            )
            command = [sys.executable, "-m", "uvicorn", app, "--factory", *port, *UVICORN_AS_SERVE]
        process = subprocess.Popen(command, env=environment)
        self.running[service] = process
        wait_until_ready([self.url(service)], process)

    def kill(self, service: str) -> None:
        """SIGKILL: no shutdown, no flush; what a crash or an OOM kill does."""
        process = self.running.pop(service)
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def wait_exited(self, service: str, timeout: float = 30.0) -> int:
        return self.running.pop(service).wait(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in self.running.values():
            stop(process)
        self.running.clear()


class Shop:
    """An async HTTP client over the system's public APIs."""

    def __init__(self, processes: Processes) -> None:
        self._processes = processes
        self.http = httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=200))

    def url(self, service: str, path: str) -> str:
        return self._processes.url(service) + path

    async def aclose(self) -> None:
        await self.http.aclose()

    async def product(self, title: str, *, stock: int, price: float = 9.99) -> str:
        """A new product, once inventory (following products' feed) has its stock."""
        body = {"title": title, "price": price, "tax_percent": 20, "stock": stock}
        made = await self.http.post(self.url("products", "/api/products"), json=body, headers=ADMIN)
        assert made.status_code == 201, made.text
        product_id = str(made.json()["id"])
        await self.eventually(lambda: self._has_level(product_id), f"inventory of {title}")
        return product_id

    async def _has_level(self, product_id: str) -> bool:
        path = f"/api/inventory/{product_id}"
        return (await self.http.get(self.url("inventory", path), headers=ADMIN)).status_code == 200

    async def stock(self, product_id: str) -> int:
        path = f"/api/inventory/{product_id}"
        response = await self.http.get(self.url("inventory", path), headers=ADMIN)
        assert response.status_code == 200, response.text
        return int(response.json()["stock"])

    async def history(self, product_id: str) -> list[Json]:
        path = f"/api/inventory/{product_id}/history?limit=100"
        response = await self.http.get(self.url("inventory", path), headers=ADMIN)
        assert response.status_code == 200, response.text
        items: list[Json] = response.json()["items"]
        return items

    async def place(
        self, headers: dict[str, str], *lines: tuple[str, int], key: str | None = None
    ) -> httpx.Response:
        items = [{"product_id": p, "quantity": q} for p, q in lines]
        sent = headers if key is None else {**headers, "Idempotency-Key": key}
        return await self.http.post(
            self.url("orders", "/api/orders"),
            json={"items": items, "shipping_address": "1 Main St, Springfield"},
            headers=sent,
        )

    async def orders(self, status: str | None = None) -> list[Json]:
        """Every order (as an admin sees them), all pages."""
        found: list[Json] = []
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "limit": 100}
            if status is not None:
                params["status"] = status
            response = await self.http.get(
                self.url("orders", "/api/orders"), params=params, headers=ADMIN
            )
            assert response.status_code == 200, response.text
            found += response.json()["orders"]
            if page >= response.json()["total_pages"]:
                return found
            page += 1

    async def confirmed_units(self, product_id: str) -> int:
        return sum(
            item["quantity"]
            for order in await self.orders("confirmed")
            for item in order["items"]
            if item["product_id"] == product_id
        )

    @staticmethod
    async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
        """Poll `check` until it is true, or fail naming `what` after a generous while."""
        try:
            async with asyncio.timeout(EVENTUALLY_SECONDS):
                while True:  # remote state: nothing to wait on but the next look
                    if await check():
                        return
                    await asyncio.sleep(POLL_SECONDS)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None
