"""orders, their lines, idempotency keys

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "('pending', 'confirmed', 'processing', 'shipped', 'delivered', 'cancelled', 'failed')"


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("order_number", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("shipping_address", sa.JSON, nullable=False),
        sa.Column("skipped_items", sa.JSON, nullable=False),
        sa.Column("reservation_id", sa.String(64), nullable=False),
        sa.Column("release_due", sa.Boolean, nullable=False),
        sa.Column("recovery_lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN {STATUSES}", name="ck_orders_status"),
    )
    op.create_index("uq_orders_order_number", "orders", ["order_number"], unique=True)
    op.create_index("ix_orders_user_created", "orders", ["user_id", "created_at"])
    op.create_index("ix_orders_created", "orders", ["created_at"])
    op.create_index("ix_orders_status_lease", "orders", ["status", "recovery_lease_until"])
    op.create_index("ix_orders_release_due", "orders", ["release_due", "recovery_lease_until"])
    op.create_table(
        "order_lines",
        sa.Column(
            "order_id",
            sa.String(36),
            sa.ForeignKey("orders.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("tax_bp", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "position", name="pk_order_lines"),
        sa.CheckConstraint("quantity > 0", name="ck_order_lines_quantity_positive"),
        sa.CheckConstraint("unit_price_cents >= 0", name="ck_order_lines_price_not_negative"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("outcome", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_order_id", "idempotency_keys", ["order_id"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("order_lines")
    op.drop_table("orders")
