"""Embedded product search index: tantivy, BM25 over weighted fields, with typo and prefix matching.

See docs/search-engine-evaluation.md for why this engine, and `ProductIndex` for the
thread-safety and atomicity contract.
"""

from retail.search.engine.batch import IndexBatch
from retail.search.engine.index import ProductIndex
from retail.search.engine.model import (
    EmptyQuery,
    IndexClosed,
    IndexedProduct,
    IndexIncompatible,
    IndexInUse,
    InvalidProduct,
    InvalidQuery,
    QueryTooLong,
    SearchQuery,
)

__all__ = [
    "EmptyQuery",
    "IndexBatch",
    "IndexClosed",
    "IndexInUse",
    "IndexIncompatible",
    "IndexedProduct",
    "InvalidProduct",
    "InvalidQuery",
    "ProductIndex",
    "QueryTooLong",
    "SearchQuery",
]
