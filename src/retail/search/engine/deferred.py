"""Changes that searches see at once but that wait for the next commit to be stored.

Every order moves stock, and a tantivy commit (re-index, segment write, fsync, reopening
the searcher) cost about 9 ms of CPU, so committing each `stock.changed` made search spend
that much per order. Yet the index needs a product's stock only as in stock or not (the
`in_stock` filter, the tie-break): a count that stays on the same side of zero changes no
indexed document. Such a count, and a meta pair written with nothing else (the cursor of a
page that changed nothing), are kept here instead: answers lay the counts over the stored
documents, `get_meta` reads the pairs first.

They are stored with the next commit, which re-indexes the products with their latest
count. That commit comes with the next change that needs one, or when this holds
`MAX_BATCHES` batches or `MAX_STOCK` products, or is `MAX_AGE_SECONDS` old, or at close.
A batch of `LARGE_BATCH` counts or more (a page of a rebuild or a catch-up) commits at once:
its commit costs little per event, and keeping it would only move the re-indexing of its
products to a later commit.
Until then a crash loses them, and that is safe for a feed: its cursor is among them, so
the index's stored cursor is still before their events, which the feed delivers again.
The limits bound that replay and the work of the commit that stores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

LARGE_BATCH = 50
MAX_BATCHES = 500
MAX_STOCK = 2000
MAX_AGE_SECONDS = 10.0


@dataclass(slots=True)
class Deferred:
    stock: dict[str, int] = field(default_factory=dict)  # product id -> latest count
    meta: dict[str, str] = field(default_factory=dict)
    batches: int = 0
    since: float | None = None  # when the oldest of them was kept (monotonic seconds)

    def __bool__(self) -> bool:
        return self.batches > 0

    def keep(self, stock: Mapping[str, int], meta: Mapping[str, str], now: float) -> None:
        # Readers use `stock` without a lock: update it in place, never rebind it.
        self.stock.update(stock)
        self.meta.update(meta)
        self.batches += 1
        if self.since is None:
            self.since = now

    def due(self, now: float, kept: int = 0) -> bool:
        """Whether a batch that keeps `kept` counts should commit, with these, even if it
        changes nothing indexed."""
        if kept >= LARGE_BATCH:
            return True
        if self.since is None:
            return False
        too_old = now - self.since >= MAX_AGE_SECONDS
        return too_old or self.batches >= MAX_BATCHES or len(self.stock) >= MAX_STOCK
