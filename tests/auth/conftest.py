"""What the repository contract suite runs against: two separately opened stores (engines, or
MongoDB clients) on one database, as two processes of the service would have, on every
reachable back end (`tests.support.reachable_backends`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from retail.auth.config import AuthSettings
from retail.auth.main import ADAPTERS
from retail.auth.ports import UnitOfWork
from tests.support import TwoProcesses, reachable_backends, two_processes

Processes = TwoProcesses[UnitOfWork]


@pytest.fixture(params=reachable_backends())
async def processes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Processes]:
    async with two_processes(AuthSettings, ADAPTERS, tmp_path, request.param) as both:
        yield both
