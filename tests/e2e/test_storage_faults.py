"""A full disk, for real: the services' SQLite files on a small tmpfs that is then filled.

Every request that needs a write answers 503 SERVICE_UNAVAILABLE in the error format (never
a 500, never a dropped connection), /ready says the database is failing, and once space is
back the same processes serve again, and /ready recovers, without a restart.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.orders.processes import ADMIN, Processes, Shop, customer
from tests.support import assert_error

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        bool(os.environ.get("TEST_DATABASE_URL") or os.environ.get("TEST_MONGODB_URI")),
        reason="a full disk under SQLite files (faults on the others: tests/kernel)",
    ),
]
DISK_SIZE = "2m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_SIZE: mounting needs root (or CAP_SYS_ADMIN); otherwise skip."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@contextlib.contextmanager
def disk_filled(disk: Path) -> Iterator[None]:
    """Every free byte of `disk` taken by one file, given back at the end of the block."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):  # big writes, then what is left
            with contextlib.suppress(OSError):
                while True:
                    os.write(descriptor, b"\0" * size)
    finally:
        os.close(descriptor)
    try:
        yield
    finally:
        filler.unlink()


async def stocked_product(shop: Shop) -> str:
    body = {"title": "Lamp", "price": 9.99, "tax_percent": 20, "stock": 1000}
    made = await shop.http.post(shop.url("products", "/api/products"), json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    product_id = str(made.json()["id"])

    async def stocked() -> bool:
        level = shop.url("inventory", f"/api/inventory/{product_id}")
        return (await shop.http.get(level, headers=ADMIN)).status_code == 200

    await shop.eventually(stocked, "inventory to stock the product")
    return product_id


async def set_stock(shop: Shop, product_id: str, stock: int) -> httpx.Response:
    return await shop.http.patch(
        shop.url("inventory", f"/api/inventory/{product_id}"),
        json={"stock": stock, "reason": "stock count " + "x" * 180},
        headers=ADMIN,
    )


async def until_refused(
    write: Callable[[int], Awaitable[httpx.Response]], attempts: int = 500
) -> httpx.Response:
    """Repeat `write` until it is refused; each answer before is a success, never a 500."""
    for n in range(attempts):
        answer = await write(n)
        if answer.status_code != 200 and answer.status_code != 201:
            return answer
    raise AssertionError(f"{attempts} writes on a full disk all succeeded")


async def test_a_full_disk_is_a_503_reported_by_ready_and_heals_without_restart(
    small_disk: Path,
) -> None:
    with Processes(small_disk, {"FEED_POLL_SECONDS": "0.1"}) as processes:
        for service in ("products", "inventory", "orders"):
            processes.start(service)
        shop = Shop(processes)
        try:
            product = await stocked_product(shop)
            assert (await shop.place(customer(1), (product, 1))).status_code == 201
            with disk_filled(small_disk):
                # A write fails once its WAL file must grow: within a few hundred commits.
                placed = await until_refused(lambda n: shop.place(customer(n), (product, 1)))
                assert_error(placed, 503, "SERVICE_UNAVAILABLE")
                patched = await until_refused(lambda n: set_stock(shop, product, n))
                assert_error(patched, 503, "SERVICE_UNAVAILABLE")
                for service in ("orders", "inventory"):
                    ready = await shop.http.get(shop.url(service, "/ready"))
                    assert_error(ready, 503, "SERVICE_UNAVAILABLE")
                    assert ready.json()["details"]["checks"]["database"].startswith("failed")

            async def healed() -> bool:
                answers = [
                    await shop.http.get(processes.url(s) + "/ready") for s in processes.running
                ]
                return all(a.status_code == 200 for a in answers)

            await shop.eventually(healed, "every service ready again")
            assert (await shop.place(customer(99), (product, 1))).status_code == 201
            patched = await set_stock(shop, product, 5)
            assert patched.status_code == 200, patched.text
        finally:
            await shop.aclose()
        assert all(p.poll() is None for p in processes.running.values())  # never restarted
