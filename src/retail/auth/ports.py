"""The repositories, unit of work, password hasher and product catalogue that the use cases
need (adapters implement them), and `AuthDeps`, the bundle every use case takes first.

Whatever several processes may race on (a new email, a token's rotation, a failure count)
is decided by the database in one conditional write, never by a value read earlier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from retail.auth.domain import (
    AuthPolicy,
    CartLine,
    CatalogProduct,
    Page,
    RefreshToken,
    ThrottlePolicy,
    User,
)
from retail.kernel.clock import utc_now
from retail.kernel.events import EventLog
from retail.kernel.security import Role
from retail.kernel.storage import Transaction, UnitOfWorkFactory


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Store a new user; raises `EmailTaken` if the email is used (unique index)."""

    async def get(self, user_id: str) -> User | None: ...

    async def lock(self, user_id: str) -> User | None:
        """The user, locked until the transaction ends (SELECT ... FOR UPDATE on PostgreSQL;
        SQLite's and MongoDB's writers already take turns), so that the changes of one
        user's cart queue and a limit counted over its lines holds."""

    async def get_by_email(self, email: str) -> User | None:
        """`email` is already normalised."""

    async def page(self, *, offset: int, limit: int) -> Page[User]:
        """Users, newest first."""

    async def update_profile(
        self, user_id: str, now: datetime, *, name: str | None, password_hash: str | None
    ) -> bool:
        """Write only the fields given (and updated_at), so a concurrent change of the
        others is never overwritten with a stale copy; False if there is no such user."""

    async def set_access(
        self, user_id: str, now: datetime, *, role: Role, is_active: bool
    ) -> int | None:
        """Set the role and standing and raise the token version by one, in one write; the
        new version, or None if there is no such user."""

    async def lock_admin_ids(self) -> list[str]:
        """The active admins' ids, locked until the transaction ends (SELECT ... FOR UPDATE
        on PostgreSQL; SQLite's writer lock already holds), so two demotions or
        deactivations cannot each see the other's admin and leave none."""


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def find(self, token_hash: str) -> RefreshToken | None: ...

    async def use(self, token_id: str, now: datetime) -> bool:
        """Mark it used if it is neither used nor revoked; False if another request got
        there first. This conditional write is what lets only one of two refreshes win."""

    async def revoke_family(self, family_id: str, now: datetime) -> int: ...

    async def revoke_user_families(
        self, user_id: str, now: datetime, *, keep_family: str | None
    ) -> list[str]:
        """Revoke every live token of the user except those of `keep_family`; the ids of
        the families that had one."""

    async def purge_expired_families(self, now: datetime) -> int:
        """Delete families whose every token has expired; live families keep their used
        tokens, so reuse of any of them is still detected."""


class LoginThrottle(Protocol):
    async def admit(self, key: str, policy: ThrottlePolicy, now: datetime) -> datetime | None:
        """Count one attempt against `key`, atomically, unless the key is locked.

        None when admitted (the attempt is counted as a failure until `forgive` or `clear`;
        crossing the policy's free failures sets the lock). When locked: nothing is counted
        and the answer is when the lock ends."""

    async def forgive(self, key: str) -> None:
        """Take back one admitted attempt (it succeeded)."""

    async def clear(self, key: str) -> None: ...

    async def purge_quiet(self, before: datetime) -> int:
        """Forget keys with no failure and no lock since `before`."""


class CartRepository(Protocol):
    async def lines(self, user_id: str) -> list[CartLine]:
        """The user's lines, oldest first (ties by product id)."""

    async def get(self, user_id: str, product_id: str) -> CartLine | None: ...

    async def count(self, user_id: str) -> int: ...

    async def add(self, line: CartLine, *, limit: int) -> int | None:
        """Add `line.quantity` to the user's line for the product, creating it (with
        `line.added_at`) if there is none, in one conditional write: the line's new quantity,
        or None, with nothing changed, if that would pass `limit`. Two adds at once both
        count: nothing reads a quantity and writes it back."""

    async def set_quantity(self, user_id: str, product_id: str, quantity: int) -> bool:
        """False if the user has no line for the product."""

    async def remove(self, user_id: str, product_id: str) -> bool: ...

    async def clear(self, user_id: str) -> int: ...


class AuthEventLog(EventLog, Protocol):
    async def purge_before(self, before: datetime) -> int:
        """Drop events that occurred before `before`, always keeping the newest (its seq
        is where the next one continues from). Every service's revocation set needs only
        the events of one access-token lifetime."""


class UnitOfWork(Transaction, Protocol):
    # Read-only properties, so an adapter may narrow them to its own repository types.
    @property
    def users(self) -> UserRepository: ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    @property
    def throttle(self) -> LoginThrottle: ...

    @property
    def cart(self) -> CartRepository: ...

    @property
    def events(self) -> AuthEventLog:
        """Auth's feed: `session.revoked` and `user.changed` (kernel/sessions.py)."""


class ProductCatalog(Protocol):
    async def lookup(self, product_ids: Sequence[str]) -> dict[str, CatalogProduct]:
        """The products that exist now, by id (at most 100 ids); missing ones are absent.
        Raises `ServiceUnavailable` if the catalogue cannot answer."""


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """With no hash (unknown user), spend the same time on a dummy one and say False."""

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made at another cost than the configured one."""


class AccessTokens(Protocol):
    """What the use cases need of the kernel's `TokenCodec`."""

    access_ttl_seconds: int

    def issue_access(
        self, user_id: str, role: Role, session_id: str | None = None, version: int = 0
    ) -> str: ...


Units = UnitOfWorkFactory[UnitOfWork]


@dataclass(frozen=True, slots=True)
class AuthDeps:
    """What auth's use cases (accounts, sessions and the cart) work with: the first argument
    of every one of them. Built once, in the lifespan.

    A use case opens a unit of work per transaction from `units`; reads outside a write take
    `units(readonly=True)`, which never takes SQLite's writer lock."""

    units: Units
    hasher: PasswordHasher
    tokens: AccessTokens
    policy: AuthPolicy
    catalog: ProductCatalog
    clock: Callable[[], datetime] = utc_now
