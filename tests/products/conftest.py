"""Fixtures of the products tests: a real categories app, products wired to it, and, for the
repository contract suite, two separately opened stores (engines, or MongoDB clients) on one
database, as two processes of the service would have, on every reachable back end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.types import ASGIApp

from retail.categories.config import CategoriesSettings
from retail.categories.main import create_app as create_categories_app
from retail.products.config import ProductsSettings
from retail.products.main import ADAPTERS
from retail.products.ports import UnitOfWork
from tests.products.shop import Shop, open_shop
from tests.support import TwoProcesses, lifespan, make_settings, reachable_backends, two_processes


@pytest.fixture
async def categories_app(tmp_path: Path) -> AsyncIterator[ASGIApp]:
    """The categories service, running inside its own lifespan."""
    app = create_categories_app(make_settings(CategoriesSettings, tmp_path / "categories"))
    async with lifespan(app) as manager:
        yield manager.app


@pytest.fixture
async def shop(tmp_path: Path, categories_app: ASGIApp) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path / "products", categories_app) as shop:
        yield shop


Processes = TwoProcesses[UnitOfWork]


@pytest.fixture(params=reachable_backends())
async def processes(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Processes]:
    async with two_processes(ProductsSettings, ADAPTERS, tmp_path, request.param) as both:
        yield both
