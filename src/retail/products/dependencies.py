"""`Annotated` dependencies: the use cases' `ProductsDeps` (whose units of work are of
whichever back end the kernel opened), the settings and the local image files, loading a
product by id (404 if absent), and the list query. All are async: FastAPI runs a plain `def`
dependency in its thread pool."""

from __future__ import annotations

from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, Query, Request

from retail.kernel.events import Event, EventReader
from retail.kernel.money import PriceFilter, to_cents
from retail.kernel.pagination import Pagination
from retail.kernel.security import Credentials, Tokens, admin_principal, current_principal
from retail.kernel.storage import service_deps
from retail.products import service
from retail.products.adapters.images import LocalImageStore
from retail.products.config import ProductsSettings
from retail.products.domain import Product, ProductQuery
from retail.products.ports import ProductsDeps
from retail.products.ports import Units as Units  # where the tests look for it
from retail.products.schemas import invalid_query, sort_of

# Built once in the lifespan; the use cases open their own units of work from it.
Deps = Annotated[ProductsDeps, Depends(service_deps)]


async def settings_of(request: Request) -> ProductsSettings:
    settings: ProductsSettings = request.app.state.settings
    return settings


AppSettings = Annotated[ProductsSettings, Depends(settings_of)]


async def local_images(request: Request) -> LocalImageStore:
    """The image files this process serves (built in the lifespan)."""
    local: LocalImageStore = request.app.state.local_images
    return local


LocalImages = Annotated[LocalImageStore, Depends(local_images)]


async def image_limiter(request: Request) -> CapacityLimiter:
    limiter: CapacityLimiter = request.app.state.image_limiter
    return limiter


ImageLimiter = Annotated[CapacityLimiter, Depends(image_limiter)]


async def valid_product(product_id: str, deps: Deps) -> Product:
    """The product, active or not: for admins' routes."""
    return await service.get_product(deps, product_id=product_id)


ExistingProduct = Annotated[Product, Depends(valid_product)]


MoneyQuery = Annotated[PriceFilter | None, Query(description="e.g. 19.99")]


async def product_query(
    paging: Pagination,
    credentials: Credentials,
    tokens: Tokens,
    category_id: Annotated[str | None, Query(max_length=64)] = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=32,
            description="newest, created_at, price, title, name (or price_asc, price_desc)",
        ),
    ] = None,
    order: Annotated[
        str | None, Query(max_length=8, description="asc or desc; each sort has a default")
    ] = None,
    min_price: MoneyQuery = None,
    max_price: MoneyQuery = None,
    include_inactive: Annotated[
        bool, Query(description="Admins only: list inactive products too")
    ] = False,
    sku: Annotated[
        str | None, Query(max_length=64, description="The product with this sku")
    ] = None,
    brand: Annotated[
        str | None, Query(max_length=100, description="Products of this brand")
    ] = None,
) -> ProductQuery:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise invalid_query("min_price", "must not be above max_price")
    if include_inactive:  # the token is verified only when it matters
        await admin_principal(await current_principal(credentials, tokens))
    return ProductQuery(
        offset=paging.offset,
        limit=paging.limit,
        category_id=category_id,
        min_price_cents=None if min_price is None else to_cents(min_price),
        max_price_cents=None if max_price is None else to_cents(max_price),
        sort=sort_of(sort, order),
        include_inactive=include_inactive,
        # Trimmed as they are when stored; empty counts as absent, as for the other filters.
        sku=(sku or "").strip() or None,
        brand=(brand or "").strip() or None,
    )


ListQuery = Annotated[ProductQuery, Depends(product_query)]


async def event_reader(deps: Deps) -> EventReader:
    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(deps, after=after, limit=limit)

    return read
