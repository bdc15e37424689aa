"""The stored form of an idempotency outcome: the order exactly as first answered (so that
a replay renders the same body even after the order moved on), or the refusal.

JSON with a `kind` tag; datetimes as ISO 8601 with their UTC offset, which round-trips to
the microsecond.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from retail.orders.domain import Failure, Order, OrderLine, Outcome, SkippedItem


def outcome_to_json(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Failure):
        return {
            "kind": "failure",
            "status_code": outcome.status_code,
            "error_code": outcome.error_code,
            "message": outcome.message,
            "details": outcome.details,
        }
    return {"kind": "order", "order": _order_to_json(outcome)}


def outcome_from_json(data: dict[str, Any]) -> Outcome:
    if data["kind"] == "failure":
        return Failure(data["status_code"], data["error_code"], data["message"], data["details"])
    return _order_from_json(data["order"])


def _order_to_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "order_number": order.order_number,
        "user_id": order.user_id,
        "status": order.status,
        "lines": [
            [line.product_id, line.title, line.unit_price_cents, line.quantity, line.tax_bp]
            for line in order.lines
        ],
        "shipping_address": order.shipping_address,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "reservation_id": order.reservation_id,
        "recovery_lease_until": order.recovery_lease_until.isoformat(),
        "release_due": order.release_due,
        "skipped": [
            [item.product_id, item.title, item.quantity, item.reason, item.available]
            for item in order.skipped
        ],
    }


def _order_from_json(data: dict[str, Any]) -> Order:
    return Order(
        id=data["id"],
        order_number=data["order_number"],
        user_id=data["user_id"],
        status=data["status"],
        lines=tuple(OrderLine(*line) for line in data["lines"]),
        shipping_address=data["shipping_address"],
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        reservation_id=data["reservation_id"],
        recovery_lease_until=datetime.fromisoformat(data["recovery_lease_until"]),
        release_due=data["release_due"],
        skipped=tuple(SkippedItem(*item) for item in data["skipped"]),
    )
