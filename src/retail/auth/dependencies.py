"""`Annotated` dependencies: the unit of work per request, the use cases' contexts, the
client's address, and the signed-in user's account.

The unit of work is of whichever back end the kernel opened (SQL or MongoDB); nothing here or
in the router knows which one it is."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from retail.auth import service
from retail.auth.cart import CartContext
from retail.auth.config import AuthSettings
from retail.auth.domain import User
from retail.auth.ports import UnitOfWork
from retail.auth.service import AuthContext
from retail.kernel.events import Event, EventReader
from retail.kernel.security import CurrentUser
from retail.kernel.storage import UnitOfWorkFactory, read_only_unit_of_work, unit_of_work

Units = UnitOfWorkFactory[UnitOfWork]
UoW = Annotated[UnitOfWork, Depends(unit_of_work)]
ReadUoW = Annotated[UnitOfWork, Depends(read_only_unit_of_work)]


async def auth_context(request: Request) -> AuthContext:
    context: AuthContext = request.app.state.auth
    return context


Context = Annotated[AuthContext, Depends(auth_context)]


async def cart_context(request: Request) -> CartContext:
    context: CartContext = request.app.state.cart
    return context


Cart = Annotated[CartContext, Depends(cart_context)]


async def client_address(request: Request) -> str:
    """The peer's address, or with TRUSTED_PROXY_HOPS=n the one our n-th proxy saw: the
    n-th X-Forwarded-For entry from the right. Entries further left are whatever the
    client chose to send, so they are never used."""
    settings: AuthSettings = request.app.state.settings
    peer = request.client.host if request.client else "unknown"
    hops = settings.trusted_proxy_hops
    forwarded = request.headers.get("x-forwarded-for")
    if not hops or not forwarded:
        return peer
    entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
    return entries[-min(hops, len(entries))] if entries else peer


ClientAddress = Annotated[str, Depends(client_address)]


async def current_account(principal: CurrentUser, uow: ReadUoW) -> User:
    return await service.get_account(uow, principal.user_id)


CurrentAccount = Annotated[User, Depends(current_account)]


async def event_reader(uow: ReadUoW) -> EventReader:
    """Auth's feed (`session.revoked`, `user.changed`) for the kernel's /internal/events."""

    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(uow, after, limit)

    return read
