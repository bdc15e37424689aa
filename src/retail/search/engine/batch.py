"""IndexBatch: changes that one tantivy commit publishes together, all or none.

A batch only records intentions while it is open; documents are built and staged when it
closes (`stage`), so a failure part-way leaves nothing behind. Reads inside the batch (the
stock of a product upserted earlier in it, say) see the batch's own changes first, then
the last commit.

A stock count that leaves the product on the same side of zero changes nothing indexed: the
batch keeps it aside (`kept_stock`) rather than re-indexing the product, and the index
publishes it without a commit when nothing else in the batch needs one (`Deferred`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import tantivy

from retail.search.engine.deferred import Deferred
from retail.search.engine.model import IndexedProduct, InvalidProduct, validate_product
from retail.search.engine.schema import (
    Kind,
    ProductRecord,
    key_of,
    product_document,
    read_record,
    record_document,
)

Words = list[tuple[str, str]]


@dataclass(slots=True)
class Registry:
    """The index's own records as of the last commit, mirrored in memory."""

    meta: dict[str, str] = field(default_factory=dict)
    category_names: dict[str, str] = field(default_factory=dict)
    pending_stock: dict[str, int] = field(default_factory=dict)


class IndexBatch:
    def __init__(
        self,
        schema: tantivy.Schema,
        searcher: tantivy.Searcher,
        registry: Registry,
        deferred: Deferred | None = None,
    ) -> None:
        self._schema, self._searcher, self._registry = schema, searcher, registry
        self._deferred = deferred or Deferred()  # what earlier batches kept aside
        self._products: dict[str, ProductRecord | None] = {}  # None: deleted
        self._stock: dict[str, int] = {}  # counts that change nothing indexed
        self._category_names: dict[str, str | None] = {}
        self._pending_stock: dict[str, int | None] = {}
        self._meta: dict[str, str] = {}

    def upsert(self, products: Sequence[IndexedProduct]) -> None:
        """Insert or replace by id. A stock set through `set_stock` outlives the stock of a
        later upsert: inventory owns stock, a product document only carries a copy."""
        for product in products:
            validate_product(product)
        known = self._records([p.id for p in products])
        for product in products:
            previous = known.get(product.id)
            record = self._record_of(product, previous)
            if previous is not None and self._indexes_the_same(record, previous):
                # A repeated event, or one whose stock inventory overrides: nothing to do.
                if record.product.stock != previous.product.stock:
                    self._stock[product.id] = record.product.stock
                continue
            self._products[product.id] = record
            known[product.id] = record

    def _record_of(self, product: IndexedProduct, previous: ProductRecord | None) -> ProductRecord:
        record = ProductRecord(product)
        stock = self._inventory_stock(product.id, previous)
        if stock is not None:
            record = record.with_stock(stock)
        pending = self._pending(product.id)
        if pending is not None:
            record = record.with_stock(pending)
            self._pending_stock[product.id] = None
        return record

    def _inventory_stock(self, product_id: str, previous: ProductRecord | None) -> int | None:
        if product_id not in self._products:  # counts kept aside apply to the committed record
            for kept in (self._stock, self._deferred.stock):
                if product_id in kept:
                    return kept[product_id]
        if previous is not None and previous.stock_from_inventory:
            return previous.product.stock
        return None

    def _indexes_the_same(self, record: ProductRecord, previous: ProductRecord) -> bool:
        """Whether `record` would index as the committed `previous` does, and answer the
        same but for a stock count from inventory (kept aside then)."""
        new, old = record.product, previous.product
        if new.id in self._products or record.stock_from_inventory != previous.stock_from_inventory:
            return False
        if new.stock != old.stock and not (record.stock_from_inventory and _same_side(new, old)):
            return False
        # The document's own "stock" is never answered: the record's stock replaces it.
        document = {**new.document, "stock": old.document.get("stock")}
        return replace(new, stock=old.stock, document=document) == old

    def _pending(self, product_id: str) -> int | None:
        if product_id in self._pending_stock:
            return self._pending_stock[product_id]
        return self._registry.pending_stock.get(product_id)

    def delete(self, product_id: str) -> None:
        self._products[product_id] = None
        self._pending_stock[product_id] = None
        self._stock.pop(product_id, None)

    def set_stock(self, product_id: str, stock: int) -> None:
        """Set the stock; for an unknown product, keep it until the product arrives."""
        if isinstance(stock, bool) or not isinstance(stock, int):
            raise InvalidProduct(f"stock of {product_id} must be an integer")
        record = self._records([product_id]).get(product_id)
        if record is None:
            self._pending_stock[product_id] = stock
        elif product_id not in self._products and (stock > 0) == (record.product.stock > 0):
            self._stock[product_id] = stock  # still in stock, or still out: nothing to index
        else:
            self._products[product_id] = record.with_stock(stock)

    def set_category_name(self, category_id: str, name: str | None) -> None:
        """Name a category (None: it was deleted); its products re-index on the name."""
        self._category_names[category_id] = name

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    def changes_index(self) -> bool:
        """Whether committing needs to change an indexed document or record."""
        return bool(self._products or self._category_names or self._pending_stock)

    def kept_stock(self) -> dict[str, int]:
        """The counts kept aside, for `Deferred` when the batch is not committed."""
        return self._stock

    def meta(self) -> dict[str, str]:
        return self._meta

    def _records(self, product_ids: Iterable[str]) -> dict[str, ProductRecord]:
        wanted = list(dict.fromkeys(product_ids))
        committed = [i for i in wanted if i not in self._products]
        found = records_by_id(self._schema, self._searcher, committed)
        for product_id in wanted:
            record = self._products.get(product_id)
            if record is not None:
                found[product_id] = record
        return found

    # Closing ------------------------------------------------------------------------------

    def stage(self, writer: tantivy.IndexWriter) -> list[Words]:
        """Stage every change on the writer (ProductIndex does, when the batch closes);
        returns the words of each indexed product. Documents are all built before the
        first is staged: building is what can fail."""
        names = self._category_names_after()
        replacements: list[tuple[str, tantivy.Document | None]] = []
        indexed: list[Words] = []
        for product_id, record in self._products_to_index().items():
            document = None
            if record is not None:
                category_id = record.product.category_id
                category_name = names.get(category_id, "") if category_id else ""
                document, words = product_document(record, category_name)
                indexed.append(words)
            replacements.append((key_of(Kind.PRODUCT, product_id), document))
        replacements += self._record_documents()
        for key, _ in replacements:
            writer.delete_documents_by_term("key", key)
        for _, replacement in replacements:
            if replacement is not None:
                writer.add_document(replacement)
        return indexed

    def _products_to_index(self) -> dict[str, ProductRecord | None]:
        """This batch's products, those whose counts were kept aside (stored with this
        commit), and those of the renamed categories."""
        products = dict(self._products)
        counts = self._deferred.stock | self._stock
        kept = records_by_id(self._schema, self._searcher, [i for i in counts if i not in products])
        for product_id, record in kept.items():
            products[product_id] = record.with_stock(counts[product_id])
        for category_id in self._category_names:
            for record in records_in_category(self._schema, self._searcher, category_id):
                products.setdefault(record.product.id, record)
        return products

    def _category_names_after(self) -> dict[str, str]:
        names = dict(self._registry.category_names)
        for category_id, name in self._category_names.items():
            if name is None:
                names.pop(category_id, None)
            else:
                names[category_id] = name
        return names

    def _record_documents(self) -> list[tuple[str, tantivy.Document | None]]:
        changes: list[tuple[Kind, Mapping[str, object]]] = [
            (Kind.PENDING_STOCK, self._pending_stock),
            (Kind.CATEGORY, self._category_names),
            (Kind.META, self._deferred.meta | self._meta),
        ]
        return [
            (key_of(kind, name), None if value is None else record_document(kind, name, value))
            for kind, values in changes
            for name, value in values.items()
        ]

    def registry_after(self) -> Registry:
        """The registry once this batch is committed (for ProductIndex)."""
        registry = Registry(
            self._registry.meta | self._deferred.meta | self._meta,
            self._category_names_after(),
            dict(self._registry.pending_stock),
        )
        for product_id, stock in self._pending_stock.items():
            if stock is None:
                registry.pending_stock.pop(product_id, None)
            else:
                registry.pending_stock[product_id] = stock
        return registry


def _same_side(new: IndexedProduct, old: IndexedProduct) -> bool:
    return (new.stock > 0) == (old.stock > 0)


def records_by_id(
    schema: tantivy.Schema, searcher: tantivy.Searcher, product_ids: Sequence[str]
) -> dict[str, ProductRecord]:
    if not product_ids:
        return {}
    keys = [key_of(Kind.PRODUCT, product_id) for product_id in product_ids]
    if len(keys) == 1:  # a term query finds one key several times faster than a term set
        query = tantivy.Query.term_query(schema, "key", keys[0])
    else:
        query = tantivy.Query.term_set_query(schema, "key", keys)
    records = _records(searcher, query, len(keys))
    return {record.product.id: record for record in records}


def records_in_category(
    schema: tantivy.Schema, searcher: tantivy.Searcher, category_id: str
) -> list[ProductRecord]:
    query = tantivy.Query.term_query(schema, "category_id", category_id)
    return _records(searcher, query, searcher.num_docs)


def _records(searcher: tantivy.Searcher, query: tantivy.Query, limit: int) -> list[ProductRecord]:
    hits = searcher.search(query, max(limit, 1), count=False).hits
    return [ProductRecord.from_bytes(searcher.doc(address)["record"][0]) for _, address in hits]


def load_registry(schema: tantivy.Schema, searcher: tantivy.Searcher) -> Registry:
    return Registry(
        meta={k: str(v) for k, v in _read_kind(schema, searcher, Kind.META).items()},
        category_names={k: str(v) for k, v in _read_kind(schema, searcher, Kind.CATEGORY).items()},
        pending_stock={
            k: int(v) for k, v in _read_kind(schema, searcher, Kind.PENDING_STOCK).items()
        },
    )


def _read_kind(schema: tantivy.Schema, searcher: tantivy.Searcher, kind: Kind) -> dict[str, Any]:
    query = tantivy.Query.term_query(schema, "kind", str(kind))
    hits = searcher.search(query, max(searcher.num_docs, 1), count=False).hits
    return dict(read_record(searcher.doc(address)["record"][0]) for _, address in hits)
