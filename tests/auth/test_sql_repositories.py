"""The SQL adapter against a real database (an SQLite file, or PostgreSQL when the suite runs
there), with races run through two separately created engines, as two processes would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from retail.auth import service
from retail.auth.adapters.sql import AuthUnitOfWork, login_throttle, metadata
from retail.auth.config import AuthSettings
from retail.auth.domain import RefreshToken, Session, ThrottlePolicy, User
from retail.auth.exceptions import EmailTaken, InvalidRefreshToken
from retail.auth.main import MIGRATIONS
from retail.kernel.db import engine_for, migrate, session_factory
from retail.kernel.security import Role
from tests.auth.fakes import make_context
from tests.support import make_settings

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = ThrottlePolicy(2, timedelta(minutes=15), timedelta(minutes=15))


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    settings = make_settings(AuthSettings, tmp_path)
    first, second = engine_for(settings), engine_for(settings)
    await migrate(first, MIGRATIONS)
    await migrate(second, MIGRATIONS)
    yield first, second
    await first.dispose()
    await second.dispose()


@pytest.fixture
def one(engines: tuple[AsyncEngine, AsyncEngine]) -> Sessions:
    return session_factory(engines[0])


@pytest.fixture
def two(engines: tuple[AsyncEngine, AsyncEngine]) -> Sessions:
    return session_factory(engines[1])


def user(email: str = "ada@shop.test", *, at: datetime = NOW, role: Role = "customer") -> User:
    return User(str(uuid.uuid4()), email, "Ada", role, "$2b$04$hash", at, at)


def token(owner: User, family: str = "f1", *, expires: datetime | None = None) -> RefreshToken:
    return RefreshToken(
        str(uuid.uuid4()),
        family,
        owner.id,
        uuid.uuid4().hex * 2,
        NOW,
        expires or NOW + timedelta(days=7),
    )


async def add_user(sessions: Sessions, new: User) -> User:
    async with AuthUnitOfWork(sessions) as uow:
        await uow.users.add(new)
        await uow.commit()
    return new


async def add_token(sessions: Sessions, new: RefreshToken) -> RefreshToken:
    async with AuthUnitOfWork(sessions) as uow:
        await uow.refresh_tokens.add(new)
        await uow.commit()
    return new


async def test_the_migration_matches_the_tables(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engines[0].connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_users_round_trip_as_domain_objects(one: Sessions) -> None:
    made = await add_user(one, user())
    async with AuthUnitOfWork(one, readonly=True) as uow:
        by_id = await uow.users.get(made.id)
        by_email = await uow.users.get_by_email("ada@shop.test")
        assert await uow.users.get("nope") is None
    assert by_id == by_email == made
    assert by_id is not None
    assert by_id.created_at.tzinfo is not None


async def test_a_taken_email_is_a_kernel_conflict(one: Sessions) -> None:
    await add_user(one, user())
    with pytest.raises(EmailTaken):
        await add_user(one, user())


async def test_two_processes_registering_one_email_make_one_user(
    one: Sessions, two: Sessions
) -> None:
    ctx = make_context()
    results = await asyncio.gather(
        *(
            service.register(AuthUnitOfWork(s), ctx, email="ada@shop.test", name="A", password="p")
            for s in (one, two, one, two)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, User) for r in results) == 1
    assert sum(isinstance(r, EmailTaken) for r in results) == 3
    async with AuthUnitOfWork(one, readonly=True) as uow:
        assert (await uow.users.page(offset=0, limit=10)).total == 1


async def test_users_page_newest_first(one: Sessions) -> None:
    for n in range(5):
        await add_user(one, user(f"u{n}@shop.test", at=NOW + timedelta(seconds=n)))
    async with AuthUnitOfWork(one, readonly=True) as uow:
        page = await uow.users.page(offset=2, limit=2)
    assert [u.email for u in page.items] == ["u2@shop.test", "u1@shop.test"]
    assert page.total == 5


async def test_update_and_admin_ids(one: Sessions) -> None:
    ada = await add_user(one, user())
    boss = await add_user(one, user("boss@shop.test", role="admin"))
    later = NOW + timedelta(hours=1)
    async with AuthUnitOfWork(one) as uow:
        assert await uow.users.update_profile(ada.id, NOW, name="Ada L.", password_hash=None)
        assert await uow.users.update_profile(ada.id, later, name=None, password_hash="$2b$x")
        assert await uow.users.set_role(ada.id, "admin", later)
        assert not await uow.users.set_role("nope", "admin", later)
        assert not await uow.users.update_profile("nope", later, name="x", password_hash=None)
        await uow.commit()
    async with AuthUnitOfWork(one) as uow:
        expected = replace(ada, name="Ada L.", password_hash="$2b$x", role="admin")
        assert await uow.users.get(ada.id) == replace(expected, updated_at=later)
        assert sorted(await uow.users.lock_admin_ids()) == sorted([ada.id, boss.id])


async def test_only_one_of_two_rotations_wins(one: Sessions, two: Sessions) -> None:
    owner = await add_user(one, user())
    link = await add_token(one, token(owner))

    async def rotate(sessions: Sessions) -> bool:
        async with AuthUnitOfWork(sessions) as uow:
            won = await uow.refresh_tokens.use(link.id, NOW)
            await asyncio.sleep(0.01)  # hold the transaction while the other one tries
            await uow.commit()
        return won

    assert sorted(await asyncio.gather(rotate(one), rotate(two))) == [False, True]


async def test_two_processes_refreshing_one_token_give_one_session(
    one: Sessions, two: Sessions
) -> None:
    ctx = make_context()
    await service.register(AuthUnitOfWork(one), ctx, email="a@shop.test", name="A", password="p")
    session = await service.login(
        AuthUnitOfWork(one), ctx, email="a@shop.test", password="p", address="a"
    )
    results = await asyncio.gather(
        service.refresh(AuthUnitOfWork(one), ctx, session.refresh_token),
        service.refresh(AuthUnitOfWork(two), ctx, session.refresh_token),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Session", "TokenReused"]
    winner = next(r for r in results if isinstance(r, Session))
    with pytest.raises(InvalidRefreshToken):  # the loser revoked the family, winner's too
        await service.refresh(AuthUnitOfWork(one), ctx, winner.refresh_token)


async def test_revocation_and_purge(one: Sessions) -> None:
    owner = await add_user(one, user())
    keep, drop = await add_token(one, token(owner, "keep")), await add_token(one, token(owner))
    dead = await add_token(one, token(owner, "dead", expires=NOW - timedelta(days=1)))
    async with AuthUnitOfWork(one) as uow:
        assert await uow.refresh_tokens.revoke_user_families(owner.id, NOW, keep_family="keep")
        assert await uow.refresh_tokens.purge_expired_families(NOW) == 1
        await uow.commit()
    async with AuthUnitOfWork(one, readonly=True) as uow:
        kept = await uow.refresh_tokens.find(keep.token_hash)
        dropped = await uow.refresh_tokens.find(drop.token_hash)
        assert await uow.refresh_tokens.find(dead.token_hash) is None
    assert kept is not None
    assert kept.revoked_at is None
    assert dropped is not None
    assert dropped.revoked_at == NOW
    async with AuthUnitOfWork(one) as uow:  # a revoked token cannot be used
        assert not await uow.refresh_tokens.use(drop.id, NOW)


async def admit(sessions: Sessions, at: datetime, key: str = "account:a") -> datetime | None:
    async with AuthUnitOfWork(sessions) as uow:
        locked = await uow.throttle.admit(key, POLICY, at)
        await uow.commit()
    return locked


async def failures(sessions: Sessions, key: str = "account:a") -> int:
    async with AuthUnitOfWork(sessions, readonly=True) as uow:
        count = await uow.session.scalar(
            select(login_throttle.c.failures).where(login_throttle.c.key == key)
        )
    return int(count or 0)


async def test_the_throttle_upsert_counts_locks_and_refuses(one: Sessions) -> None:
    assert [await admit(one, NOW) for _ in range(3)] == [None, None, None]  # 3rd: lock 2 s
    assert await admit(one, NOW + timedelta(seconds=1)) == NOW + timedelta(seconds=2)
    assert await failures(one) == 3  # a refused attempt counts nothing
    assert await admit(one, NOW + timedelta(seconds=2)) is None
    assert await failures(one) == 4
    async with AuthUnitOfWork(one) as uow:
        await uow.throttle.forgive("account:a")
        await uow.commit()
    assert await failures(one) == 3
    async with AuthUnitOfWork(one) as uow:
        await uow.throttle.clear("account:a")
        await uow.commit()
    assert await failures(one) == 0
    assert await admit(one, NOW + timedelta(seconds=3)) is None


async def test_the_throttle_restarts_after_a_quiet_window_and_purges(one: Sessions) -> None:
    for _ in range(3):
        await admit(one, NOW)
    later = NOW + timedelta(minutes=15, seconds=3)
    assert await admit(one, later) is None
    assert await failures(one) == 1
    await admit(one, NOW, key="address:b")
    async with AuthUnitOfWork(one) as uow:
        assert await uow.throttle.purge_quiet(NOW + timedelta(seconds=1)) == 1
        await uow.commit()
    assert await failures(one, "address:b") == 0
    assert await failures(one) == 1


async def test_concurrent_admits_from_two_processes_lose_no_count(
    one: Sessions, two: Sessions
) -> None:
    wide = ThrottlePolicy(100, timedelta(minutes=15), timedelta(minutes=15))

    async def admit_wide(sessions: Sessions) -> None:
        async with AuthUnitOfWork(sessions) as uow:
            await uow.throttle.admit("account:a", wide, NOW)
            await uow.commit()

    await asyncio.gather(*(admit_wide(s) for _ in range(10) for s in (one, two)))
    assert await failures(one) == 20
