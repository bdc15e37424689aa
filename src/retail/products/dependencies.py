"""`Annotated` dependencies: the use cases' `ProductsDeps` (whose units of work are of
whichever back end the kernel opened), the settings and the local image files, loading a
product by id (404 if absent), and the list query. All are async: FastAPI runs a plain `def`
dependency in its thread pool."""

from __future__ import annotations

from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, Request

from retail.kernel.events import Event, EventReader
from retail.kernel.money import to_cents
from retail.kernel.pagination import Pagination
from retail.kernel.queries import QueryString
from retail.kernel.security import Credentials, Tokens, admin_principal, current_principal
from retail.kernel.storage import service_deps
from retail.products import service
from retail.products.adapters.images import LocalImageStore
from retail.products.config import ProductsSettings
from retail.products.domain import Product, ProductQuery
from retail.products.ports import ProductsDeps
from retail.products.ports import Units as Units  # where the tests look for it
from retail.products.schemas import ListParameters, invalid_query, sort_of

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


async def product_query(
    paging: Pagination,
    params: Annotated[ListParameters, Depends(QueryString(ListParameters))],
    credentials: Credentials,
    tokens: Tokens,
) -> ProductQuery:
    low, high = params.min_price, params.max_price
    if low is not None and high is not None and low > high:
        raise invalid_query("min_price", "must not be above max_price")
    if params.include_inactive:  # the token is verified only when it matters
        await admin_principal(await current_principal(credentials, tokens))
    return ProductQuery(
        offset=paging.offset,
        limit=paging.limit,
        category_id=params.category_id or None,
        min_price_cents=None if low is None else to_cents(low),
        max_price_cents=None if high is None else to_cents(high),
        sort=sort_of(params.sort, params.order),
        include_inactive=params.include_inactive,
        # Trimmed as they are when stored; empty counts as absent, as for every filter.
        sku=(params.sku or "").strip() or None,
        brand=(params.brand or "").strip() or None,
    )


ListQuery = Annotated[ProductQuery, Depends(product_query)]


async def event_reader(deps: Deps) -> EventReader:
    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(deps, after=after, limit=limit)

    return read
