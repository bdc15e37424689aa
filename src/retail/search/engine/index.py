"""ProductIndex: the embedded product search index of the search service (tantivy).

Thread safety: one writer at a time, any number of concurrent readers. Writes take an
internal lock and commit before they return, so the next search, from any thread, sees
them. Searches never take that lock: each reads the snapshot of the last commit (tantivy
searchers are immutable) and runs in Rust with the GIL released. The methods are
synchronous; an async service calls them from a worker thread. A directory belongs to one
open ProductIndex at a time (IndexInUse otherwise, across processes too); several
processes may each hold their own directory.

Atomic cursors: every write takes `meta`, key/value pairs committed in the same tantivy
commit as the change, so a feed cursor is stored exactly when its events are applied. A
commit costs tens of milliseconds (it syncs to disk): apply a page of feed events in one
`batch()`, with its cursor, rather than one commit per event. A batch that changes nothing
indexed (stock counts that stay on the same side of zero, meta alone) is published to
searches and `get_meta` at once but stored with the next commit (`Deferred`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import tantivy

from retail.search.engine.analysis import QueryWord, query_words, stem
from retail.search.engine.batch import IndexBatch, Registry, Words, load_registry
from retail.search.engine.deferred import Deferred
from retail.search.engine.directory_lock import DirectoryLock
from retail.search.engine.heap import IdleTrim
from retail.search.engine.model import (
    IndexClosed,
    IndexedProduct,
    IndexIncompatible,
    SearchQuery,
    validate_query,
)
from retail.search.engine.queries import filter_queries, plan_query
from retail.search.engine.reading import Hit, View, answer_json, match_count
from retail.search.engine.schema import Kind, build_schema
from retail.search.engine.vocabulary import Vocabulary, count_documents

DEFAULT_SUGGESTIONS = 8
MAX_SUGGESTIONS = 50
# Suggestions come from what a shopper reads on a product: its title and its brand.
SUGGEST_FIELDS = ("title", "brand")
SUGGEST_CANDIDATES = 24
_WRITER_HEAP_BYTES = 128_000_000
# One indexing thread: Python builds documents meanwhile, searches keep the other core, and
# products of a batch land in one segment in order, so equal scores keep a stable order.
_WRITER_THREADS = 1


class ProductIndex:
    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        """Open the index stored under `directory`, creating both if needed; `clock`
        (seconds) dates what waits for a commit (`Deferred`)."""
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = DirectoryLock(directory)
        try:
            self._schema = build_schema()
            self._index = _open_or_create(directory, self._schema)
            self._writer = self._index.writer(_WRITER_HEAP_BYTES, _WRITER_THREADS)
            searcher = self._index.searcher()
            self._registry = load_registry(self._schema, searcher)
            self._vocabulary = _load_vocabulary(searcher)
            self._view = View(searcher)
        except BaseException:
            self._lock.release()
            raise
        self._write_lock = threading.RLock()
        self._batch_open = False
        self._closed = False
        self._trim = IdleTrim()
        self._clock = clock
        self._deferred = Deferred()

    # Writes -------------------------------------------------------------------------------

    def batch(self, meta: Mapping[str, str] | None = None) -> AbstractContextManager[IndexBatch]:
        """Changes published together, with `meta`, when the block ends; none of them if it
        raises. Opening one, or calling another write, inside a batch raises RuntimeError."""
        return self._batch(meta)

    @contextmanager
    def _batch(
        self, meta: Mapping[str, str] | None = None, *, store: bool = False
    ) -> Iterator[IndexBatch]:
        with self._write_lock:
            self._check_open()
            if self._batch_open:
                raise RuntimeError("a ProductIndex batch is already open")
            self._batch_open = True
            try:
                view, deferred = self._view, self._deferred
                batch = IndexBatch(self._schema, view.searcher, self._registry, deferred)
                yield batch
                for key, value in (meta or {}).items():
                    batch.set_meta(key, value)
                kept = len(batch.kept_stock())
                if store or batch.changes_index() or self._deferred.due(self._clock(), kept):
                    self._commit(batch)
                else:
                    self._deferred.keep(batch.kept_stock(), batch.meta(), self._clock())
            finally:
                self._batch_open = False

    def _commit(self, batch: IndexBatch) -> None:
        try:
            indexed = batch.stage(self._writer)
            self._writer.commit()
        except BaseException:
            self._writer.rollback()
            raise
        self._index.reload()
        self._registry = batch.registry_after()
        self._learn(indexed)
        # Published after the vocabulary has learnt the batch's words: pages cached in the
        # view are built with them. Then what was deferred is stored: it can go.
        self._view = View(self._index.searcher())
        self._deferred = Deferred()
        self._trim.wrote()  # the heap the segment was built in goes back once writes pause

    def _learn(self, indexed: Sequence[Words]) -> None:
        new_words = self._vocabulary.unknown(pair for words in indexed for pair in words)
        term_lists = ([term for _, term in words] for words in indexed)
        self._vocabulary.add(new_words, count_documents(term_lists))

    def upsert(
        self, products: Sequence[IndexedProduct], meta: Mapping[str, str] | None = None
    ) -> None:
        """Insert or replace (by id) a batch of products, all or none. Raises
        InvalidProduct (a ValueError) for a product that cannot be indexed."""
        with self.batch(meta) as batch:
            batch.upsert(products)

    def delete(self, product_id: str, meta: Mapping[str, str] | None = None) -> None:
        """Remove a product; an unknown id is not an error (events may repeat)."""
        with self.batch(meta) as batch:
            batch.delete(product_id)

    def set_stock(self, product_id: str, stock: int, meta: Mapping[str, str] | None = None) -> None:
        """Set a product's stock; for an unknown id, keep it until the product arrives."""
        with self.batch(meta) as batch:
            batch.set_stock(product_id, stock)

    def set_category_name(
        self, category_id: str, name: str | None, meta: Mapping[str, str] | None = None
    ) -> None:
        """Name a category (None: it was deleted); its products re-rank on the name."""
        with self.batch(meta) as batch:
            batch.set_category_name(category_id, name)

    def set_meta(self, key: str, value: str) -> None:
        with self.batch({key: value}):
            pass

    def clear(self, meta: Mapping[str, str] | None = None) -> None:
        """Forget everything, meta included (a rebuild starts its feeds from the start),
        then store `meta`, in one commit."""
        with self._write_lock:
            self._check_open()
            if self._batch_open:  # the delete below would otherwise join the open batch
                raise RuntimeError("clear() inside a ProductIndex batch")
            previous, deferred = self._registry, self._deferred
            self._writer.delete_all_documents()
            # The batch must not carry the old records over, nor store kept counts (which
            # would bring their products back).
            self._registry, self._deferred = Registry(), Deferred()
            try:
                with self._batch(meta, store=True):
                    pass
            except BaseException:
                self._registry, self._deferred = previous, deferred
                raise
            self._vocabulary = Vocabulary()

    # Reads --------------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> list[dict[str, Any]]:
        """Product documents, best first, each with its latest stock. Raises InvalidQuery
        (a ValueError) for a query that cannot run: blank, too long, or out-of-range limit,
        offset or prices. Text with nothing searchable in it (only emoji) finds nothing."""
        return [dict(hit.document) for hit in self._hits(query)]

    def search_json(self, query: SearchQuery) -> bytes:
        """`search`, as the JSON array of the documents."""
        return answer_json(self._hits(query))

    def cached_json(self, query: SearchQuery) -> bytes | None:
        """`search_json` if this query was answered since the last commit, else None: a few
        microseconds, so it needs no worker thread."""
        self._check_open()
        view = self._view
        page = view.cached_page(query)
        return None if page is None else answer_json(view.hits(page, self._deferred.stock))

    def _hits(self, query: SearchQuery) -> list[Hit]:
        validate_query(query)
        self._check_open()
        view = self._view
        page = view.cached_page(query)
        if page is None:
            words = query_words(query.text)
            filters = filter_queries(self._schema, query)
            plan = plan_query(self._schema, words, self._vocabulary, filters)
            page = view.page(query, plan, query.offset, query.limit)
        return view.hits(page, self._deferred.stock)

    def suggest(self, prefix: str, limit: int = DEFAULT_SUGGESTIONS) -> list[str]:
        """Up to `limit` completions of what was typed: its words, the last one completed
        with a word of the index ("choc" -> "chocolate"; with a typo, "chocl" too), the
        completions that most products carry in their title or brand first (with the
        earlier words too); [] for input with nothing searchable."""
        words = query_words(prefix[: 4 * MAX_SUGGESTIONS])
        if not words:
            return []
        self._check_open()
        limit = max(1, min(limit, MAX_SUGGESTIONS))
        *earlier, last = words
        vocabulary, searcher = self._vocabulary, self._view.searcher
        completions = vocabulary.completions(last.typed, SUGGEST_CANDIDATES)
        if not completions:
            typos = vocabulary.typo_edits(last.typed, last.term, last.typo_budget)
            typos += vocabulary.prefix_typos(last.typed, last.typo_budget)
            completions = [(vocabulary.word_of(t), t) for t, _ in typos[:SUGGEST_CANDIDATES]]
        counted: list[tuple[int, str]] = []
        for word, term in completions:
            count = match_count(searcher, self._suggestion_query([*earlier], term))
            if count:
                counted.append((count, " ".join([*(w.typed for w in earlier), word])))
        counted.sort(key=lambda pair: (-pair[0], len(pair[1]), pair[1]))
        return list(dict.fromkeys(text for _, text in counted))[:limit]

    def _suggestion_query(self, earlier: list[QueryWord], term: str) -> tantivy.Query:
        def shown(term: str) -> tantivy.Query:
            fields = [tantivy.Query.term_query(self._schema, f, term) for f in SUGGEST_FIELDS]
            return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in fields])

        must = [shown(word.term) for word in earlier] + [shown(term)]
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in must])

    def get_meta(self, key: str) -> str | None:
        """The value as of the last commit (so after every returned write)."""
        self._check_open()
        if key in self._deferred.meta:
            return self._deferred.meta[key]
        return self._registry.meta.get(key)

    def count(self) -> int:
        """How many products the index holds."""
        self._check_open()
        query = tantivy.Query.term_query(self._schema, "kind", str(Kind.PRODUCT))
        return match_count(self._view.searcher, query)

    # Life cycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Store what waits for a commit and release the directory; idempotent. Do not
        close while other threads search."""
        with self._write_lock:
            if self._closed:
                return
            try:
                if self._deferred:
                    with self._batch(store=True):
                        pass
            finally:
                self._closed = True
                self._trim.cancel()
                try:
                    self._writer.wait_merging_threads()
                finally:
                    self._lock.release()

    def __enter__(self) -> ProductIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise IndexClosed("the index is closed")


def _open_or_create(directory: Path, schema: tantivy.Schema) -> tantivy.Index:
    if tantivy.Index.exists(str(directory)) and tantivy.Index.open(str(directory)).schema != schema:
        raise IndexIncompatible(
            f"{directory} holds an index of another schema: remove it and rebuild from the feeds"
        )
    return tantivy.Index(schema, path=str(directory))


def _load_vocabulary(searcher: tantivy.Searcher) -> Vocabulary:
    words = searcher.terms_with_prefix("surface", "")
    documents: dict[str, int] = {}
    terms = {word: stem(word) for word, _ in words}
    for word, count in words:
        documents[terms[word]] = documents.get(terms[word], 0) + count
    return Vocabulary(terms, documents)
