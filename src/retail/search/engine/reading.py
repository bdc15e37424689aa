"""What searches read: the searcher of one commit, and the answers derived from it.

A commit replaces the `View`; nothing in a view ever changes meaning, so what was derived
from its searcher can be kept for as long as it is current:

- the page of hits of each query asked (by the `SearchQuery`, which is hashable);
- each hit's answer: the stored record, decoded, and its JSON;
- each candidate's indexed terms, which the re-ranking reads (`ranking.py`).

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
from retail.search.engine.queries import Plan
from retail.search.engine.ranking import Candidate, rerank
from retail.search.engine.schema import FIELDS, TIE_WEIGHT_FIELD, ProductRecord

# Enough for the distinct queries of a busy hour, and for every product of a large shop.
MAX_PAGES = 4096
MAX_HITS = 50_000
# The best candidates (by the tantivy query) that the rules re-rank; later pages follow the
# candidates' order. Measured on 50,000 real products: a larger window found nothing more.
RERANK_WINDOW = 50

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
        self._candidates: dict[Address, Candidate] = {}

    def cached_page(self, query: SearchQuery) -> tuple[Address, ...] | None:
        return self._pages.get(query)

    def page(self, query: SearchQuery, plan: Plan, offset: int, limit: int) -> tuple[Address, ...]:
        """Hits offset..offset+limit, remembered for `query`."""
        addresses = tuple(self.ranked(plan, offset, limit))
        if len(self._pages) >= MAX_PAGES:
            self._pages.clear()
        self._pages[query] = addresses
        return addresses

    def ranked(self, plan: Plan, offset: int, limit: int) -> list[Address]:
        """The plan's hits offset..offset+limit: re-ranked within the window, then in the
        candidates' order."""
        query = plan.query
        if query is None or not plan.words:
            return []
        if offset >= RERANK_WINDOW:
            return self._search(query, offset, limit)
        window = self._search(query, 0, RERANK_WINDOW)
        order = rerank(plan, [self._candidate(address) for address in window])
        found = [window[i] for i in order][offset : offset + limit]
        if offset + limit > RERANK_WINDOW and len(window) == RERANK_WINDOW:
            found += self._search(query, RERANK_WINDOW, offset + limit - RERANK_WINDOW)
        return found

    def _search(self, query: tantivy.Query, offset: int, limit: int) -> list[Address]:
        hits = self.searcher.search(
            query, limit, count=False, offset=offset, weight_by_field=TIE_WEIGHT_FIELD
        ).hits
        return [(address.segment_ord, address.doc) for _, address in hits]

    def _candidate(self, address: Address) -> Candidate:
        candidate = self._candidates.get(address)
        if candidate is None:
            document = self.searcher.doc(tantivy.DocAddress(*address))
            candidate = Candidate.of({name: document.get_all(name) for name in FIELDS})
            if len(self._candidates) >= MAX_HITS:
                self._candidates.clear()
            self._candidates[address] = candidate
        return candidate

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
