"""What the repository contract suite runs against: two separately opened stores (engines, or
MongoDB clients) on one database, as two processes of the service would have, on every
reachable back end (`tests.support.reachable_backends`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from retail.auth.config import AuthSettings
from retail.auth.dependencies import Units
from retail.auth.main import ADAPTERS
from retail.kernel.storage import open_storage
from tests.support import Backend, make_settings, reachable_backends


@dataclass(frozen=True)
class Processes:
    backend: Backend
    one: Units
    two: Units


@pytest.fixture(params=reachable_backends())
async def processes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Processes]:
    backend: Backend = request.param
    settings = make_settings(AuthSettings, tmp_path, backend=backend)
    # One after the other: two first opens of a brand-new SQLite file racing to switch it
    # to WAL is a start-up hazard of its own.
    async with (
        open_storage(settings, ADAPTERS) as first,
        open_storage(settings, ADAPTERS) as second,
    ):
        yield Processes(backend, first.units, second.units)
