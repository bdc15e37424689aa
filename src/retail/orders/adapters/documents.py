"""How the orders service's domain objects map to their MongoDB documents: an order is one
document with its lines embedded; money in integer cents; dates as BSON dates, except the
recovery lease (see LEASE)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from retail.kernel.mongo import Document, as_utc
from retail.orders.domain import Order, OrderLine, SkippedItem

ORDER_NUMBER = "order_number"
# The recovery lease is compared in queries, so it is kept in epoch milliseconds, as the
# kernel's writer lease is: integers compare exactly on every server (nx-27017, CI's
# stand-in, compares dates as text and stores a date written by `$set` as a string).
LEASE = "recovery_lease_until_ms"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return _EPOCH + int(ms) * _MS


def order_document(order: Order) -> Document:
    return {
        "_id": order.id,
        ORDER_NUMBER: order.order_number,
        "user_id": order.user_id,
        "status": order.status,
        "lines": line_documents(order),
        "shipping_address": order.shipping_address,
        "skipped_items": skipped_documents(order),
        "reservation_id": order.reservation_id,
        "release_due": order.release_due,
        LEASE: to_ms(order.recovery_lease_until),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def line_documents(order: Order) -> list[Document]:
    return [
        {
            "product_id": line.product_id,
            "title": line.title,
            "unit_price_cents": line.unit_price_cents,
            "quantity": line.quantity,
            "tax_bp": line.tax_bp,
        }
        for line in order.lines
    ]


def skipped_documents(order: Order) -> list[Document]:
    return [
        {
            "product_id": s.product_id,
            "title": s.title,
            "quantity": s.quantity,
            "reason": s.reason,
            "available": s.available,
        }
        for s in order.skipped
    ]


def order_of(document: Document) -> Order:
    return Order(
        id=document["_id"],
        order_number=document[ORDER_NUMBER],
        user_id=document["user_id"],
        status=document["status"],
        lines=tuple(
            OrderLine(
                line["product_id"],
                line["title"],
                int(line["unit_price_cents"]),
                int(line["quantity"]),
                int(line["tax_bp"]),
            )
            for line in document["lines"]
        ),
        shipping_address=document["shipping_address"],
        created_at=as_utc(document["created_at"]),
        updated_at=as_utc(document["updated_at"]),
        reservation_id=document["reservation_id"],
        recovery_lease_until=from_ms(document[LEASE]),
        release_due=bool(document["release_due"]),
        skipped=tuple(
            SkippedItem(
                item["product_id"],
                item["title"],
                int(item["quantity"]),
                item["reason"],
                None if item["available"] is None else int(item["available"]),
            )
            for item in document["skipped_items"]
        ),
    )
