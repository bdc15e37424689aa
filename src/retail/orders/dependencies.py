"""`Annotated` dependencies: units of work, the saga's context, the Idempotency-Key header,
and loading an order the caller may see (or 404). The unit of work is of whichever back end
the kernel opened."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from retail.kernel.security import CurrentUser
from retail.kernel.storage import UnitOfWorkFactory, read_only_unit_of_work, unit_of_work
from retail.orders import service
from retail.orders.domain import Order
from retail.orders.ports import Context, UnitOfWork

Units = UnitOfWorkFactory[UnitOfWork]

# Dependencies are `async def` even where they do not await: FastAPI runs a plain `def`
# dependency in its thread pool, a thread hop per request for nothing.

UoW = Annotated[UnitOfWork, Depends(unit_of_work)]
ReadUoW = Annotated[UnitOfWork, Depends(read_only_unit_of_work)]


async def saga_context(request: Request, uow: UoW, reads: ReadUoW) -> Context:
    state = request.app.state
    return Context(uow, state.catalog, state.stock, state.policy, reads=reads)


SagaContext = Annotated[Context, Depends(saga_context)]

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


async def visible_order(order_id: str, viewer: CurrentUser, uow: ReadUoW) -> Order:
    return await service.visible_order(uow, viewer, order_id)


VisibleOrder = Annotated[Order, Depends(visible_order)]
