"""Categories and products as real processes on free ports: an admin builds a small
catalogue with an image, a customer browses it and fetches the image."""

from __future__ import annotations

import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from PIL import Image

from retail.kernel.security import TokenCodec
from tests.e2e.harness import free_ports, running, serve_args, system_env
from tests.support import SECRET

pytestmark = pytest.mark.e2e

READY_TIMEOUT_SECONDS = 30.0


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while httpx.get(f"{url}/ready", timeout=2.0).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} is not ready")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir: Path = tmp_path_factory.mktemp("catalogue")
    # Inventory gets a port nobody listens on: products keeps retrying its feed meanwhile.
    categories_port, products_port, inventory_port = free_ports(3)
    ports = {"categories": categories_port, "products": products_port, "inventory": inventory_port}
    env = system_env(data_dir, ports, FEED_POLL_SECONDS="0.1")
    urls = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    with (
        running(serve_args("categories", categories_port), env, [urls["categories"]]),
        running(serve_args("products", products_port), env, [urls["products"]]),
    ):
        for service in ("categories", "products"):
            wait_ready(urls[service])
        yield urls


def png() -> bytes:
    out = BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def test_admin_builds_a_catalogue_a_customer_browses_it(catalogue: dict[str, str]) -> None:
    codec = TokenCodec(SECRET)
    admin = {"Authorization": f"Bearer {codec.issue_access('admin-1', 'admin')}"}
    customer = {"Authorization": f"Bearer {codec.issue_access('customer-1', 'customer')}"}
    categories = httpx.Client(base_url=catalogue["categories"], timeout=10.0)
    products = httpx.Client(base_url=catalogue["products"], timeout=10.0)

    category = categories.post("/api/categories", json={"name": "Lamps"}, headers=admin)
    assert category.status_code == 201, category.text
    category_id = category.json()["id"]
    body = {"title": "Desk lamp", "price": 24.90, "tax_percent": 20, "category_id": category_id}
    made = products.post("/api/products", json=body, headers=admin)
    assert made.status_code == 201, made.text
    product_id = made.json()["id"]
    files = {"file": ("lamp.png", png(), "image/png")}
    with_image = products.post(
        f"/api/products/{product_id}/upload-image", files=files, headers=admin
    )
    assert with_image.status_code == 200, with_image.text
    image_url = with_image.json()["image_url"]
    # Relative unless PUBLIC_BASE_URL says where the shop is: never built from a Host header.
    assert image_url.startswith("/media/products/")

    listed_categories = categories.get("/api/categories", headers=customer).json()
    assert [c["name"] for c in listed_categories["categories"]] == ["Lamps"]
    listed = products.get(f"/api/products?category_id={category_id}", headers=customer).json()
    assert listed["total"] == 1
    [product] = listed["products"]
    assert (product["title"], product["price"], product["image_url"]) == (
        "Desk lamp",
        24.9,
        image_url,
    )

    image = products.get(image_url, timeout=10.0)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    with Image.open(BytesIO(image.content)) as served:
        assert (served.format, served.size) == ("PNG", (64, 48))


def test_deleting_a_category_reaches_products_through_the_feed(
    catalogue: dict[str, str],
) -> None:
    admin = {"Authorization": f"Bearer {TokenCodec(SECRET).issue_access('admin-1', 'admin')}"}
    categories = httpx.Client(base_url=catalogue["categories"], timeout=10.0)
    products = httpx.Client(base_url=catalogue["products"], timeout=10.0)
    category_id = categories.post("/api/categories", json={"name": "Rugs"}, headers=admin).json()[
        "id"
    ]
    body = {"title": "Rug", "price": 80, "category_id": category_id}
    product_id = products.post("/api/products", json=body, headers=admin).json()["id"]
    assert categories.delete(f"/api/categories/{category_id}", headers=admin).status_code == 204
    deadline = time.monotonic() + 15.0
    while products.get(f"/api/products/{product_id}").json()["category_id"] is not None:
        assert time.monotonic() < deadline, "products never saw the category go"
        time.sleep(0.1)
