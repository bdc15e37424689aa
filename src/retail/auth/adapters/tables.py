"""The auth service's tables (the migrations create the same; a test compares them)."""

from __future__ import annotations

from sqlalchemy import (
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
    true,
)

from retail.kernel.db import UtcDateTime
from retail.kernel.events import outbox_table

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    # Stored normalised (trimmed, NFKC, case-folded), so the unique index is case-insensitive.
    Column("email", String(320), nullable=False),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(128), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # Rows from before migration 0003 are active at version 0.
    Column("is_active", Boolean(), nullable=False, server_default=true()),
    Column("token_version", Integer, nullable=False, server_default="0"),
    CheckConstraint("role IN ('customer', 'admin')", name="ck_users_role"),
    Index("uq_users_email", "email", unique=True),
    Index("ix_users_created_at", "created_at", "id"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("family_id", String(36), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Index("uq_refresh_tokens_token_hash", "token_hash", unique=True),
    Index("ix_refresh_tokens_family_id", "family_id"),
    Index("ix_refresh_tokens_user_id", "user_id"),
)

login_throttle = Table(
    "login_throttle",
    metadata,
    # "account:<sha256>" or "address:<sha256>"
    Column("key", String(80), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", UtcDateTime(), nullable=False),
    Column("locked_until", UtcDateTime(), nullable=True),
    Index("ix_login_throttle_last_failure_at", "last_failure_at"),
)

cart_items = Table(
    "cart_items",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # Any id a client sends is bounded like products' own ids; it is checked there.
    Column("product_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("added_at", UtcDateTime(), nullable=False),
    # The primary key is what the add's ON CONFLICT meets; its user_id prefix lists a cart.
    PrimaryKeyConstraint("user_id", "product_id", name="pk_cart_items"),
    CheckConstraint("quantity >= 1", name="ck_cart_items_quantity"),
)

# Auth's feed: `session.revoked` and `user.changed`, followed by every service
# (kernel/sessions.py). Events older than an access token's lifetime are purged.
outbox = outbox_table(metadata)
