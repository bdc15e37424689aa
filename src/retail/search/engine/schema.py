"""The tantivy schema, and how products and the index's own records become documents.

Besides products, the index holds small records of its own (meta pairs, category names,
stock that arrived before its product) as documents of other kinds. They live in the same
tantivy index so that one commit publishes a change together with the feed cursor that
led to it; nothing is ever half-applied.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from enum import StrEnum
from typing import Any

import orjson
import tantivy

from retail.search.engine.analysis import analysed_words
from retail.search.engine.model import IndexedProduct, InvalidProduct, created_seconds

# The searched fields, the best first: a word found in the title ranks above the same word
# found in the brand, then the category name, then the description.
FIELDS = ("title", "brand", "category", "description")
# The whole title's terms as one raw term: a query equal to the title is found by one lookup.
TITLE_KEY_FIELD = "title_key"
TIE_WEIGHT_FIELD = "tie_weight"
# The creation dates that the tie-break tells apart (to a few days: f32 scores).
_RECENCY_FROM, _RECENCY_TO = 1_420_070_400.0, 2_366_841_600.0  # 2015-01-01, 2045-01-01
# tantivy multiplies a hit's score by log2(2 + tie_weight): weights are chosen so that the
# factor is at most 1 + _TIE_SPAN, too small to reorder real BM25 differences (its field
# norms are quantised, so equal-looking products score exactly equal).
_TIE_SPAN = 1e-3


_PRODUCT_FIELDS = tuple(field.name for field in dataclass_fields(IndexedProduct))


class Kind(StrEnum):
    PRODUCT = "product"
    META = "meta"
    CATEGORY = "category"
    PENDING_STOCK = "pending_stock"


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("key", tokenizer_name="raw")
    builder.add_text_field("kind", tokenizer_name="raw")
    for field in FIELDS:
        # Stored: re-ranking reads each candidate's terms in order (`ranking.py`); positions
        # let split words ("coca cola" for "cocacola") match as phrases.
        builder.add_text_field(
            field, stored=True, tokenizer_name="whitespace", index_option="position"
        )
    builder.add_text_field(TITLE_KEY_FIELD, tokenizer_name="raw")
    # The words as written (not stemmed): the typo vocabulary is read back from here.
    builder.add_text_field("surface", tokenizer_name="whitespace", index_option="basic")
    builder.add_text_field("category_id", tokenizer_name="raw")
    builder.add_integer_field("price_cents", indexed=True, fast=True)
    builder.add_integer_field("stock", indexed=True, fast=True)
    builder.add_float_field(TIE_WEIGHT_FIELD, fast=True)
    builder.add_bytes_field("record", stored=True)
    return builder.build()


def key_of(kind: Kind, name: str) -> str:
    return f"{kind}:{name}"


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """What the index stores of a product: enough to re-index it when its stock or its
    category's name changes."""

    product: IndexedProduct
    stock_from_inventory: bool = False

    def with_stock(self, stock: int) -> ProductRecord:
        return ProductRecord(replace(self.product, stock=stock), stock_from_inventory=True)

    def to_bytes(self) -> bytes:
        # Not dataclasses.asdict: it deep-copies the document, which costs more than the rest.
        product = self.product
        fields = {name: getattr(product, name) for name in _PRODUCT_FIELDS}
        fields["stock_from_inventory"] = self.stock_from_inventory
        try:
            return orjson.dumps(fields)
        except orjson.JSONEncodeError as error:
            raise InvalidProduct(f"product {product.id}: document is not JSON: {error}") from error

    @classmethod
    def from_bytes(cls, stored: bytes) -> ProductRecord:
        fields: dict[str, Any] = orjson.loads(stored)
        from_inventory = bool(fields.pop("stock_from_inventory"))
        return cls(IndexedProduct(**fields), from_inventory)


def product_document(
    record: ProductRecord, category_name: str
) -> tuple[tantivy.Document, list[tuple[str, str]]]:
    """The product's document, and the (word, term) pairs it indexes."""
    product = record.product
    texts = {"title": product.title, "brand": product.brand, "category": category_name}
    texts["description"] = product.description
    words = {field: analysed_words(text) for field, text in texts.items()}
    fields: dict[str, Any] = {name: " ".join(t for _, t in w) for name, w in words.items()}
    fields[TITLE_KEY_FIELD] = fields["title"]
    fields["surface"] = " ".join(s for w in words.values() for s, _ in w)
    if product.category_id is not None:
        fields["category_id"] = product.category_id
    document = tantivy.Document(
        key=key_of(Kind.PRODUCT, product.id),
        kind=str(Kind.PRODUCT),
        price_cents=product.price_cents,
        stock=product.stock,
        tie_weight=tie_weight(product.stock > 0, created_seconds(product.created_at)),
        record=record.to_bytes(),
        **fields,
    )
    return document, [pair for pairs in words.values() for pair in pairs]


def tie_weight(in_stock: bool, created: float | None) -> float:
    """Orders equal scores: in stock first, then newer (an unknown age as the oldest)."""
    span = _RECENCY_TO - _RECENCY_FROM
    since = _RECENCY_FROM if created is None else created
    recency = min(max((since - _RECENCY_FROM) / span, 0.0), 0.999)
    bonus = (2 * in_stock + recency) / 3
    return float(2.0 ** (1.0 + _TIE_SPAN * bonus) - 2.0)


def record_document(kind: Kind, name: str, value: Any) -> tantivy.Document:
    """A meta pair, category name or pending stock: found by key, read back from `record`."""
    stored = orjson.dumps({"name": name, "value": value})
    return tantivy.Document(key=key_of(kind, name), kind=str(kind), record=stored)


def read_record(stored: bytes) -> tuple[str, Any]:
    fields: dict[str, Any] = orjson.loads(stored)
    return str(fields["name"]), fields["value"]
