"""The read cache serves a kept answer only while the database is unchanged: a commit from
any connection (another process's included) makes the next read fresh. An answer is kept
on its key's second miss, so one-off query strings never push out the answers in use."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from retail.kernel.app import create_service_app
from retail.kernel.cache import (
    DOORKEEPER_KEYS,
    ENTRY_OVERHEAD_BYTES,
    MAX_CHANGED_KEYS,
    OwnChanges,
    ReadCache,
    SqliteDataVersion,
    _Kept,
)
from retail.kernel.db import cache_version, create_engine, data_version
from retail.kernel.settings import Settings
from retail.kernel.sqlite import SqliteDatabase
from tests.support import make_settings, serve


class ShopSettings(Settings):
    service_name = "shop"


def _shop(db: Path, settings: Settings) -> FastAPI:
    router = APIRouter()
    reads = {"count": 0}

    def rows() -> list[str]:
        with sqlite3.connect(db) as connection:
            return [r[0] for r in connection.execute("SELECT name FROM items ORDER BY name")]

    @router.get("/api/items")
    async def items(request: Request) -> JSONResponse:
        reads["count"] += 1
        status = 200 if request.query_params.get("fail") is None else 404
        return JSONResponse({"items": rows(), "reads": reads["count"]}, status_code=status)

    @router.get("/api/other")
    async def other() -> dict[str, int]:
        reads["count"] += 1
        return {"reads": reads["count"]}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(f"sqlite+aiosqlite:///{db}")
        with data_version(engine) as version:
            app.state.data_version = version
            yield
        await engine.dispose()

    return create_service_app(
        settings,
        title="shop",
        description="",
        routers=[router],
        lifespan=lifespan,
        cached_reads=("/api/items",),
    )


def _write(db: Path, name: str) -> None:
    with sqlite3.connect(db) as connection:  # another connection, as another process's
        connection.execute("INSERT INTO items VALUES (?)", (name,))


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE items (name TEXT)")
    settings = make_settings(ShopSettings, tmp_path, backend="sql", database_url=None)
    async with serve(_shop(db, settings)) as client:
        yield client, db


async def test_unchanged_data_is_served_from_memory(
    shop: tuple[httpx.AsyncClient, Path],
) -> None:
    client, db = shop
    _write(db, "apple")
    first = await client.get("/api/items")  # remembered, not kept: it may never come again
    second = await client.get("/api/items")  # asked again: kept
    third = await client.get("/api/items")
    assert first.json() == {"items": ["apple"], "reads": 1}
    assert second.json() == third.json() == {"items": ["apple"], "reads": 2}
    assert third.headers["x-request-id"] != second.headers["x-request-id"]
    assert third.headers["cache-control"] == "no-store"  # the kernel's headers, per answer


async def test_a_commit_from_another_connection_makes_the_next_read_fresh(
    shop: tuple[httpx.AsyncClient, Path],
) -> None:
    client, db = shop
    await client.get("/api/items")
    assert (await client.get("/api/items")).json()["reads"] == 2
    assert (await client.get("/api/items")).json()["reads"] == 2
    _write(db, "pear")
    fresh = await client.get("/api/items")
    assert fresh.json() == {"items": ["pear"], "reads": 3}


async def test_query_strings_are_kept_apart_and_errors_never_kept(
    shop: tuple[httpx.AsyncClient, Path],
) -> None:
    client, _db = shop
    await client.get("/api/items?page=1")
    await client.get("/api/items?page=1")  # kept, at reads 2
    assert (await client.get("/api/items?page=2")).json()["reads"] == 3
    for _ in range(2):
        await client.get("/api/items?fail=1")
    assert (await client.get("/api/items?fail=1")).json()["reads"] == 6
    assert (await client.get("/api/items?page=1")).json()["reads"] == 2


async def test_only_gets_under_the_named_prefixes_are_kept(
    shop: tuple[httpx.AsyncClient, Path],
) -> None:
    client, _db = shop
    await client.get("/api/other")
    assert (await client.get("/api/other")).json()["reads"] == 2
    assert (await client.post("/api/items")).status_code == 405


def _kept_twice(cache: ReadCache, key: tuple[str, bytes], kept: _Kept, version: int = 1) -> None:
    cache.put(key, version, kept)  # the first miss only remembers the key
    cache.put(key, version, kept)


def test_the_cache_keeps_within_its_budget_dropping_the_oldest() -> None:
    cost = 100 + len("/00") + ENTRY_OVERHEAD_BYTES  # the entry, not only its body
    cache = ReadCache(max_bytes=16 * cost)
    assert cache.get(("/a", b""), 1) is None
    for n in range(20):
        _kept_twice(cache, (f"/{n:02d}", b""), _Kept([], b"x" * 100))
    assert len(cache.entries) == 16
    assert cache.size == 16 * cost <= cache.max_bytes
    assert cache.get(("/00", b""), 1) is None
    assert cache.get(("/19", b""), 1) is not None
    _kept_twice(cache, ("/big", b""), _Kept([], b"x" * 101))  # over a sixteenth: never kept
    assert cache.get(("/big", b""), 1) is None
    _kept_twice(cache, ("/stale", b""), _Kept([], b"x"), version=0)  # before the version moved
    assert cache.get(("/stale", b""), 1) is None


def test_one_off_query_strings_are_never_kept_and_push_nothing_out() -> None:
    cache = ReadCache(max_bytes=1 << 20)
    assert cache.get(("/p", b""), 1) is None
    _kept_twice(cache, ("/p", b""), _Kept([], b"hot"))
    for n in range(3 * DOORKEEPER_KEYS):  # a crawler: every query string new
        cache.put(("/p", f"fbclid={n}".encode()), 1, _Kept([], b"x" * 1000))
    assert list(cache.entries) == [("/p", b"")]
    assert len(cache.missed_once) <= DOORKEEPER_KEYS  # what it remembers is bounded too
    assert cache.get(("/p", b""), 1) == _Kept([], b"hot")


def test_data_version_moves_on_other_connections_commits(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE items (name TEXT)")
    version = SqliteDataVersion(str(db))
    before = version()
    assert version() == before
    _write(db, "fig")
    assert version() != before
    version.close()


def test_no_version_on_other_back_ends() -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    with data_version(engine) as version:
        assert version is None


# ---- own commits that name what they change ------------------------------------------


def _answer(changes: OwnChanges, tag: str | None, body: bytes = b"x") -> _Kept:
    return _Kept([], body, None, tag, changes.seq)  # its read begins now


def _keep(cache: ReadCache, changes: OwnChanges, path: str, kept: _Kept) -> None:
    cache.put((path, b""), 1, kept, changes)
    cache.put((path, b""), 1, kept, changes)


def test_an_own_commit_drops_only_the_answers_it_names_and_the_untagged() -> None:
    changes, cache = OwnChanges(), ReadCache(max_bytes=1 << 20)
    assert cache.get(("/p", b""), 1, changes) is None  # the version is now 1
    for path, tag in [("/p/a", "a"), ("/p/b", "b"), ("/p", None)]:
        _keep(cache, changes, path, _answer(changes, tag))
    changes.committed(["a"])
    assert cache.get(("/p/a", b""), 1, changes) is None
    assert cache.get(("/p/b", b""), 1, changes) is not None
    assert cache.get(("/p", b""), 1, changes) is None  # a list may show any product
    fresh = _answer(changes, "a", b"new")
    cache.put(("/p/a", b""), 1, fresh, changes)  # in use before: kept at its first miss
    assert cache.get(("/p/a", b""), 1, changes) is fresh
    changes.committed(None)  # names nothing: anything may have changed
    assert cache.get(("/p/a", b""), 1, changes) is None
    assert cache.get(("/p/b", b""), 1, changes) is None


def test_an_answer_read_while_an_own_commit_landed_is_not_kept() -> None:
    changes, cache = OwnChanges(), ReadCache(max_bytes=1 << 20)
    cache.get(("/p/a", b""), 1, changes)
    old_a, old_b = _answer(changes, "a"), _answer(changes, "b")  # both reads begin
    changes.committed(["a"])  # before either answer is complete
    _keep(cache, changes, "/p/a", old_a)
    _keep(cache, changes, "/p/b", old_b)
    assert cache.get(("/p/a", b""), 1, changes) is None  # it may show the old stock
    assert cache.get(("/p/b", b""), 1, changes) is old_b


def test_too_many_named_keys_count_as_everything() -> None:
    changes = OwnChanges()
    changes.committed([f"k{n}" for n in range(MAX_CHANGED_KEYS)])
    assert len(changes.key_at) == MAX_CHANGED_KEYS
    seen = changes.seq
    changes.committed(["one more"])  # the memory stays bounded
    assert changes.key_at == {}
    assert not changes.unchanged_since(seen, "untouched")


async def test_the_writer_version_moves_on_other_connections_commits_only(
    tmp_path: Path,
) -> None:
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE items (name TEXT)")
    database = create_engine(f"sqlite+aiosqlite:///{db}")
    assert isinstance(database, SqliteDatabase)
    version = cache_version(database)
    assert version is not None
    before = version()
    session = await database.begin(readonly=False)
    await session.execute(text("INSERT INTO items VALUES ('own')"))
    await session.commit()
    await session.close()
    assert version() == before  # the process's own commit: recorded in `changes` instead
    assert (version.changes.seq, version.changes.everything_at) == (1, 1)
    _write(db, "another process's")
    moved = version()
    assert moved != before
    database._drop_writer()  # a failed writer is replaced: its counter starts afresh
    assert version() not in {before, moved}
    await database.dispose()
