"""The peers products calls, through the kernel's peer client (service token attached,
a peer that is down becomes a 503), and the feeds it follows, translated into domain terms.

Feed data is read leniently (unknown fields ignored, so peers may add fields), but a known
event whose data does not fit raises: the follower then logs and retries instead of
silently skipping a change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from http import HTTPStatus

from pydantic import BaseModel, ConfigDict, Field

from retail.kernel.errors import Forbidden, ValidationFailed
from retail.kernel.events import Event
from retail.kernel.http import ServiceClient, Transports, expect_ok, peer_client
from retail.kernel.security import TokenCodec
from retail.kernel.settings import Settings
from retail.products.domain import CategoryDeleted, CategoryRef, StockLevel

# Ids are UUIDs; anything that could change the path of the request is no id of ours.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CategoriesDirectory:
    """`CategoryDirectory` over the categories service's public API."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    async def exists(self, category_id: str) -> bool:
        if not _ID.fullmatch(category_id):
            return False
        path = f"/api/categories/{category_id}"
        response = await self._client.request("GET", path, idempotent=True)
        if response.status_code == HTTPStatus.NOT_FOUND:
            return False
        expect_ok(response, self._client.peer)
        return True

    async def all(self) -> list[CategoryRef]:
        response = await self._client.request("GET", "/api/categories", idempotent=True)
        expect_ok(response, self._client.peer)
        listed = _CategoryList.model_validate_json(response.content).categories
        return [CategoryRef(c.id, c.name) for c in listed]

    async def create(self, name: str, *, bearer: str) -> CategoryRef:
        response = await self._client.request(
            "POST", "/api/categories", json={"name": name}, bearer=bearer
        )
        if response.status_code == HTTPStatus.CONFLICT:  # created meanwhile by someone else
            return next(c for c in await self.all() if c.name.casefold() == name.casefold())
        if response.status_code in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise Forbidden("The categories service refused to create the category")
        if response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY:
            raise ValidationFailed(f"The categories service refused the name {name!r}")
        expect_ok(response, self._client.peer)
        made = _CategoryRef.model_validate_json(response.content)
        return CategoryRef(made.id, made.name)


class _CategoryRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str


class _CategoryList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    categories: list[_CategoryRef]


class _StockChanged(BaseModel):
    model_config = ConfigDict(extra="ignore")

    product_id: str = Field(min_length=1, max_length=64)
    stock: int = Field(ge=0)


class _CategoryDeleted(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=64)


# The reason inventory gives a product's first level: its count is the initial stock that
# products already shows, so an import's 50,000 of them change nothing here.
INITIAL_STOCK_REASON = "initial stock"


def stock_levels(events: Sequence[Event]) -> list[tuple[int, StockLevel | None]]:
    """(seq, level) for inventory's feed; None for events products does not need."""
    batch: list[tuple[int, StockLevel | None]] = []
    for event in events:
        level = None
        if event.type == "stock.changed" and event.data.get("reason") != INITIAL_STOCK_REASON:
            changed = _StockChanged.model_validate(event.data)
            level = StockLevel(changed.product_id, changed.stock)
        batch.append((event.seq, level))
    return batch


def category_changes(events: Sequence[Event]) -> list[tuple[int, CategoryDeleted | None]]:
    """(seq, deletion) for the categories feed; creations and renames change nothing here."""
    batch: list[tuple[int, CategoryDeleted | None]] = []
    for event in events:
        deleted = None
        if event.type == "category.deleted":
            deleted = CategoryDeleted(_CategoryDeleted.model_validate(event.data).id)
        batch.append((event.seq, deleted))
    return batch


def peer(
    settings: Settings,
    name: str,
    tokens: TokenCodec,
    transports: Transports | None = None,
) -> ServiceClient:
    return peer_client(settings, name, tokens, transports)
