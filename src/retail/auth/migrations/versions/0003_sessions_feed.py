"""account standing and token versions, auth's feed, emails in their NFKC case-folded form

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10
"""

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")
logger = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(
            sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        users.add_column(sa.Column("token_version", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "outbox_events",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    _normalise_emails()


def _fold(email: str) -> str:
    # As retail.auth.domain.normalize_email (a migration does not import the app's code).
    folded = unicodedata.normalize("NFKC", email.strip()).casefold()
    return unicodedata.normalize("NFKC", folded)


def _normalise_emails() -> None:
    """Rows stored under the older spelling (NFC, lowercased) take the new one, oldest
    first. A row whose new spelling another row already has is left as it was (and
    logged): two accounts are never merged, and neither is lost."""
    connection = op.get_bind()
    users = sa.table("users", sa.column("id"), sa.column("email"), sa.column("created_at"))
    rows = connection.execute(
        sa.select(users.c.id, users.c.email).order_by(users.c.created_at, users.c.id)
    ).all()
    taken = {email for _, email in rows}
    for user_id, email in rows:
        folded = _fold(email)
        if folded == email:
            continue
        if folded in taken:
            logger.warning("user %s keeps email spelling %r: %r is taken", user_id, email, folded)
            continue
        connection.execute(sa.update(users).where(users.c.id == user_id).values(email=folded))
        taken.discard(email)
        taken.add(folded)


def downgrade() -> None:
    op.drop_table("outbox_events")
    with op.batch_alter_table("users") as users:
        users.drop_column("token_version")
        users.drop_column("is_active")
