"""Fixtures of the products API tests: a real categories app, and products wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

from retail.categories.config import CategoriesSettings
from retail.categories.main import create_app as create_categories_app
from tests.products.shop import Shop, open_shop
from tests.support import make_settings


@pytest.fixture
async def categories_app(tmp_path: Path) -> AsyncIterator[ASGIApp]:
    """The categories service, running inside its own lifespan."""
    app = create_categories_app(make_settings(CategoriesSettings, tmp_path / "categories"))
    async with LifespanManager(app) as manager:
        yield manager.app


@pytest.fixture
async def shop(tmp_path: Path, categories_app: ASGIApp) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path / "products", categories_app) as shop:
        yield shop
