"""HTTP layer: parse, call a use case, shape the answer. No queries, no commits here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse, StreamingResponse
from starlette.convertors import StringConvertor, register_url_convertor

from retail.kernel.errors import NotFound
from retail.kernel.openapi import DESCRIPTIONS
from retail.kernel.pagination import Pagination
from retail.kernel.responses import model_response
from retail.kernel.security import AdminUser, Credentials, InternalCaller, Viewer
from retail.products import bulk, export, images, service
from retail.products.adapters.images import CONTENT_TYPES, IMMUTABLE, MEDIA_PATH
from retail.products.dependencies import (
    AppSettings,
    Deps,
    ExistingProduct,
    ImageLimiter,
    ListQuery,
    LocalImages,
)
from retail.products.exceptions import ImageTooLarge
from retail.products.ports import ProductsDeps
from retail.products.schemas import (
    BulkRequest,
    BulkResponse,
    LookupItem,
    LookupRequest,
    LookupResult,
    ProductCreate,
    ProductList,
    ProductRead,
    ProductUpdate,
    bulk_item,
)


class ProductIdConvertor(StringConvertor):
    """A product id in a path: anything but the catalogue's own words (`bulk`, `export`), so
    that `/api/products/export` is not also `/api/products/{product_id}`: its `Allow` names
    only its own methods, and `DELETE /api/products/export` is a 405, not a 404."""

    regex = r"(?!(?:bulk|export)$)[^/]+"


register_url_convertor("product_id", ProductIdConvertor())

router = APIRouter(prefix="/api/products", tags=["products"])
internal_router = APIRouter(prefix="/internal/products", tags=["internal"])
media_router = APIRouter(prefix=MEDIA_PATH, tags=["media"])

_READ_CHUNK = 64 * 1024
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not signed in"},
    403: {"description": "Not an admin"},
    404: {"description": "No such product"},
    409: {"description": "SKU_TAKEN: another product has this sku"},
    422: {"description": "Invalid input, or UNKNOWN_CATEGORY"},
    503: {"description": "The categories service is unavailable"},
}
_BULK_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _ERRORS[401],
    403: _ERRORS[403],
    409: {"description": "SKU_TAKEN: a concurrent request stored one of the skus first"},
    422: {"description": "Not a list of at most 1,000 items (items are checked one by one)"},
    503: _ERRORS[503],
}


@router.get("", response_model=ProductList)
async def list_products(query: ListQuery, paging: Pagination, deps: Deps) -> Response:
    """Active products only, unless an admin asks for `include_inactive=true`."""
    found = await service.list_products(deps, query=query)
    # Serialised once: FastAPI would validate the page again (kernel/responses.py).
    answer = model_response(ProductList.of(found, paging))
    if query.include_inactive:
        _private(answer)
    return answer


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The catalogue in import's columns"},
        401: _ERRORS[401],
        403: _ERRORS[403],
        503: {"description": "The categories service is unavailable"},
    },
)
async def export_products(
    _admin: AdminUser,
    deps: Deps,
    _format: Annotated[
        Literal["csv"], Query(alias="format", description="csv, the only one")
    ] = "csv",
) -> StreamingResponse:
    """Every product, inactive ones too, in the columns `retail import` reads: export then
    import changes nothing. Streamed a page at a time."""
    names = await export.category_names(deps)
    return StreamingResponse(
        export.export_csv(deps, names=names),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="products.csv"',
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/bulk", response_model=BulkResponse, responses=_BULK_ERRORS)
async def bulk_upsert(
    body: BulkRequest,
    admin: AdminUser,
    credentials: Credentials,
    deps: Deps,
    atomic: Annotated[bool, Query(description="All items stored, or none")] = False,
    create_categories: Annotated[
        bool, Query(description="Create the categories items name that do not exist")
    ] = False,
) -> Response:
    """Up to 1,000 products, upserted by sku. Each item gets its own result; valid items are
    stored even when others fail, unless `atomic=true`."""
    items = [bulk_item(index, raw) for index, raw in enumerate(body.products)]
    result = await bulk.upsert_products(
        deps,
        items=items,
        atomic=atomic,
        create_categories=create_categories,
        bearer=credentials.credentials if credentials else "",
    )
    # Serialised once: FastAPI would validate a thousand results again (response_model still
    # documents the answer).
    return model_response(BulkResponse.of(result))


@router.get("/{product_id:product_id}", response_model=ProductRead, responses={404: _ERRORS[404]})
async def get_product(product_id: str, deps: Deps, viewer: Viewer) -> Response:
    """An inactive product is a 404, except to admins."""
    # The storefront's most frequent read: one dependency for the caller (not a chain of
    # scheme, codec and check) and the answer serialised once (kernel/responses.py).
    product = await service.get_visible_product(deps, product_id=product_id, viewer=viewer)
    answer = model_response(ProductRead.of(product))
    if not product.is_active:
        _private(answer)
    return answer


def _private(response: Response) -> None:
    # An admin's view: the read cache (kernel/cache.py) and any HTTP cache in front must
    # not keep it for the next caller of the same URL.
    response.headers["Cache-Control"] = "private, no-store"


@router.post("", response_model=ProductRead, status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def create_product(body: ProductCreate, deps: Deps, _admin: AdminUser) -> ProductRead:
    return ProductRead.of(await service.create_product(deps, draft=body.to_draft()))


@router.patch("/{product_id:product_id}", response_model=ProductRead, responses=_ERRORS)
async def update_product(
    product_id: str,
    body: ProductUpdate,
    deps: Deps,
    _admin: AdminUser,
) -> ProductRead:
    changes = body.to_changes()
    updated = await service.update_product(deps, product_id=product_id, changes=changes)
    return ProductRead.of(updated)


@router.delete(
    "/{product_id:product_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS
)
async def delete_product(product_id: str, deps: Deps, _admin: AdminUser) -> None:
    await service.delete_product(deps, product_id=product_id)


@router.post(
    "/{product_id:product_id}/upload-image",
    response_model=ProductRead,
    responses={
        **_ERRORS,
        413: {"description": "The file is over the size limit (PAYLOAD_TOO_LARGE)"},
        415: {"description": "Not a JPEG, PNG, WebP or GIF (UNSUPPORTED_MEDIA_TYPE)"},
        422: {"description": "Damaged or truncated (INVALID_IMAGE), too many pixels"},
    },
)
async def upload_image(
    _admin: AdminUser,  # first: who may upload is decided before anything is looked up
    product: ExistingProduct,
    file: Annotated[UploadFile, File(description="A JPEG, PNG, WebP or GIF image, up to 5 MB")],
    deps: Deps,
    settings: AppSettings,
    limiter: ImageLimiter,
) -> ProductRead:
    """Checks the bytes (not the name or Content-Type), strips metadata, keeps the format."""
    data = await _read_at_most(file, settings.image_max_bytes)
    updated = await images.upload_image(
        deps,
        product_id=product.id,
        data=data,
        max_pixels=settings.image_max_pixels,
        limiter=limiter,
    )
    return ProductRead.of(updated)


async def _read_at_most(file: UploadFile, limit: int) -> bytes:
    # The body cap already bounds what was received; this bounds what we hold in memory.
    chunks: list[bytes] = []
    size = 0
    while chunk := await file.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise ImageTooLarge(details={"max_bytes": limit})
        chunks.append(chunk)
    return b"".join(chunks)


@internal_router.post(
    "/lookup",
    response_model=LookupResult,
    # Declared: the route reads its deps itself, so no dependency documents it.
    responses={503: {"description": DESCRIPTIONS[503]}},
)
async def lookup_products(
    body: LookupRequest, _caller: InternalCaller, request: Request
) -> Response:
    # Every order calls this: the deps come straight from app.state and the answer is
    # serialised once (kernel/responses.py), each a per-request cost saved.
    deps: ProductsDeps = request.app.state.deps
    found = await service.lookup_products(deps, product_ids=body.ids)
    return model_response(LookupResult(products=[LookupItem.of(p) for p in found]))


@media_router.get(
    "/{name}",
    response_class=FileResponse,
    responses={200: {"content": {t: {} for t in CONTENT_TYPES.values()}}, 404: {}},
)
async def product_image(name: str, local: LocalImages) -> FileResponse:
    path = local.path_of(name)
    if path is None or not path.is_file():
        raise NotFound("Image not found")
    return FileResponse(
        path,
        media_type=CONTENT_TYPES[path.suffix.removeprefix(".")],
        headers={"Cache-Control": IMMUTABLE, "Content-Security-Policy": "default-src 'none'"},
    )
