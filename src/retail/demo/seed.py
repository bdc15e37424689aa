"""`retail seed-demo`: fill a running system with a catalogue through the public API.

Going through the API (not the databases) means every service sees the catalogue the way it
would see an admin's work: products reach inventory and search through their feeds. The
products go through the bulk path (`POST /api/products/bulk`, 500 a request), each with a
sku (`demo-000042`), so seeding again with the same arguments changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from tqdm import tqdm

from retail.demo.catalogue import CatalogueCategory, CatalogueProduct, generate_catalogue
from retail.kernel.settings import Settings

CHUNK = 500
# A shop's usual VAT-like rates, spread over the catalogue so totals exercise the rounding.
TAX_RATES = (0, 5.5, 10, 20)


@dataclass(frozen=True, slots=True)
class SeedReport:
    categories: int
    products: int


class SeedError(RuntimeError):
    pass


async def _admin_token(client: httpx.AsyncClient, auth_url: str, email: str, password: str) -> str:
    response = await client.post(
        f"{auth_url}/api/auth/login", json={"email": email, "password": password}
    )
    if response.status_code != 200:
        raise SeedError(f"admin login failed ({response.status_code}): {response.text[:200]}")
    return str(response.json()["access_token"])


async def _create_categories(
    client: httpx.AsyncClient, url: str, categories: Sequence[CatalogueCategory]
) -> dict[str, str]:
    """Create the categories (reusing ones that exist by name); map generated id -> real id."""
    existing = (await client.get(f"{url}/api/categories")).json()["categories"]
    ids = {c["name"].casefold(): c["id"] for c in existing}
    for category in categories:
        if category.name.casefold() not in ids:
            body = {"name": category.name, "description": category.description}
            response = await client.post(f"{url}/api/categories", json=body)
            if response.status_code != 201:
                raise SeedError(f"category {category.name!r}: {response.text[:200]}")
            ids[category.name.casefold()] = response.json()["id"]
    return {c.id: ids[c.name.casefold()] for c in categories}


def _product_body(
    number: int, product: CatalogueProduct, category_ids: dict[str, str]
) -> dict[str, Any]:
    return {
        # The sku makes a second seed with the same arguments change nothing.
        "sku": f"demo-{number:06d}",
        "title": product.title,
        "description": product.description,
        "price": product.price_cents / 100,
        "tax_percent": TAX_RATES[number % len(TAX_RATES)],
        "category_id": category_ids[product.category_id],
        "stock": product.stock,
    }


async def _create_products(
    client: httpx.AsyncClient,
    url: str,
    products: Sequence[CatalogueProduct],
    category_ids: dict[str, str],
) -> int:
    """Through the bulk path (`POST /api/products/bulk`), CHUNK products a request."""
    bodies = [_product_body(n, product, category_ids) for n, product in enumerate(products)]
    progress = tqdm(total=len(bodies), unit="product", desc="products")
    try:
        for start in range(0, len(bodies), CHUNK):
            chunk = bodies[start : start + CHUNK]
            response = await client.post(f"{url}/api/products/bulk", json={"products": chunk})
            if response.status_code != 200:
                raise SeedError(f"products: {response.text[:200]}")
            failed = [r for r in response.json()["results"] if r["status"] == "failed"]
            if failed:
                raise SeedError(f"product {failed[0]['sku']}: {failed[0]['errors']}")
            progress.update(len(chunk))
    finally:
        progress.close()
    return len(products)


async def seed_demo(
    settings: Settings, *, products: int, email: str, password: str, seed: int = 42
) -> SeedReport:
    catalogue = generate_catalogue(products, seed=seed)
    async with httpx.AsyncClient(timeout=30) as client:
        token = await _admin_token(client, settings.url_of("auth"), email, password)
        client.headers["Authorization"] = f"Bearer {token}"
        category_ids = await _create_categories(
            client, settings.url_of("categories"), catalogue.categories
        )
        created = await _create_products(
            client, settings.url_of("products"), catalogue.products, category_ids
        )
    return SeedReport(categories=len(category_ids), products=created)
