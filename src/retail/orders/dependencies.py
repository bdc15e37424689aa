"""`Annotated` dependencies: the use cases' `OrdersDeps`, the Idempotency-Key header, and
loading an order the caller may see (or 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from retail.kernel.queries import QueryString
from retail.kernel.security import CurrentUser
from retail.kernel.storage import service_deps
from retail.orders import service
from retail.orders.domain import Order
from retail.orders.ports import OrdersDeps
from retail.orders.schemas import ListParameters

# Dependencies are `async def` even where they do not await: FastAPI runs a plain `def`
# dependency in its thread pool, a thread hop per request for nothing.


# Built once in the lifespan; the use cases open their own units of work from it.
Deps = Annotated[OrdersDeps, Depends(service_deps)]

# The orders page's query string, its page and its status filter, read in one call.
ListQuery = Annotated[ListParameters, Depends(QueryString(ListParameters))]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",
        description="Strongly recommended: a retry with the same key and body gets the first "
        "answer and creates nothing new. Kept for at least 24 hours, per user.",
    ),
]


async def visible_order(order_id: str, viewer: CurrentUser, deps: Deps) -> Order:
    return await service.get_order(deps, viewer=viewer, order_id=order_id)


VisibleOrder = Annotated[Order, Depends(visible_order)]
