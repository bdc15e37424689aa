"""What searches read: the searcher of one commit, and the answers derived from it.

A commit replaces the `View`; nothing in a view ever changes meaning, so what was derived
from its searcher can be kept for as long as it is current:

- the page of hits of each query asked (by the `SearchQuery`, which is hashable);
- each hit's answer: the stored record, decoded, and its JSON.

Reading a hit's stored record (the doc store, then orjson) cost more than the tantivy search
itself on a 20-hit page, and a shop's queries repeat, so both caches pay from the second
query on. They are bounded by clearing when full: concurrent readers (worker threads and
the event loop) only ever get, set and clear, which the GIL keeps atomic.

Stock counts that changed without changing what is indexed (`Deferred`) are laid over the
answers here; the hits themselves cannot change without a commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import tantivy

from retail.search.engine.model import SearchQuery
from retail.search.engine.schema import TIE_WEIGHT_FIELD, ProductRecord

# Enough for the distinct queries of a busy hour, and for every product of a large shop.
MAX_PAGES = 4096
MAX_HITS = 50_000

Address = tuple[int, int]  # (segment ordinal, doc id): valid for one searcher


@dataclass(frozen=True, slots=True)
class Hit:
    """A product as a search answers it."""

    product_id: str
    title: str
    stock: int
    document: dict[str, Any]  # shared between answers: copy before handing out
    json: bytes

    @classmethod
    def of(cls, record: ProductRecord, stock: int | None = None) -> Hit:
        product = record.product
        stock = product.stock if stock is None else stock
        document = {**product.document, "stock": stock}
        return cls(product.id, product.title, stock, document, orjson.dumps(document))


class View:
    def __init__(self, searcher: tantivy.Searcher) -> None:
        self.searcher = searcher
        self._pages: dict[SearchQuery, tuple[Address, ...]] = {}
        self._hits: dict[Address, Hit] = {}

    def cached_page(self, query: SearchQuery) -> tuple[Address, ...] | None:
        return self._pages.get(query)

    def page(
        self, query: SearchQuery, tiers: Sequence[tantivy.Query], offset: int, limit: int
    ) -> tuple[Address, ...]:
        """Hits offset..offset+limit over the tiers in order, remembered for `query`."""
        addresses = tuple(self.addresses(tiers, offset, limit))
        if len(self._pages) >= MAX_PAGES:
            self._pages.clear()
        self._pages[query] = addresses
        return addresses

    def addresses(self, tiers: Sequence[tantivy.Query], offset: int, limit: int) -> list[Address]:
        """A later tier is only read when the earlier ones run out before the page ends."""
        found: list[Address] = []
        for tier in tiers:
            hits = self.searcher.search(
                tier, limit, count=False, offset=offset, weight_by_field=TIE_WEIGHT_FIELD
            ).hits
            found += [(address.segment_ord, address.doc) for _, address in hits]
            limit -= len(hits)
            if limit == 0:
                break
            # Short of the page: the tier ended within it (next tier from its start), or
            # before it (skip what is left of the offset, which needs the tier's size).
            offset = 0 if hits else offset - match_count(self.searcher, tier)
        return found

    def hits(self, addresses: Sequence[Address], stock: Mapping[str, int]) -> list[Hit]:
        """The answers at `addresses`, with the stock counts of `stock` laid over."""
        answers: list[Hit] = []
        for address in addresses:
            hit = self._hits.get(address)
            if hit is None:
                hit = self._remember(address, Hit.of(self._record(address)))
            latest = stock.get(hit.product_id)
            if latest is not None and latest != hit.stock:
                hit = self._remember(address, Hit.of(self._record(address), latest))
            answers.append(hit)
        return answers

    def _record(self, address: Address) -> ProductRecord:
        stored = self.searcher.doc(tantivy.DocAddress(*address))["record"][0]
        return ProductRecord.from_bytes(stored)

    def _remember(self, address: Address, hit: Hit) -> Hit:
        if len(self._hits) >= MAX_HITS:
            self._hits.clear()
        self._hits[address] = hit
        return hit


def answer_json(hits: Sequence[Hit]) -> bytes:
    """The JSON array of the hits' documents, from their JSON (no re-encoding)."""
    return b"[" + b",".join(hit.json for hit in hits) + b"]"


def match_count(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    result: Any = searcher.search(query, 1, count=True)  # the stubs omit SearchResult.count
    return int(result.count)
