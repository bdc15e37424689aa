"""A stock count that leaves a product in stock (or out of it) changes nothing indexed: it is
answered at once without a commit, and stored with the next one (engine/deferred.py).

tantivy rewrites the directory's meta.json on every commit, so an unchanged meta.json is
"no commit happened"."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from retail.search.engine import ProductIndex, SearchQuery
from retail.search.engine.deferred import LARGE_BATCH, MAX_AGE_SECONDS
from tests.search_engine.catalogue import PRODUCTS, ids, open_index, product

TEE = next(p for p in PRODUCTS if p.id == "tee")  # stock 10
OXFORD = next(p for p in PRODUCTS if p.id == "oxford")  # stock 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def commits_of(directory: Path) -> bytes:
    return (directory / "meta.json").read_bytes()


def stock_of(index: ProductIndex, text: str, product_id: str) -> int:
    return int(next(d["stock"] for d in index.search(SearchQuery(text)) if d["id"] == product_id))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    open_index(tmp_path / "index", PRODUCTS).close()
    return tmp_path / "index"


@pytest.fixture
def index(directory: Path, clock: Clock) -> ProductIndex:
    return ProductIndex(directory, clock=clock)


def test_a_count_that_stays_in_stock_is_answered_without_a_commit(
    index: ProductIndex, directory: Path
) -> None:
    assert stock_of(index, "organic tee", "tee") == 10  # and the answer is cached now
    before = commits_of(directory)
    with index.batch({"cursor:inventory": "7"}) as batch:
        batch.set_stock("tee", 9)
    assert commits_of(directory) == before
    assert stock_of(index, "organic tee", "tee") == 9
    assert index.search_json(SearchQuery("organic tee")).count(b'"stock":9') == 1
    assert ids(index, "organic tee", in_stock=True) == ["tee"]
    assert index.get_meta("cursor:inventory") == "7"
    index.close()


def test_crossing_zero_commits_and_moves_the_product_between_filters(
    index: ProductIndex, directory: Path
) -> None:
    assert ids(index, "oxford", in_stock=True) == []
    before = commits_of(directory)
    index.set_stock("oxford", 5)
    assert commits_of(directory) != before
    assert ids(index, "oxford", in_stock=True) == ["oxford"]
    index.set_stock("oxford", 4)  # kept aside: still in stock
    assert ids(index, "oxford", in_stock=True) == ["oxford"]
    assert stock_of(index, "oxford", "oxford") == 4
    index.set_stock("oxford", 0)
    assert ids(index, "oxford", in_stock=True) == []
    assert ids(index, "oxford", in_stock=False) == ["oxford"]
    assert stock_of(index, "oxford", "oxford") == 0
    index.close()


def test_kept_counts_and_meta_are_stored_with_the_next_commit(
    index: ProductIndex, directory: Path
) -> None:
    index.set_stock("tee", 3, meta={"cursor:inventory": "1"})
    index.set_stock("oxford", 2, meta={"cursor:inventory": "2"})  # a commit: out of stock before
    index.close()
    stored = commits_of(directory)
    with ProductIndex(directory) as reopened:
        assert stock_of(reopened, "organic tee", "tee") == 3
        assert stock_of(reopened, "oxford", "oxford") == 2
        assert reopened.get_meta("cursor:inventory") == "2"
    assert commits_of(directory) == stored  # nothing was left to store at the second close


def test_close_stores_what_was_kept(index: ProductIndex, directory: Path) -> None:
    before = commits_of(directory)
    index.set_stock("tee", 8, meta={"cursor:inventory": "4"})
    index.close()
    assert commits_of(directory) != before
    with ProductIndex(directory) as reopened:
        assert stock_of(reopened, "organic tee", "tee") == 8
        assert reopened.get_meta("cursor:inventory") == "4"
        # Stored as inventory's: a later product event does not override it.
        reopened.upsert([replace(TEE, title="Organic Tee - Navy", stock=1)])
        assert stock_of(reopened, "organic tee navy", "tee") == 8


def test_kept_counts_are_committed_once_old_enough(
    index: ProductIndex, directory: Path, clock: Clock
) -> None:
    index.set_stock("tee", 9)
    before = commits_of(directory)
    clock.now += MAX_AGE_SECONDS - 1
    index.set_stock("tee", 8)
    assert commits_of(directory) == before
    clock.now += 1
    index.set_stock("tee", 7)
    assert commits_of(directory) != before
    assert stock_of(index, "organic tee", "tee") == 7
    index.close()


def test_a_large_page_of_counts_commits_at_once(index: ProductIndex, directory: Path) -> None:
    before = commits_of(directory)
    with index.batch() as batch:
        for n in range(LARGE_BATCH):
            batch.set_stock("tee", 100 + n)
    assert commits_of(directory) == before  # one product: one count kept
    extra = [product(f"p{n}", f"Spare Part {n}", stock=1) for n in range(LARGE_BATCH)]
    index.upsert(extra)
    before = commits_of(directory)
    with index.batch() as batch:
        for item in extra:
            batch.set_stock(item.id, 2)
    assert commits_of(directory) != before
    index.close()


def test_a_repeated_product_event_commits_nothing(index: ProductIndex, directory: Path) -> None:
    index.set_stock("tee", 6)
    index.set_stock("oxford", 1)  # a commit: now both counts are inventory's
    before = commits_of(directory)
    index.upsert([TEE, replace(OXFORD, stock=30)])  # as before, but for a copy of the stock
    assert commits_of(directory) == before
    assert (stock_of(index, "organic tee", "tee"), stock_of(index, "oxford", "oxford")) == (6, 1)
    index.upsert([replace(TEE, price_cents=2600)])  # a real change
    assert commits_of(directory) != before
    [tee] = index.search(SearchQuery("organic tee"))
    assert (tee["stock"], tee["id"]) == (6, "tee")
    index.close()


def test_a_kept_count_applies_to_a_product_changed_later(index: ProductIndex) -> None:
    index.set_stock("tee", 4)
    index.upsert([replace(TEE, title="Organic Tee - Sky Blue", stock=50)])
    assert stock_of(index, "sky blue", "tee") == 4
    index.close()


def test_a_deleted_product_does_not_come_back_with_its_kept_count(
    index: ProductIndex, directory: Path
) -> None:
    index.set_stock("tee", 4)
    index.delete("tee")
    index.set_stock("oxford", 9)  # another commit
    assert ids(index, "organic tee") == []
    index.set_stock("berries", 39)
    index.clear()
    assert index.count() == 0
    index.close()
    with ProductIndex(directory) as reopened:
        assert reopened.count() == 0


def test_answers_follow_each_commit(index: ProductIndex) -> None:
    assert ids(index, "linen ") == ["shorts", "jacket"]
    index.upsert([product("linen-tee", "Linen Tee", "linen", stock=3)])
    assert "linen-tee" in ids(index, "linen ")
    index.delete("shorts")
    assert "shorts" not in ids(index, "linen ")
    index.close()
