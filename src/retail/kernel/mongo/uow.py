"""The base of each service's MongoDB unit of work: `SqlUnitOfWork`'s contract over a
`Unit`, with a server that is away or busy as a 503."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Self

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.events import notify_outbox_commit
from retail.kernel.mongo.client import logger
from retail.kernel.mongo.errors import is_unavailable, unavailable_as_503
from retail.kernel.mongo.store import MongoStore
from retail.kernel.mongo.units import Unit


class MongoUnitOfWork:
    """Base for each service's MongoDB unit of work; subclasses attach repositories in `_bind`.
    Same contract as SqlUnitOfWork; a server that is away or busy becomes a 503."""

    unit: Unit

    def __init__(self, store: MongoStore, *, readonly: bool = False) -> None:
        self._store = store
        self._readonly = readonly

    def _bind(self, unit: Unit) -> None:
        """Create the repositories over `unit`."""

    async def __aenter__(self) -> Self:
        self.unit = self._store.unit(readonly=self._readonly)
        with unavailable_as_503():
            await self.unit.begin()
        self._bind(self.unit)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            with unavailable_as_503():
                await self.unit.close()
        except ServiceUnavailable:
            if exc is None:
                raise
            logger.warning("rollback failed; the server or the next writer will finish it")
        if exc is not None and is_unavailable(exc):
            raise ServiceUnavailable("The database is unavailable; try again shortly") from exc

    def changes_only(self, keys: Iterable[str]) -> None:
        """Nothing to narrow: on MongoDB no read cache is kept (kernel/cache.py)."""

    async def commit(self) -> None:
        with unavailable_as_503():
            await self.unit.commit()
        if self.unit.wrote_events:
            notify_outbox_commit()
