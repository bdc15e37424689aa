"""products.sku (unique where set) and products.brand

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10

Both are nullable, so every product made before this revision simply has neither. The sku
index is unique: NULLs never collide on SQLite or PostgreSQL, so products without a sku
coexist. Brand has an index of its own for the `brand` filter, newest first as the list is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("products", sa.Column("sku", sa.String(64), nullable=True))
    op.add_column("products", sa.Column("brand", sa.String(100), nullable=True))
    op.create_index("ux_products_sku", "products", ["sku"], unique=True)
    op.create_index("ix_products_brand", "products", ["brand", "created_at", "id", "is_active"])


def downgrade() -> None:
    op.drop_index("ix_products_brand", table_name="products")
    op.drop_index("ux_products_sku", table_name="products")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("brand")
        batch.drop_column("sku")
