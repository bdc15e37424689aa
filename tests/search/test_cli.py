"""`retail reindex`: a stopped service's indexes are rebuilt in place from the feeds; a
running service holds its index, so it is asked to rebuild its own."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from retail import cli
from retail.kernel.errors import ServiceUnavailable
from retail.search import main as search_main
from retail.search.adapters.index import index_dirs
from retail.search.engine import ProductIndex
from retail.search.main import reindex
from retail.search.schemas import ReindexResult
from tests.search.conftest import open_search, search_settings
from tests.search.feeds import FakeFeeds, small_shop
from tests.support import SECRET


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL whose port is bound but not listening: connections are refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


async def test_a_stopped_services_index_is_rebuilt_in_place(
    tmp_path: Path, feeds: FakeFeeds
) -> None:
    small_shop(feeds)
    settings = search_settings(tmp_path)
    [rebuilt] = await reindex(settings, feeds.transports())
    assert rebuilt.where == str(settings.index_dir())
    assert rebuilt.result == ReindexResult(events_applied=16, products_indexed=13)
    async with open_search(tmp_path, feeds) as search:
        assert len(await search.ids("shirt ")) == 3  # there before any poll
        assert await search.sync() == 0  # and the cursors with it


async def test_the_offline_rebuild_starts_from_scratch_in_every_index_dir(
    tmp_path: Path, feeds: FakeFeeds
) -> None:
    small_shop(feeds)
    async with open_search(tmp_path, feeds) as one, open_search(tmp_path, feeds) as two:
        await one.sync()
        await two.sync()
    feeds.forget_history()
    feeds.product("spade", "Border Spade")
    settings = search_settings(tmp_path)
    rebuilt = await reindex(settings, feeds.transports())
    assert [r.where for r in rebuilt] == [str(d) for d in index_dirs(settings)[:2]]
    assert all(r.result.products_indexed == 1 for r in rebuilt)
    async with open_search(tmp_path, feeds) as one, open_search(tmp_path, feeds) as two:
        for search in (one, two):
            assert await search.ids("shirt ") == []
            assert await search.ids("spade") == ["spade"]


async def test_a_running_service_is_asked_to_rebuild_its_own_index(
    tmp_path: Path, feeds: FakeFeeds
) -> None:
    settings = search_settings(tmp_path)
    async with open_search(tmp_path, feeds) as running:
        small_shop(feeds)  # not polled yet: only the rebuild can have brought it in
        to_running = {**feeds.transports(), "search": httpx.ASGITransport(app=running.app)}
        [rebuilt] = await reindex(settings, to_running)
        assert rebuilt.where == settings.url_of("search")
        assert rebuilt.result == ReindexResult(events_applied=16, products_indexed=13)
        assert len(await running.ids("shirt ")) == 3


async def test_a_held_index_whose_service_does_not_answer_is_an_error(
    tmp_path: Path, feeds: FakeFeeds, refused_url: str
) -> None:
    settings = search_settings(tmp_path, search_url=refused_url)
    with ProductIndex(settings.index_dir()), pytest.raises(ServiceUnavailable):
        await reindex(settings, feeds.transports())


# --- the command ------------------------------------------------------------------------


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused_url: str) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env of the working tree
    for name, value in {
        "DATA_DIR": str(tmp_path / "data"),
        "JWT_SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
        **{f"{peer}_URL": refused_url for peer in ("PRODUCTS", "CATEGORIES", "INVENTORY")},
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SEARCH_INDEX_DIR", raising=False)
    return tmp_path / "data"


def test_the_command_rebuilds_and_says_what_it_did(
    environment: Path,
    feeds: FakeFeeds,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    small_shop(feeds)
    real = search_main.reindex
    monkeypatch.setattr(search_main, "reindex", lambda s: real(s, feeds.transports()))
    assert cli.main(["reindex"]) == 0
    printed = capsys.readouterr().out
    assert f"Rebuilt {environment / 'search-index'}: 13 products from 16 events." in printed


def test_the_command_fails_cleanly_when_the_feeds_are_down(
    environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["reindex"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("reindex failed: The categories service is unavailable")
    assert "Traceback" not in error
