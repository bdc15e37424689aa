"""products, deleted categories, the outbox and feed cursors

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

SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    _create_products()
    op.create_table(
        "deleted_categories",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outbox_events",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feed_cursors",
        sa.Column("feed", sa.String(64), primary_key=True),
        sa.Column("seq", SEQ, nullable=False),
    )


def _create_products() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("title_key", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("price_cents", sa.BigInteger, nullable=False),
        sa.Column("tax_bp", sa.Integer, nullable=False),
        sa.Column("category_id", sa.String(64), nullable=True),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("add_ons", sa.JSON, nullable=False),
        sa.Column("combos", sa.JSON, nullable=False),
        sa.Column("image_url", sa.String(2048), nullable=True),
        sa.Column("image_key", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price_cents > 0", name="ck_products_price_positive"),
        sa.CheckConstraint("tax_bp >= 0 AND tax_bp <= 10000", name="ck_products_tax_range"),
        sa.CheckConstraint("stock >= 0", name="ck_products_stock_not_negative"),
    )
    op.create_index("ix_products_created", "products", ["created_at", "id"])
    op.create_index("ix_products_price", "products", ["price_cents", "id"])
    op.create_index("ix_products_title", "products", ["title_key", "id"])
    op.create_index("ix_products_category_created", "products", ["category_id", "created_at", "id"])
    op.create_index("ix_products_category_price", "products", ["category_id", "price_cents", "id"])
    op.create_index("ix_products_category_title", "products", ["category_id", "title_key", "id"])


def downgrade() -> None:
    op.drop_table("feed_cursors")
    op.drop_table("outbox_events")
    op.drop_table("deleted_categories")
    op.drop_table("products")
