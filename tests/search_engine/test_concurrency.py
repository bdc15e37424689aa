"""One writer and several readers at once: no reader fails or sees a half-applied batch."""

from __future__ import annotations

import threading
from pathlib import Path

from retail.search.engine import ProductIndex, SearchQuery
from tests.search_engine.catalogue import product


def test_readers_see_whole_batches_while_a_writer_commits(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    partial: list[int] = []
    stop = threading.Event()
    with ProductIndex(tmp_path) as index:

        def read() -> None:
            try:
                while not stop.is_set():
                    found = index.search(SearchQuery("pair", limit=100))
                    if len(found) % 2:  # every batch adds a pair
                        partial.append(len(found))
            except BaseException as error:
                errors.append(error)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for reader in readers:
            reader.start()
        for n in range(15):
            pair = [product(f"{n}-{side}", f"Pair {n} {side}") for side in ("left", "right")]
            index.upsert(pair, meta={"cursor": str(n)})
        stop.set()
        for reader in readers:
            reader.join()
        assert errors == []
        assert partial == []
        assert index.count() == 30
        assert index.get_meta("cursor") == "14"
