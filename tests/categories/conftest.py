"""What the repository contract suite runs against: two separately opened stores (engines, or
MongoDB clients) on one database, as two processes of the service would have, on every
reachable back end (`tests.support.reachable_backends`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from retail.categories.config import CategoriesSettings
from retail.categories.dependencies import UnitOfWorkFactory
from retail.categories.main import Storage, mongo_storage, sql_storage
from tests.support import Backend, make_settings, reachable_backends


class StorageOpener(Protocol):
    def __call__(self, settings: CategoriesSettings) -> AbstractAsyncContextManager[Storage]: ...


@dataclass(frozen=True)
class Processes:
    backend: Backend
    one: UnitOfWorkFactory
    two: UnitOfWorkFactory


OPENERS: dict[Backend, StorageOpener] = {"sql": sql_storage, "mongodb": mongo_storage}


@pytest.fixture(params=reachable_backends())
async def processes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Processes]:
    backend: Backend = request.param
    settings = make_settings(CategoriesSettings, tmp_path, backend=backend)
    opener = OPENERS[backend]
    # One after the other: two first opens of a brand-new SQLite file racing to switch it
    # to WAL is a start-up hazard of its own.
    async with opener(settings) as first, opener(settings) as second:
        yield Processes(backend, first.units, second.units)
