from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from retail.search.config import SearchSettings
from retail.search.main import create_app
from tests.search.feeds import FEEDS, FakeFeeds, small_shop
from tests.support import make_settings, serve


@dataclass
class Search:
    """A search app served over ASGI, its followers driven by the test."""

    app: FastAPI
    client: httpx.AsyncClient
    feeds: FakeFeeds

    async def sync(self) -> int:
        """One poll of every feed, as the background followers do; the events applied."""
        applied = 0
        for feed in FEEDS:
            applied += await self.app.state.followers[feed].catch_up()
        return applied

    async def find(self, q: str, **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get("/api/search", params={"q": q, **params})
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    async def ids(self, q: str, **params: Any) -> list[str]:
        return [str(product["id"]) for product in await self.find(q, **params)]


def search_settings(data_dir: Path, **overrides: Any) -> SearchSettings:
    return make_settings(SearchSettings, data_dir, **{"follow_feeds": False, **overrides})


@asynccontextmanager
async def open_search(data_dir: Path, feeds: FakeFeeds, **overrides: Any) -> AsyncIterator[Search]:
    app = create_app(search_settings(data_dir, **overrides), transports=feeds.transports())
    async with serve(app) as client:
        yield Search(app, client, feeds)


@pytest.fixture
def feeds() -> FakeFeeds:
    return FakeFeeds()


@pytest.fixture
async def search(tmp_path: Path, feeds: FakeFeeds) -> AsyncIterator[Search]:
    async with open_search(tmp_path, feeds) as opened:
        yield opened


@pytest.fixture
async def shop(search: Search) -> Search:
    """The search app with the small catalogue applied."""
    small_shop(search.feeds)
    await search.sync()
    return search
