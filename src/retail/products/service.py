"""Use cases of the catalogue, `(deps: ProductsDeps, *, ...)`. Each owns its transaction and
records its change event in that transaction (outbox); a stock an admin gives travels inside
that event."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from retail.kernel.errors import ValidationFailed
from retail.kernel.events import Event
from retail.kernel.security import Principal
from retail.products.domain import Combo, Product, ProductDraft, ProductPage, ProductQuery
from retail.products.exceptions import ProductNotFound, UnknownCategory
from retail.products.images import discard_image
from retail.products.ports import CategoryDirectory, ProductsDeps, UnitOfWork

# ---- reading ---------------------------------------------------------------------------


async def list_products(deps: ProductsDeps, *, query: ProductQuery) -> ProductPage:
    async with deps.units(readonly=True) as uow:
        return await uow.products.page(query)


async def get_product(deps: ProductsDeps, *, product_id: str) -> Product:
    async with deps.units(readonly=True) as uow:
        product = await uow.products.get(product_id)
    if product is None:
        raise ProductNotFound()
    return product


async def get_visible_product(
    deps: ProductsDeps, *, product_id: str, viewer: Principal | None
) -> Product:
    """The product if `viewer` may see it: an inactive one is a 404 but to admins."""
    product = await get_product(deps, product_id=product_id)
    if not product.is_active and not (viewer is not None and viewer.is_admin):
        raise ProductNotFound()
    return product


async def lookup_products(deps: ProductsDeps, *, product_ids: Sequence[str]) -> list[Product]:
    """The products that exist among `product_ids`, in the order asked, each once."""
    wanted = list(dict.fromkeys(product_ids))
    async with deps.units(readonly=True) as uow:
        found = {p.id: p for p in await uow.products.get_many(wanted)}
    return [found[i] for i in wanted if i in found]


async def read_events(deps: ProductsDeps, *, after: int, limit: int) -> list[Event]:
    async with deps.units(readonly=True) as uow:
        return await uow.events.read_after(after, limit)


# ---- writing ---------------------------------------------------------------------------


async def create_product(deps: ProductsDeps, *, draft: ProductDraft) -> Product:
    if draft.category_id is not None:
        await _check_category_exists(deps.categories, draft.category_id)
    now = deps.clock()
    product = Product(
        id=str(uuid.uuid4()),
        title=draft.title,
        description=draft.description,
        price_cents=draft.price_cents,
        tax_bp=draft.tax_bp,
        category_id=draft.category_id,
        # Shown until inventory's feed reports the level it made of it.
        stock=draft.stock,
        created_at=now,
        updated_at=now,
        add_ons=draft.add_ons,
        combos=draft.combos,
        image_url=draft.image_url,
        is_active=draft.is_active,
        sku=draft.sku,
        brand=draft.brand,
    )
    async with deps.units() as uow:
        await _check_category_not_deleted(uow, product.category_id)
        await uow.products.add(product)
        await uow.stock.product_created(product, draft.stock)
        await uow.commit()
    return product


async def update_product(
    deps: ProductsDeps, *, product_id: str, changes: dict[str, Any]
) -> Product:
    """Apply `changes` (domain field names; `stock` is handed over to inventory). A new
    `image_url` is an external image: an uploaded one it replaces is removed after commit."""
    stock_set: int | None = changes.get("stock")
    category_id = changes.get("category_id")
    if category_id is not None and await _joins_category(deps, product_id, category_id):
        await _check_category_exists(deps.categories, category_id)
    async with deps.units() as uow:
        current = await uow.products.get(product_id)
        if current is None:
            raise ProductNotFound()
        await _check_category_not_deleted(uow, category_id)
        _check_combos(product_id, changes.get("combos", ()))
        # The read model shows the admin's stock at once; inventory's feed then confirms it.
        updated = replace(current, **_image_change(current, changes), updated_at=deps.clock())
        await uow.products.update(updated)
        await uow.stock.product_updated(updated, stock_set)
        await uow.commit()
    if current.image_key and updated.image_key != current.image_key:
        await discard_image(deps.images, current.image_key)
    return updated


def _image_change(current: Product, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes, with the stored image let go when `image_url` really changes. A console
    that sends the whole product back sends the uploaded image's own URL: that keeps it."""
    if "image_url" not in changes or changes["image_url"] == current.image_url:
        return {k: v for k, v in changes.items() if k != "image_url"}
    return {**changes, "image_key": None}


async def delete_product(deps: ProductsDeps, *, product_id: str) -> None:
    async with deps.units() as uow:
        product = await uow.products.get(product_id)
        if product is None or not await uow.products.delete(product_id):
            raise ProductNotFound()
        await uow.events.append("product.deleted", product_id, {"id": product_id})
        await uow.commit()
    # Only once the delete is committed: a rollback must not leave a product without its image.
    if product.image_key:
        await discard_image(deps.images, product.image_key)


async def _joins_category(deps: ProductsDeps, product_id: str, category_id: str) -> bool:
    """Whether the update moves the product into `category_id`. Consoles often PATCH the
    whole product: keeping its category must not need the categories service."""
    async with deps.units(readonly=True) as uow:
        current = await uow.products.get(product_id)
    if current is None:
        raise ProductNotFound()
    return current.category_id != category_id


async def _check_category_exists(categories: CategoryDirectory, category_id: str) -> None:
    if not await categories.exists(category_id):
        raise UnknownCategory(details={"category_id": category_id})


async def _check_category_not_deleted(uow: UnitOfWork, category_id: str | None) -> None:
    # The categories service may have deleted it since it answered; once its feed says so,
    # no product may join it (those already in it are cleared by the feed follower).
    if category_id is not None and await uow.deleted_categories.contains(category_id):
        raise UnknownCategory(details={"category_id": category_id})


def _check_combos(product_id: str, combos: Sequence[Combo]) -> None:
    if any(combo.product_id == product_id for combo in combos):
        raise ValidationFailed(
            "A product cannot be a combo of itself",
            details={
                "fields": [
                    {
                        "field": "body.combos",
                        "message": "names the product itself",
                        "type": "value_error",
                    }
                ]
            },
        )
