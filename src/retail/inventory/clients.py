"""The products feed, read with the kernel's peer client and translated into domain changes.

The event data is products' wire shape (docs/architecture.md, Feeds); only the fields
inventory needs are read, and anything else is ignored so products may add fields freely.
A known event whose data does not fit raises: the follower then retries and logs instead
of skipping a change of stock.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from retail.inventory.domain import ProductChange, ProductCreated, ProductDeleted, ProductUpdated
from retail.kernel.events import Event
from retail.kernel.http import ServiceClient, Transports, peer_client
from retail.kernel.security import TokenCodec
from retail.kernel.settings import Settings


class _Product(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64)
    title: str
    category_id: str | None = None


class _Created(_Product):
    initial_stock: int = Field(ge=0)


class _Updated(_Product):
    stock_set: int | None = Field(None, ge=0)


class _Deleted(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64)


def product_change(event: Event) -> ProductChange | None:
    """The change an event of the products feed stands for; None if inventory ignores it."""
    if event.type == "product.created":
        created = _Created.model_validate(event.data)
        return ProductCreated(created.id, created.title, created.category_id, created.initial_stock)
    if event.type == "product.updated":
        updated = _Updated.model_validate(event.data)
        return ProductUpdated(updated.id, updated.title, updated.category_id, updated.stock_set)
    if event.type == "product.deleted":
        return ProductDeleted(_Deleted.model_validate(event.data).id)
    return None


def product_changes(events: Sequence[Event]) -> list[tuple[int, ProductChange | None]]:
    return [(event.seq, product_change(event)) for event in events]


def products_client(
    settings: Settings,
    tokens: TokenCodec,
    transports: Transports | None = None,
) -> ServiceClient:
    return peer_client(settings, "products", tokens, transports)
