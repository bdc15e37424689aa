"""What the index stores, what it is asked, and the errors a caller can cause."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from retail.search.engine.analysis import MAX_QUERY_CHARS

MAX_LIMIT = 100
MAX_OFFSET = 10_000
MAX_ID_CHARS = 200
# tantivy stores integers as i64.
MAX_INTEGER = 2**63 - 1


class InvalidQuery(ValueError):
    """The caller's query cannot be run (a 4xx, never a 5xx)."""


class EmptyQuery(InvalidQuery):
    pass


class QueryTooLong(InvalidQuery):
    pass


class InvalidProduct(ValueError):
    """A product handed to `upsert` cannot be stored: an empty or overlong id, a price or
    stock that is not an integer in range. (A created_at that is not ISO 8601 is accepted:
    the product is still worth finding, and only sorts as the oldest among equals.)"""


class IndexInUse(RuntimeError):
    """Another ProductIndex (in this or another process) holds the directory."""


class IndexClosed(RuntimeError):
    pass


class IndexIncompatible(RuntimeError):
    """The directory holds an index written with another schema (an older version)."""


@dataclass(frozen=True, slots=True)
class IndexedProduct:
    id: str
    title: str
    description: str
    price_cents: int
    category_id: str | None
    stock: int
    created_at: str  # ISO 8601
    document: dict[str, Any]  # the product wire shape, returned as-is (with the latest stock)
    brand: str = ""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    category_id: str | None = None
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    in_stock: bool | None = None
    limit: int = 20
    offset: int = 0


def validate_query(query: SearchQuery) -> None:
    """Raise InvalidQuery unless the query can run; says which part is wrong."""
    if not isinstance(query.text, str) or not query.text.strip():
        raise EmptyQuery("the search text is empty")
    if len(query.text) > MAX_QUERY_CHARS:
        raise QueryTooLong(f"the search text is longer than {MAX_QUERY_CHARS} characters")
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_LIMIT}")
    if not 0 <= query.offset <= MAX_OFFSET:
        raise InvalidQuery(f"offset must be between 0 and {MAX_OFFSET}")
    if query.category_id is not None and len(query.category_id) > MAX_ID_CHARS:
        raise InvalidQuery("category_id is too long")
    prices = (query.min_price_cents, query.max_price_cents)
    if any(price is not None and not 0 <= price <= MAX_INTEGER for price in prices):
        raise InvalidQuery("prices must be between 0 and 2**63 - 1 cents")
    low, high = prices
    if low is not None and high is not None and low > high:
        raise InvalidQuery("min_price_cents is above max_price_cents")


def validate_product(product: IndexedProduct) -> None:
    """Raise InvalidProduct unless the product can be stored."""
    if not isinstance(product.id, str) or not 1 <= len(product.id) <= MAX_ID_CHARS:
        raise InvalidProduct(f"a product id must be a string of 1 to {MAX_ID_CHARS} characters")
    texts = (product.title, product.description, product.created_at, product.brand)
    if not all(isinstance(text, str) for text in texts):
        raise InvalidProduct(
            f"product {product.id}: title, description, created_at, brand must be strings"
        )
    category_id = product.category_id
    if category_id is not None and not (isinstance(category_id, str) and category_id):
        raise InvalidProduct(f"product {product.id}: category_id must be a non-empty string")
    if category_id is not None and len(category_id) > MAX_ID_CHARS:
        raise InvalidProduct(f"product {product.id}: category_id is too long")
    if not isinstance(product.document, dict):
        raise InvalidProduct(f"product {product.id}: document must be a dict")
    for name, value in (("price_cents", product.price_cents), ("stock", product.stock)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidProduct(f"product {product.id}: {name} must be an integer")
        if not -MAX_INTEGER <= value <= MAX_INTEGER:
            raise InvalidProduct(f"product {product.id}: {name} is out of range")


def created_seconds(created_at: str) -> float | None:
    """Seconds since the epoch, so that mixed offsets ("Z", "+02:00", naive as UTC) order
    correctly; None when created_at is not ISO 8601."""
    try:
        moment = datetime.fromisoformat(created_at)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
