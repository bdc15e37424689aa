"""Bulk upsert by SKU (`POST /api/products/bulk`): the use case behind `retail import`.

An item whose sku is stored updates that product with the fields it gave; one equal to what
is stored changes nothing; any other is created. Every item is decided against the stored
catalogue first, then all the writes of the request go to the database together: one
transaction, a few statements (executemany), and the change events of every product in the
same transaction (outbox), each carrying its stock to inventory as a single create does.

A product without a sku is known by its id: an item whose sku is the id of such a product
updates it (and leaves it without a sku). The export writes those products that way, so
export then import changes nothing.

Categories are named or given by id. All of them are read from the categories service in
one call per request; with `create_categories`, the missing names are created (as the admin
who sent the request) only once every item that needs them is known to be storable.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from retail.products.domain import (
    BulkItem,
    BulkOutcome,
    BulkResult,
    CategoryRef,
    InvalidItem,
    ItemError,
    Product,
    Written,
)
from retail.products.images import discard_image
from retail.products.ports import CategoryDirectory, ProductsDeps, UnitOfWork

ROLLED_BACK = ItemError("", "not stored: another item of this atomic request failed", "atomic")
_ID_LENGTH = 36  # a product id (UUID): what a product without a sku is exported under


@dataclass
class Categories:
    """The categories an item may name, by case-folded name, and the ids that exist."""

    by_name: dict[str, str] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)

    def add(self, category: CategoryRef) -> None:
        self.by_name[category.name.casefold()] = category.id
        self.ids.add(category.id)


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: BulkOutcome
    written: Written | None = None
    discard: str | None = None  # an uploaded image to remove once the update is committed


async def upsert_products(
    deps: ProductsDeps,
    *,
    items: Sequence[BulkItem | InvalidItem],
    atomic: bool = False,
    create_categories: bool = False,
    bearer: str = "",
) -> BulkResult:
    failed = {
        i.index: _failure(i.index, i.sku, *i.errors) for i in items if isinstance(i, InvalidItem)
    }
    valid = [i for i in items if isinstance(i, BulkItem)]
    failed |= _duplicate_skus(valid)
    valid = [i for i in valid if i.index not in failed]
    if atomic and failed:
        return _all_failed(items, failed)
    known = await _categories(deps.categories, valid)
    missing = _missing_names(valid, known)
    if missing and create_categories:
        # Decided with the names as if they existed: only then is a category worth creating.
        async with deps.units(readonly=True) as uow:
            trial = await _decide_all(uow, valid, _assuming(known, missing), deps.clock())
        storable = [i for i in valid if trial[i.index].outcome.status != "failed"]
        if atomic and len(storable) < len(valid):
            return _all_failed(items, failed | _failures(trial))
        for name in _missing_names(storable, known):
            known.add(await deps.categories.create(name, bearer=bearer))
    return await _store(deps, items, valid, known, failed, atomic=atomic)


async def _store(
    deps: ProductsDeps,
    items: Sequence[BulkItem | InvalidItem],
    valid: Sequence[BulkItem],
    known: Categories,
    failed: dict[int, BulkOutcome],
    *,
    atomic: bool,
) -> BulkResult:
    # Decided again inside the transaction that writes: nothing moves meanwhile.
    async with deps.units() as uow:
        decisions = await _decide_all(uow, valid, known, deps.clock())
        failed |= _failures(decisions)
        if atomic and failed:
            return _all_failed(items, failed)
        written = [d.written for d in decisions.values() if d.written is not None]
        await uow.products.add_many([w.product for w in written if w.created])
        await uow.products.update_many([w.product for w in written if not w.created])
        await uow.stock.products_written(written)
        await uow.commit()
    for decision in decisions.values():
        if decision.discard:
            await discard_image(deps.images, decision.discard)
    outcomes = {**{i: d.outcome for i, d in decisions.items()}, **failed}
    return BulkResult(tuple(outcomes[i.index] for i in items))


def _failure(index: int, sku: str | None, *errors: ItemError) -> BulkOutcome:
    return BulkOutcome(index, "failed", None, sku, errors)


def _failures(decisions: dict[int, Decision]) -> dict[int, BulkOutcome]:
    return {i: d.outcome for i, d in decisions.items() if d.outcome.status == "failed"}


def _all_failed(
    items: Sequence[BulkItem | InvalidItem], failed: dict[int, BulkOutcome]
) -> BulkResult:
    return BulkResult(
        tuple(failed.get(i.index) or _failure(i.index, i.sku, ROLLED_BACK) for i in items)
    )


def _duplicate_skus(items: Sequence[BulkItem]) -> dict[int, BulkOutcome]:
    seen: dict[str, list[int]] = {}
    for item in items:
        if item.sku is not None:
            seen.setdefault(item.sku, []).append(item.index)
    failed: dict[int, BulkOutcome] = {}
    for sku, indexes in seen.items():
        if len(indexes) > 1:
            message = f"appears in more than one item of this request (items {indexes})"
            for index in indexes:
                failed[index] = _failure(index, sku, ItemError("sku", message, "duplicate_sku"))
    return failed


async def _categories(directory: CategoryDirectory, items: Sequence[BulkItem]) -> Categories:
    """Every category, from one call, if any item names one or gives a category_id."""
    known = Categories()
    if any(i.category_name or i.draft.category_id for i in items):
        for category in await directory.all():
            known.add(category)
    return known


def _missing_names(items: Sequence[BulkItem], known: Categories) -> list[str]:
    names = {i.category_name.casefold(): i.category_name for i in items if i.category_name}
    return [name for folded, name in names.items() if folded not in known.by_name]


def _assuming(known: Categories, names: Sequence[str]) -> Categories:
    trial = Categories(dict(known.by_name), set(known.ids))
    for name in names:
        trial.add(CategoryRef(f"new:{name.casefold()}", name))
    return trial


async def _decide_all(
    uow: UnitOfWork, items: Sequence[BulkItem], known: Categories, now: datetime
) -> dict[int, Decision]:
    stored = await _stored(uow, [i.sku for i in items if i.sku is not None])
    deleted = {
        category_id
        for category_id in {i.draft.category_id for i in items if i.draft.category_id}
        if await uow.deleted_categories.contains(category_id)
    }
    return {i.index: _decide(i, stored.get(i.sku or ""), known, deleted, now) for i in items}


async def _stored(uow: UnitOfWork, skus: Sequence[str]) -> dict[str, Product]:
    """The stored product of each sku: by sku, else a product without one by its id."""
    found = {p.sku: p for p in await uow.products.by_skus(skus) if p.sku}
    maybe_ids = [s for s in skus if s not in found and len(s) == _ID_LENGTH]
    for product in await uow.products.get_many(maybe_ids) if maybe_ids else []:
        if product.sku is None:
            found[product.id] = product
    return found


def _decide(
    item: BulkItem,
    current: Product | None,
    known: Categories,
    deleted: set[str],
    now: datetime,
) -> Decision:
    category_id, errors = _category_of(item, current, known, deleted)
    changes = _changes(item, current, category_id)
    errors += _image_errors(changes, current)
    if current is not None and any(c.product_id == current.id for c in changes.get("combos", ())):
        errors.append(ItemError("combos", "names the product itself", "value_error"))
    if errors:
        return Decision(_failure(item.index, item.sku, *errors))
    if current is None:
        return _create(item, changes, now)
    return _update(item, current, changes, now)


def _category_of(
    item: BulkItem, current: Product | None, known: Categories, deleted: set[str]
) -> tuple[str | None, list[ItemError]]:
    """The category id the item asks for (None: no change asked, or none), and its errors."""
    if item.category_name:
        found = known.by_name.get(item.category_name.casefold())
        if found is None:
            message = f"no category is named {item.category_name!r}"
            return None, [ItemError("category", message, "unknown_category")]
        return found, []
    wanted = item.draft.category_id
    unchanged = current is not None and current.category_id == wanted
    if wanted is None or unchanged:
        return wanted, []
    if wanted not in known.ids or wanted in deleted:
        return None, [ItemError("category_id", "names no existing category", "unknown_category")]
    return wanted, []


def _changes(item: BulkItem, current: Product | None, category_id: str | None) -> dict[str, Any]:
    """The draft's fields the item gave, in domain terms (everything for a new product)."""
    draft = item.draft
    sent = set(item.sent) if current is not None else _DRAFT_FIELDS
    if item.category_name:
        sent.add("category_id")
    changes = {name: getattr(draft, name) for name in sent - {"stock"}}
    if "category_id" in changes:
        changes["category_id"] = category_id
    if current is not None and current.sku is None and current.id == draft.sku:
        changes.pop("sku", None)  # known by its id: it stays without a sku
    return changes


_DRAFT_FIELDS = {
    "title",
    "description",
    "price_cents",
    "tax_bp",
    "category_id",
    "add_ons",
    "combos",
    "image_url",
    "is_active",
    "sku",
    "brand",
}


def _image_errors(changes: dict[str, Any], current: Product | None) -> list[ItemError]:
    """An uploaded image's own URL (relative, `/media/...`) may be sent back unchanged, as
    the export writes it; any other image_url must be an absolute http(s) URL."""
    url = changes.get("image_url")
    if url is None or not url.startswith("/"):
        return []
    if current is not None and url == current.image_url:
        return []
    message = "must be an absolute http or https URL, or the product's own image URL"
    return [ItemError("image_url", message, "value_error")]


def _create(item: BulkItem, changes: dict[str, Any], now: datetime) -> Decision:
    product = Product(
        id=str(uuid.uuid4()),
        stock=item.draft.stock,  # shown until inventory's feed reports its level
        created_at=now,
        updated_at=now,
        **changes,
    )
    outcome = BulkOutcome(item.index, "created", product.id, product.sku)
    return Decision(outcome, Written(product, created=True, stock=item.draft.stock))


def _update(item: BulkItem, current: Product, changes: dict[str, Any], now: datetime) -> Decision:
    if changes.get("image_url", current.image_url) != current.image_url:
        changes["image_key"] = None  # an external image replaces the uploaded one
    updated = replace(current, **changes)
    stock_set = item.draft.stock if "stock" in item.sent else None
    if stock_set == current.stock:
        stock_set = None
    if updated == current and stock_set is None:
        return Decision(BulkOutcome(item.index, "unchanged", current.id, current.sku))
    updated = replace(
        updated, updated_at=now, stock=current.stock if stock_set is None else stock_set
    )
    outcome = BulkOutcome(item.index, "updated", current.id, updated.sku)
    discard = current.image_key if current.image_key != updated.image_key else None
    return Decision(outcome, Written(updated, created=False, stock=stock_set), discard)
