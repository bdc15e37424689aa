"""What the repository contract suite runs against: two separately opened stores (engines, or
MongoDB clients) on one database, as two processes of the service would have, on every
reachable back end (`tests.support.reachable_backends`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from retail.categories.config import CategoriesSettings
from retail.categories.main import ADAPTERS
from retail.categories.ports import UnitOfWork
from tests.support import TwoProcesses, reachable_backends, two_processes

Processes = TwoProcesses[UnitOfWork]


@pytest.fixture(params=reachable_backends())
async def processes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Processes]:
    async with two_processes(CategoriesSettings, ADAPTERS, tmp_path, request.param) as both:
        yield both
