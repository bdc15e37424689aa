"""`Annotated` dependencies: units of work, the peers and stores from app state, loading a
product by id (404 if absent), and the list query. The unit of work is of whichever back
end the kernel opened. All are async: FastAPI runs a plain `def` dependency in its thread
pool."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, Query, Request

from retail.kernel.errors import ValidationFailed
from retail.kernel.events import Event, EventReader
from retail.kernel.money import to_cents
from retail.kernel.pagination import Pagination
from retail.kernel.storage import UnitOfWorkFactory, read_only_unit_of_work, unit_of_work
from retail.products import service
from retail.products.adapters.images import LocalImageStore
from retail.products.config import ProductsSettings
from retail.products.domain import Product, ProductQuery, ProductSort
from retail.products.ports import CategoryDirectory, ImageStore, UnitOfWork

Units = UnitOfWorkFactory[UnitOfWork]

UoW = Annotated[UnitOfWork, Depends(unit_of_work)]
ReadUoW = Annotated[UnitOfWork, Depends(read_only_unit_of_work)]


async def settings_of(request: Request) -> ProductsSettings:
    settings: ProductsSettings = request.app.state.settings
    return settings


AppSettings = Annotated[ProductsSettings, Depends(settings_of)]


async def category_directory(request: Request) -> CategoryDirectory:
    directory: CategoryDirectory = request.app.state.categories
    return directory


Categories = Annotated[CategoryDirectory, Depends(category_directory)]


async def local_images(request: Request, settings: AppSettings) -> LocalImageStore:
    # Without PUBLIC_BASE_URL, image URLs are built from the URL this request came to.
    base_url = settings.public_base_url or str(request.base_url)
    return LocalImageStore(request.app.state.media_root, base_url)


LocalImages = Annotated[LocalImageStore, Depends(local_images)]


async def image_store(request: Request, local: LocalImages) -> ImageStore:
    remote: ImageStore | None = request.app.state.remote_images
    return remote or local


Images = Annotated[ImageStore, Depends(image_store)]


async def image_limiter(request: Request) -> CapacityLimiter:
    limiter: CapacityLimiter = request.app.state.image_limiter
    return limiter


ImageLimiter = Annotated[CapacityLimiter, Depends(image_limiter)]


async def valid_product(product_id: str, uow: ReadUoW) -> Product:
    return await service.get_product(uow, product_id)


ExistingProduct = Annotated[Product, Depends(valid_product)]

MoneyQuery = Annotated[
    Decimal | None,
    Query(ge=0, le=Decimal("99999999.99"), decimal_places=2, description="e.g. 19.99"),
]


async def product_query(
    paging: Pagination,
    category_id: Annotated[str | None, Query(max_length=64)] = None,
    sort: ProductSort = ProductSort.NEWEST,
    min_price: MoneyQuery = None,
    max_price: MoneyQuery = None,
) -> ProductQuery:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise ValidationFailed(
            "Invalid input: min_price is above max_price",
            details={
                "fields": [
                    {
                        "field": "query.min_price",
                        "message": "must not be above max_price",
                        "type": "value_error",
                    }
                ]
            },
        )
    return ProductQuery(
        offset=paging.offset,
        limit=paging.limit,
        category_id=category_id,
        min_price_cents=None if min_price is None else to_cents(min_price),
        max_price_cents=None if max_price is None else to_cents(max_price),
        sort=sort,
    )


ListQuery = Annotated[ProductQuery, Depends(product_query)]


async def event_reader(uow: ReadUoW) -> EventReader:
    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(uow, after, limit)

    return read
