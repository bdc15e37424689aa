"""The orders service's tables, and how its domain objects map to their rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import RowMapping

from retail.kernel.db import UtcDateTime
from retail.orders.domain import Order, OrderLine, SkippedItem

metadata = MetaData()

STATUSES = ("pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "failed")

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_number", String(16), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("skipped_items", JSON, nullable=False),
    Column("reservation_id", String(64), nullable=False),
    Column("release_due", Boolean, nullable=False),
    Column("recovery_lease_until", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    CheckConstraint(f"status IN {STATUSES!r}", name="ck_orders_status"),
    Index("uq_orders_order_number", "order_number", unique=True),
    # The customer's page: walked newest first without a sort (its total: order_counts).
    Index("ix_orders_user_created", "user_id", "created_at", "id", "status"),
    Index("ix_orders_created", "created_at"),
    Index("ix_orders_status_lease", "status", "recovery_lease_until"),
    Index("ix_orders_release_due", "release_due", "recovery_lease_until"),
)
order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(36), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("title", Text, nullable=False),
    # Products allows prices up to 99,999,999.99: more cents than a 32-bit integer holds.
    Column("unit_price_cents", BigInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("tax_bp", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "position", name="pk_order_lines"),
    CheckConstraint("quantity > 0", name="ck_order_lines_quantity_positive"),
    CheckConstraint("unit_price_cents >= 0", name="ck_order_lines_price_not_negative"),
)
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("order_id", String(36), nullable=False),
    # SQL NULL while the first request is in flight (not JSON null: `IS NULL` must match).
    Column("outcome", JSON(none_as_null=True), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
    Index("ix_idempotency_keys_order_id", "order_id"),
    Index("ix_idempotency_keys_created_at", "created_at"),
)


# How many orders each customer has in each status, for the exact total of the customer's page
# without counting the orders. Written only by the database: triggers on `orders` (migration
# 0003) keep it in step with every insert, status change and delete, in the same transaction.
# A batch migration that recreates `orders` on SQLite drops those triggers: recreate them.
order_counts = Table(
    "order_counts",
    metadata,
    Column("user_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("n", Integer, nullable=False),
    PrimaryKeyConstraint("user_id", "status", name="pk_order_counts"),
)


def line_rows(order: Order) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order.id,
            "position": position,
            "product_id": line.product_id,
            "title": line.title,
            "unit_price_cents": line.unit_price_cents,
            "quantity": line.quantity,
            "tax_bp": line.tax_bp,
        }
        for position, line in enumerate(order.lines)
    ]


def skipped_rows(order: Order) -> list[dict[str, Any]]:
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


def order_of(row: RowMapping, lines: Sequence[RowMapping]) -> Order:
    return Order(
        id=row["id"],
        order_number=row["order_number"],
        user_id=row["user_id"],
        status=row["status"],
        lines=tuple(
            OrderLine(
                line["product_id"],
                line["title"],
                line["unit_price_cents"],
                line["quantity"],
                line["tax_bp"],
            )
            for line in lines
        ),
        shipping_address=row["shipping_address"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        reservation_id=row["reservation_id"],
        recovery_lease_until=row["recovery_lease_until"],
        release_due=bool(row["release_due"]),
        skipped=tuple(SkippedItem(**item) for item in row["skipped_items"]),
    )
