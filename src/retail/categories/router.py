"""HTTP layer: parse, call a use case, shape the answer. No queries, no commits here."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from retail.categories import service
from retail.categories.dependencies import Deps, ExistingCategory
from retail.categories.schemas import CategoryCreate, CategoryList, CategoryRead, CategoryUpdate
from retail.kernel.responses import model_response
from retail.kernel.security import AdminUser

router = APIRouter(prefix="/api/categories", tags=["categories"])
_NAME_TAKEN: dict[int | str, dict[str, str]] = {409: {"description": "CATEGORY_NAME_TAKEN"}}


@router.get("", response_model=CategoryList)
async def list_categories(deps: Deps) -> Response:
    found = await service.list_categories(deps)
    # Serialised once: FastAPI would validate every category again (kernel/responses.py).
    return model_response(CategoryList.of(found))


@router.get("/{category_id}", response_model=CategoryRead)
async def get_category(category: ExistingCategory) -> CategoryRead:
    return CategoryRead.of(category)


@router.post(
    "",
    response_model=CategoryRead,
    status_code=status.HTTP_201_CREATED,
    responses=_NAME_TAKEN,
)
async def create_category(body: CategoryCreate, deps: Deps, _admin: AdminUser) -> CategoryRead:
    created = await service.create_category(
        deps, name=body.name, logo=body.logo, description=body.description
    )
    return CategoryRead.of(created)


@router.patch("/{category_id}", response_model=CategoryRead, responses=_NAME_TAKEN)
async def update_category(
    category_id: str, body: CategoryUpdate, deps: Deps, _admin: AdminUser
) -> CategoryRead:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("description", "") is None:
        changes["description"] = ""
    updated = await service.update_category(deps, category_id=category_id, changes=changes)
    return CategoryRead.of(updated)


@router.delete("/{category_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_category(category_id: str, deps: Deps, _admin: AdminUser) -> None:
    await service.delete_category(deps, category_id=category_id)
