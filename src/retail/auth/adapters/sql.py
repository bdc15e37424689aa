"""SQL adapter: the repositories (domain objects in and out) and the unit of work; the tables
are in `tables.py`."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement

from retail.auth.adapters.tables import cart_items, login_throttle, outbox, refresh_tokens, users
from retail.auth.domain import CartLine, Page, RefreshToken, ThrottlePolicy, User
from retail.auth.exceptions import EmailTaken
from retail.kernel.db import SqlSession, SqlUnitOfWork, is_unique_violation, rows_affected
from retail.kernel.events import SqlEventLog
from retail.kernel.security import Role


def _user(row: RowMapping) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        role=cast(Role, row["role"]),
        password_hash=row["password_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        is_active=bool(row["is_active"]),
        token_version=int(row["token_version"]),
    )


def _refresh_token(row: RowMapping) -> RefreshToken:
    return RefreshToken(**{column.name: row[column.name] for column in refresh_tokens.columns})


class SqlUserRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, user: User) -> None:
        values = {c.name: getattr(user, c.name) for c in users.columns}
        try:
            await self._session.execute(insert(users).values(values))
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise EmailTaken() from None
            raise

    async def get(self, user_id: str) -> User | None:
        return await self._one(users.c.id == user_id)

    async def lock(self, user_id: str) -> User | None:
        # FOR UPDATE renders on PostgreSQL only; on SQLite BEGIN IMMEDIATE already holds.
        statement = select(users).where(users.c.id == user_id).with_for_update()
        row = (await self._session.execute(statement)).mappings().first()
        return _user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        return await self._one(users.c.email == email)

    async def page(self, *, offset: int, limit: int) -> Page[User]:
        total = await self._session.scalar(select(func.count()).select_from(users))
        result = await self._session.execute(
            select(users)
            .order_by(users.c.created_at.desc(), users.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return Page([_user(row) for row in result.mappings()], int(total or 0))

    async def update_profile(
        self, user_id: str, now: datetime, *, name: str | None, password_hash: str | None
    ) -> bool:
        changes: dict[str, object] = {"updated_at": now}
        if name is not None:
            changes["name"] = name
        if password_hash is not None:
            changes["password_hash"] = password_hash
        result = await self._session.execute(
            update(users).where(users.c.id == user_id).values(changes)
        )
        return rows_affected(result) == 1

    async def set_access(
        self, user_id: str, now: datetime, *, role: Role, is_active: bool
    ) -> int | None:
        version: int | None = await self._session.scalar(
            update(users)
            .where(users.c.id == user_id)
            .values(
                role=role,
                is_active=is_active,
                token_version=users.c.token_version + 1,
                updated_at=now,
            )
            .returning(users.c.token_version)
        )
        return version

    async def lock_admin_ids(self) -> list[str]:
        # FOR UPDATE renders on PostgreSQL (in id order, so two lockers cannot deadlock);
        # on SQLite the BEGIN IMMEDIATE writer lock already holds.
        result = await self._session.execute(
            select(users.c.id)
            .where(users.c.role == "admin", users.c.is_active.is_(True))
            .order_by(users.c.id)
            .with_for_update()
        )
        return list(result.scalars())

    async def _one(self, condition: ColumnElement[bool]) -> User | None:
        row = (await self._session.execute(select(users).where(condition))).mappings().first()
        return _user(row) if row else None


class SqlRefreshTokenRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, token: RefreshToken) -> None:
        values = {c.name: getattr(token, c.name) for c in refresh_tokens.columns}
        await self._session.execute(insert(refresh_tokens).values(values))

    async def find(self, token_hash: str) -> RefreshToken | None:
        result = await self._session.execute(
            select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
        )
        row = result.mappings().first()
        return _refresh_token(row) if row else None

    async def use(self, token_id: str, now: datetime) -> bool:
        t = refresh_tokens
        result = await self._session.execute(
            update(t)
            .where(t.c.id == token_id, t.c.used_at.is_(None), t.c.revoked_at.is_(None))
            .values(used_at=now)
        )
        return rows_affected(result) == 1

    async def revoke_family(self, family_id: str, now: datetime) -> int:
        t = refresh_tokens
        return await self._revoke(t.c.family_id == family_id, now)

    async def revoke_user_families(
        self, user_id: str, now: datetime, *, keep_family: str | None
    ) -> list[str]:
        t = refresh_tokens
        condition: ColumnElement[bool] = t.c.user_id == user_id
        if keep_family is not None:
            condition = and_(condition, t.c.family_id != keep_family)
        result = await self._session.execute(
            update(t)
            .where(condition, t.c.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(t.c.family_id)
        )
        return sorted(set(result.scalars()))

    async def purge_expired_families(self, now: datetime) -> int:
        t = refresh_tokens
        dead = select(t.c.family_id).group_by(t.c.family_id).having(func.max(t.c.expires_at) < now)
        result = await self._session.execute(delete(t).where(t.c.family_id.in_(dead)))
        return rows_affected(result)

    async def _revoke(self, condition: ColumnElement[bool], now: datetime) -> int:
        t = refresh_tokens
        result = await self._session.execute(
            update(t).where(condition, t.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        return rows_affected(result)


class SqlLoginThrottle:
    """One row per key; every change is a single statement the database serialises."""

    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def admit(self, key: str, policy: ThrottlePolicy, now: datetime) -> datetime | None:
        t = login_throttle
        quiet_since = now - policy.window
        quiet = and_(
            t.c.last_failure_at < quiet_since,
            or_(t.c.locked_until.is_(None), t.c.locked_until < quiet_since),
        )
        # Insert the first failure, or count one more (from 1 again after a quiet window),
        # but only where no lock holds: a locked key gets no row back and nothing counted.
        statement = (
            self._insert()
            .values(key=key, failures=1, last_failure_at=now, locked_until=None)
            .on_conflict_do_update(
                index_elements=[t.c.key],
                set_={
                    "failures": case((quiet, 1), else_=t.c.failures + 1),
                    "last_failure_at": now,
                },
                where=or_(t.c.locked_until.is_(None), t.c.locked_until <= now),
            )
            .returning(t.c.failures)
        )
        failures = await self._session.scalar(statement)
        if failures is None:
            locked_until: datetime | None = await self._session.scalar(
                select(t.c.locked_until).where(t.c.key == key)
            )
            return locked_until
        lock = policy.lock_after(failures)
        if lock:  # the upsert holds the row (PostgreSQL) or the database (SQLite) till commit
            await self._session.execute(
                update(t).where(t.c.key == key).values(locked_until=now + lock)
            )
        return None

    async def forgive(self, key: str) -> None:
        t = login_throttle
        await self._session.execute(
            update(t).where(t.c.key == key, t.c.failures > 0).values(failures=t.c.failures - 1)
        )

    async def clear(self, key: str) -> None:
        await self._session.execute(delete(login_throttle).where(login_throttle.c.key == key))

    async def purge_quiet(self, before: datetime) -> int:
        t = login_throttle
        result = await self._session.execute(
            delete(t).where(
                t.c.last_failure_at < before,
                or_(t.c.locked_until.is_(None), t.c.locked_until < before),
            )
        )
        return rows_affected(result)

    def _insert(self) -> postgresql.Insert | sqlite.Insert:
        return _upsert(self._session, login_throttle)


def _upsert(session: SqlSession, table: Table) -> postgresql.Insert | sqlite.Insert:
    # ON CONFLICT ... DO UPDATE ... WHERE: the same on both, but each dialect has its own.
    if session.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _cart_line(row: RowMapping) -> CartLine:
    return CartLine(row["user_id"], row["product_id"], row["quantity"], row["added_at"])


class SqlCartRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def lines(self, user_id: str) -> list[CartLine]:
        c = cart_items.c
        result = await self._session.execute(
            select(cart_items).where(c.user_id == user_id).order_by(c.added_at, c.product_id)
        )
        return [_cart_line(row) for row in result.mappings()]

    async def get(self, user_id: str, product_id: str) -> CartLine | None:
        result = await self._session.execute(
            select(cart_items).where(self._line(user_id, product_id))
        )
        row = result.mappings().first()
        return _cart_line(row) if row else None

    async def count(self, user_id: str) -> int:
        statement = select(func.count()).where(cart_items.c.user_id == user_id)
        return int(await self._session.scalar(statement) or 0)

    async def add(self, line: CartLine, *, limit: int) -> int | None:
        if line.quantity > limit:  # a new line would pass it too
            return None
        c = cart_items.c
        # One statement: insert the line, or add to it where the sum stays within the limit.
        # A refused sum gets no row back and changes nothing.
        statement = (
            _upsert(self._session, cart_items)
            .values(
                user_id=line.user_id,
                product_id=line.product_id,
                quantity=line.quantity,
                added_at=line.added_at,
            )
            .on_conflict_do_update(
                index_elements=[c.user_id, c.product_id],
                set_={"quantity": c.quantity + line.quantity},
                where=c.quantity + line.quantity <= limit,
            )
            .returning(c.quantity)
        )
        quantity: int | None = await self._session.scalar(statement)
        return quantity

    async def set_quantity(self, user_id: str, product_id: str, quantity: int) -> bool:
        result = await self._session.execute(
            update(cart_items).where(self._line(user_id, product_id)).values(quantity=quantity)
        )
        return rows_affected(result) == 1

    async def remove(self, user_id: str, product_id: str) -> bool:
        result = await self._session.execute(
            delete(cart_items).where(self._line(user_id, product_id))
        )
        return rows_affected(result) == 1

    async def clear(self, user_id: str) -> int:
        result = await self._session.execute(
            delete(cart_items).where(cart_items.c.user_id == user_id)
        )
        return rows_affected(result)

    @staticmethod
    def _line(user_id: str, product_id: str) -> ColumnElement[bool]:
        return and_(cart_items.c.user_id == user_id, cart_items.c.product_id == product_id)


class SqlAuthEventLog(SqlEventLog):
    def __init__(self, session: SqlSession) -> None:
        super().__init__(session, outbox)
        self._own_session = session

    async def purge_before(self, before: datetime) -> int:
        # The newest row stays: SQLite hands out max(seq) + 1 next, and an emptied table
        # would start again below the followers' cursors.
        newest = select(func.max(outbox.c.seq)).scalar_subquery()
        result = await self._own_session.execute(
            delete(outbox).where(outbox.c.occurred_at < before, outbox.c.seq < newest)
        )
        return rows_affected(result)


class AuthUnitOfWork(SqlUnitOfWork):
    users: SqlUserRepository
    refresh_tokens: SqlRefreshTokenRepository
    throttle: SqlLoginThrottle
    cart: SqlCartRepository
    events: SqlAuthEventLog

    def _bind(self, session: SqlSession) -> None:
        self.users = SqlUserRepository(session)
        self.refresh_tokens = SqlRefreshTokenRepository(session)
        self.throttle = SqlLoginThrottle(session)
        self.cart = SqlCartRepository(session)
        self.events = SqlAuthEventLog(session)
