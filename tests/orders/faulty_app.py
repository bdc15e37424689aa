"""The orders app with a crash injected, for the end-to-end crash test: the process dies the
moment a reservation succeeded, before the order is confirmed, as a crash (or kill -9) at
the worst moment would. Recovery in the next process must then confirm the order.

It lives here, not in the product: `Processes.start("orders", app=FAULTY_APP)` runs it
through uvicorn as `retail serve` runs the real one. The fault wraps the stock port of the
app's `OrdersDeps` once the app has started, so it applies to requests; a recovery pass of
the dying process never gets to reserve (nothing is pending when it starts).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

from fastapi import FastAPI

from retail.orders.domain import LineRequest
from retail.orders.main import create_app as create_orders_app
from retail.orders.ports import OrdersDeps, StockReservations

logger = logging.getLogger("tests.orders.faulty_app")

FAULTY_APP = "tests.orders.faulty_app:create_app"


class ExitAfterReserve:
    """`StockReservations` that ends the process right after a reservation succeeded."""

    def __init__(self, inner: StockReservations) -> None:
        self._inner = inner

    async def reserve(self, reservation_id: str, lines: Sequence[LineRequest]) -> None:
        await self._inner.reserve(reservation_id, lines)
        logger.warning("fault injection: exiting after reserving %s", reservation_id)
        os._exit(1)  # no shutdown, no flush: what a crash does

    async def release(self, reservation_id: str) -> None:
        await self._inner.release(reservation_id)


def create_app() -> FastAPI:
    app = create_orders_app()
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with started(app):
            deps: OrdersDeps = app.state.deps
            app.state.deps = replace(deps, stock=ExitAfterReserve(deps.stock))
            yield

    app.router.lifespan_context = lifespan
    return app
