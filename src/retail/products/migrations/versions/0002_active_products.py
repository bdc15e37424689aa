"""products.is_active, and the list indexes carrying it

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

Every product made before this revision stays active (the server default). `is_active` is
added last to each list index: the order is still walked from the index, and the shoppers'
filter (`is_active`) and their counts are answered from the index without reading rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIST_INDEXES = {
    "ix_products_created": ["created_at", "id"],
    "ix_products_price": ["price_cents", "id"],
    "ix_products_title": ["title_key", "id"],
    "ix_products_category_created": ["category_id", "created_at", "id"],
    "ix_products_category_price": ["category_id", "price_cents", "id"],
    "ix_products_category_title": ["category_id", "title_key", "id"],
}


def upgrade() -> None:
    op.add_column(
        "products",
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    for name, columns in LIST_INDEXES.items():
        op.drop_index(name, table_name="products")
        op.create_index(name, "products", [*columns, "is_active"])


def downgrade() -> None:
    for name, columns in LIST_INDEXES.items():
        op.drop_index(name, table_name="products")
        op.create_index(name, "products", columns)
    with op.batch_alter_table("products") as batch:
        batch.drop_column("is_active")
