"""`Annotated` dependencies: the use cases' `AuthDeps`, the client's address, and the
signed-in user's account.

The use cases open units of work of whichever back end the kernel opened (SQL or MongoDB);
nothing here or in the router knows which one it is."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from retail.auth import service
from retail.auth.config import AuthSettings
from retail.auth.domain import User
from retail.auth.ports import AuthDeps
from retail.auth.ports import Units as Units  # where the tests and main.py look for it
from retail.kernel.events import Event, EventReader
from retail.kernel.security import CurrentUser
from retail.kernel.storage import service_deps

# Built once in the lifespan; the use cases open their own units of work from it.
Deps = Annotated[AuthDeps, Depends(service_deps)]


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


async def current_account(principal: CurrentUser, deps: Deps) -> User:
    return await service.get_account(deps, user_id=principal.user_id)


CurrentAccount = Annotated[User, Depends(current_account)]


async def event_reader(deps: Deps) -> EventReader:
    """Auth's feed (`session.revoked`, `user.changed`) for the kernel's /internal/events."""

    async def read(after: int, limit: int) -> list[Event]:
        return await service.read_events(deps, after=after, limit=limit)

    return read
