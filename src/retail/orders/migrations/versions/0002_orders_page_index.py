"""The customer's orders page answered from one index

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

`ix_orders_user_created` becomes (user_id, created_at, id, status): the page's order (newest
first, ties by id) is walked from the index without a sort, and its count (every order but
the failed ones) is answered from the index alone, without reading a row.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_orders_user_created", table_name="orders")
    op.create_index("ix_orders_user_created", "orders", ["user_id", "created_at", "id", "status"])


def downgrade() -> None:
    op.drop_index("ix_orders_user_created", table_name="orders")
    op.create_index("ix_orders_user_created", "orders", ["user_id", "created_at"])
