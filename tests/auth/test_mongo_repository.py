"""What only the MongoDB adapter has: the documents as stored, and the indexes. Everything the
back ends share is in test_repository_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from retail.auth.adapters.mongo import INDEXES, AuthMongoUnitOfWork
from retail.auth.config import AuthSettings
from retail.auth.dependencies import Units
from retail.auth.domain import CartLine, RefreshToken, ThrottlePolicy, User
from retail.kernel.mongo import Database, MongoStore
from tests.support import make_settings, mongodb_requested, nx_defect

pytestmark = pytest.mark.skipif(not mongodb_requested(), reason="set TEST_MONGODB_URI")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ADA = "11111111-1111-4111-8111-111111111111"
POLICY = ThrottlePolicy(1, timedelta(minutes=15), timedelta(minutes=15))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MongoStore]:
    settings = make_settings(AuthSettings, tmp_path, backend="mongodb")
    store = await MongoStore.open(settings, INDEXES)
    yield store
    await store.close()


@pytest.fixture
async def shop(store: MongoStore) -> Database:
    """Ada with a used refresh token, two failed sign-ins (locked), a cart line."""
    units: Units = partial(AuthMongoUnitOfWork, store)
    async with units() as uow:
        await uow.users.add(User(ADA, "ada@shop.test", "Ada", "customer", "h", NOW, NOW))
        await uow.users.update_profile(ADA, NOW, name="Ada L.", password_hash=None)
        expires = NOW + timedelta(days=7)
        await uow.refresh_tokens.add(RefreshToken("t1", "f1", ADA, "hash-1", NOW, expires))
        await uow.refresh_tokens.use("t1", NOW)
        for _ in range(2):
            await uow.throttle.admit("account:a", POLICY, NOW)
        await uow.cart.add(CartLine(ADA, "lamp", 2, NOW), limit=10)
        await uow.commit()
    return store.database


async def test_documents_leave_out_what_is_unset(shop: Database) -> None:
    token = await shop.refresh_tokens.find_one({"_id": "t1"})
    assert token is not None
    assert "revoked_at" not in token  # absent, not null: `{revoked_at: null}` finds it anywhere
    assert set(token) == {
        "_id",
        "family_id",
        "user_id",
        "token_hash",
        "issued_at",
        "expires_at",
        "used_at",
    }


async def test_the_throttle_keeps_integer_milliseconds(shop: Database) -> None:
    key = await shop.login_throttle.find_one({"_id": "account:a"})
    now_ms = int(NOW.timestamp() * 1000)
    assert key == {
        "_id": "account:a",
        "failures": 2,
        "last_failure_ms": now_ms,
        "locked_until_ms": now_ms + 2000,  # 1 free failure: the 2nd locks for 2 s
    }


async def test_a_cart_line_is_one_document_named_by_user_and_product(shop: Database) -> None:
    line = await shop.cart_items.find_one({"_id": f"{ADA}:lamp"})
    assert line is not None
    assert {k: v for k, v in line.items() if k != "added_at"} == {
        "_id": f"{ADA}:lamp",
        "user_id": ADA,
        "product_id": "lamp",
        "quantity": 2,
    }
    assert type(line["quantity"]) is int


async def test_inserted_timestamps_are_dates(shop: Database) -> None:
    user = await shop.users.find_one({"_id": ADA})
    line = await shop.cart_items.find_one({"_id": f"{ADA}:lamp"})
    assert user is not None
    assert line is not None
    for stored in (user["created_at"], line["added_at"]):
        assert isinstance(stored, datetime)
        assert stored == NOW


@nx_defect("a datetime written by $set is stored as a naive ISO string")
async def test_updated_timestamps_are_dates(shop: Database) -> None:
    user = await shop.users.find_one({"_id": ADA})
    token = await shop.refresh_tokens.find_one({"_id": "t1"})
    assert user is not None
    assert token is not None
    for stored in (user["updated_at"], token["used_at"]):
        assert isinstance(stored, datetime)
        assert stored == NOW


async def test_the_indexes_are_created(store: MongoStore) -> None:
    async def keys(collection: str) -> dict[tuple[tuple[str, Any], ...], bool]:
        found = await store.database[collection].list_indexes()
        return {tuple(i["key"].items()): bool(i.get("unique")) async for i in found}

    users = await keys("users")
    assert users[(("email", 1),)] is True
    assert users[(("created_at", 1),)] is False
    tokens = await keys("refresh_tokens")
    assert tokens[(("token_hash", 1),)] is True
    assert tokens[(("family_id", 1),)] is False
    assert (await keys("login_throttle"))[(("last_failure_ms", 1),)] is False
    assert (await keys("cart_items"))[(("user_id", 1), ("added_at", 1))] is False


async def test_the_unique_email_index_is_the_servers_own(shop: Database) -> None:
    with pytest.raises(DuplicateKeyError):
        await shop.users.insert_one({"_id": "other", "email": "ada@shop.test"})
