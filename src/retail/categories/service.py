"""Use cases, `(deps: CategoriesDeps, *, ...)`. Each owns its transaction and records an event
with every change (outbox)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from retail.categories.domain import Category
from retail.categories.exceptions import CategoryNotFound
from retail.categories.ports import CategoriesDeps
from retail.kernel.events import Event


async def list_categories(deps: CategoriesDeps) -> list[Category]:
    async with deps.units(readonly=True) as uow:
        return await uow.categories.list_all()


async def get_category(deps: CategoriesDeps, *, category_id: str) -> Category:
    async with deps.units(readonly=True) as uow:
        category = await uow.categories.get(category_id)
    if category is None:
        raise CategoryNotFound()
    return category


async def create_category(
    deps: CategoriesDeps, *, name: str, logo: str | None, description: str
) -> Category:
    now = deps.clock()
    category = Category(str(uuid.uuid4()), name, logo, description, now, now)
    async with deps.units() as uow:
        await uow.categories.add(category)
        await uow.events.append("category.created", category.id, category.as_event_data())
        await uow.commit()
    return category


async def update_category(
    deps: CategoriesDeps, *, category_id: str, changes: dict[str, Any]
) -> Category:
    async with deps.units() as uow:
        current = await uow.categories.get(category_id)
        if current is None:
            raise CategoryNotFound()
        updated = replace(current, **changes, updated_at=deps.clock())
        await uow.categories.update(updated)
        await uow.events.append("category.updated", updated.id, updated.as_event_data())
        await uow.commit()
    return updated


async def delete_category(deps: CategoriesDeps, *, category_id: str) -> None:
    """Products follow the feed and clear their `category_id` on `category.deleted`."""
    async with deps.units() as uow:
        if not await uow.categories.delete(category_id):
            raise CategoryNotFound()
        await uow.events.append("category.deleted", category_id, {"id": category_id})
        await uow.commit()


async def read_events(deps: CategoriesDeps, *, after: int, limit: int) -> list[Event]:
    async with deps.units(readonly=True) as uow:
        return await uow.events.read_after(after, limit)
