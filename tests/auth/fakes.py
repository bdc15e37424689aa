"""In-memory fakes behind auth's ports, with the same rules as the SQL adapter: the unique
email, the conditional rotation, the throttle's conditional upsert, the cart's conditional
add, and a rollback unless the use case commits; and a product catalogue that can be down."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from retail.auth.dependencies import Units
from retail.auth.domain import (
    AuthPolicy,
    CartLine,
    CatalogProduct,
    Page,
    RefreshToken,
    ThrottlePolicy,
    User,
)
from retail.auth.exceptions import EmailTaken
from retail.auth.ports import AuthDeps
from retail.kernel.errors import ServiceUnavailable
from retail.kernel.events import Event
from retail.kernel.security import Role, TokenCodec
from tests.support import SECRET, RollbackUnitOfWork


@dataclass
class Throttled:
    failures: int
    last_failure_at: datetime
    locked_until: datetime | None = None


@dataclass
class State:
    """What the fake database holds; shared by every unit of work over it."""

    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, RefreshToken] = field(default_factory=dict)
    throttle: dict[str, Throttled] = field(default_factory=dict)
    cart: dict[tuple[str, str], CartLine] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    # Race scripting: another process rotates this token id just before our `use`...
    rotated_elsewhere: set[str] = field(default_factory=set)
    # ... or registers this user (and commits) just before our `add`.
    registered_elsewhere: User | None = None
    # Writes of that other process, which survive our rollback.
    committed_elsewhere: list[Callable[[State], None]] = field(default_factory=list)

    def commit_elsewhere(self, write: Callable[[State], None]) -> None:
        write(self)
        self.committed_elsewhere.append(write)


DATA = ("users", "tokens", "throttle", "cart", "events")


class FakeEvents:
    """Auth's outbox: appended in the unit of work, rolled back with it."""

    def __init__(self, state: State) -> None:
        self._state = state

    async def append(self, event_type: str, key: str, data: dict[str, Any]) -> None:
        seq = self._state.events[-1].seq + 1 if self._state.events else 1
        event = Event(seq=seq, type=event_type, key=key, data=data, occurred_at=datetime.now(UTC))
        self._state.events.append(event)

    async def read_after(self, after: int, limit: int) -> list[Event]:
        return [e for e in self._state.events if e.seq > after][:limit]

    async def purge_before(self, before: datetime) -> int:
        old = [e for e in self._state.events[:-1] if e.occurred_at < before]
        self._state.events = [e for e in self._state.events if e not in old]
        return len(old)


class FakeUsers:
    def __init__(self, state: State) -> None:
        self._state = state

    async def add(self, user: User) -> None:
        racer = self._state.registered_elsewhere
        if racer is not None:
            self._state.registered_elsewhere = None
            self._state.commit_elsewhere(lambda s: s.users.update({racer.id: racer}))
        if any(u.email == user.email for u in self._state.users.values()):
            raise EmailTaken()
        self._state.users[user.id] = replace(user)

    async def get(self, user_id: str) -> User | None:
        user = self._state.users.get(user_id)
        return replace(user) if user else None

    async def lock(self, user_id: str) -> User | None:
        return await self.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        found = [u for u in self._state.users.values() if u.email == email]
        return replace(found[0]) if found else None

    async def page(self, *, offset: int, limit: int) -> Page[User]:
        newest = sorted(self._state.users.values(), key=lambda u: (u.created_at, u.id))[::-1]
        return Page([replace(u) for u in newest[offset : offset + limit]], len(newest))

    async def update_profile(
        self, user_id: str, now: datetime, *, name: str | None, password_hash: str | None
    ) -> bool:
        user = self._state.users.get(user_id)
        if user is None:
            return False
        user.name = name if name is not None else user.name
        user.password_hash = password_hash if password_hash is not None else user.password_hash
        user.updated_at = now
        return True

    async def set_access(
        self, user_id: str, now: datetime, *, role: Role, is_active: bool
    ) -> int | None:
        user = self._state.users.get(user_id)
        if user is None:
            return None
        user.role, user.is_active, user.updated_at = role, is_active, now
        user.token_version += 1
        return user.token_version

    async def lock_admin_ids(self) -> list[str]:
        return [u.id for u in self._state.users.values() if u.is_active_admin]


class FakeRefreshTokens:
    def __init__(self, state: State) -> None:
        self._state = state

    async def add(self, token: RefreshToken) -> None:
        self._state.tokens[token.id] = replace(token)

    async def find(self, token_hash: str) -> RefreshToken | None:
        found = [t for t in self._state.tokens.values() if t.token_hash == token_hash]
        return replace(found[0]) if found else None

    async def use(self, token_id: str, now: datetime) -> bool:
        if token_id in self._state.rotated_elsewhere:
            self._state.rotated_elsewhere.discard(token_id)
            self._state.commit_elsewhere(lambda s: setattr(s.tokens[token_id], "used_at", now))
        token = self._state.tokens[token_id]
        if token.used_at is not None or token.revoked_at is not None:
            return False
        token.used_at = now
        return True

    async def revoke_family(self, family_id: str, now: datetime) -> int:
        return self._revoke(lambda t: t.family_id == family_id, now)

    async def revoke_user_families(
        self, user_id: str, now: datetime, *, keep_family: str | None
    ) -> list[str]:
        live = [
            t
            for t in self._state.tokens.values()
            if t.user_id == user_id and t.family_id != keep_family and t.revoked_at is None
        ]
        self._revoke(lambda t: t in live, now)
        return sorted({t.family_id for t in live})

    async def purge_expired_families(self, now: datetime) -> int:
        newest: dict[str, datetime] = {}
        for t in self._state.tokens.values():
            newest[t.family_id] = max(newest.get(t.family_id, t.expires_at), t.expires_at)
        dead = [i for i, t in self._state.tokens.items() if newest[t.family_id] < now]
        for token_id in dead:
            del self._state.tokens[token_id]
        return len(dead)

    def _revoke(self, matches: Callable[[RefreshToken], bool], now: datetime) -> int:
        live = [t for t in self._state.tokens.values() if matches(t) and t.revoked_at is None]
        for token in live:
            token.revoked_at = now
        return len(live)


class FakeThrottle:
    def __init__(self, state: State) -> None:
        self._state = state

    async def admit(self, key: str, policy: ThrottlePolicy, now: datetime) -> datetime | None:
        row = self._state.throttle.get(key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            return row.locked_until
        quiet_since = now - policy.window
        if row is None or (
            row.last_failure_at < quiet_since
            and (row.locked_until is None or row.locked_until < quiet_since)
        ):
            row = self._state.throttle[key] = Throttled(0, now, row.locked_until if row else None)
        row.failures += 1
        row.last_failure_at = now
        lock = policy.lock_after(row.failures)
        if lock:
            row.locked_until = now + lock
        return None

    async def forgive(self, key: str) -> None:
        row = self._state.throttle.get(key)
        if row is not None and row.failures > 0:
            row.failures -= 1

    async def clear(self, key: str) -> None:
        self._state.throttle.pop(key, None)

    async def purge_quiet(self, before: datetime) -> int:
        quiet = [
            k
            for k, r in self._state.throttle.items()
            if r.last_failure_at < before and (r.locked_until is None or r.locked_until < before)
        ]
        for key in quiet:
            del self._state.throttle[key]
        return len(quiet)


class FakeCart:
    def __init__(self, state: State) -> None:
        self._state = state

    async def lines(self, user_id: str) -> list[CartLine]:
        mine = [line for (owner, _), line in self._state.cart.items() if owner == user_id]
        return sorted(mine, key=lambda line: (line.added_at, line.product_id))

    async def get(self, user_id: str, product_id: str) -> CartLine | None:
        return self._state.cart.get((user_id, product_id))

    async def count(self, user_id: str) -> int:
        return len(await self.lines(user_id))

    async def add(self, line: CartLine, *, limit: int) -> int | None:
        key = (line.user_id, line.product_id)
        current = self._state.cart.get(key)
        quantity = line.quantity + (current.quantity if current else 0)
        if quantity > limit:
            return None
        self._state.cart[key] = replace(current or line, quantity=quantity)
        return quantity

    async def set_quantity(self, user_id: str, product_id: str, quantity: int) -> bool:
        current = self._state.cart.get((user_id, product_id))
        if current is None:
            return False
        self._state.cart[user_id, product_id] = replace(current, quantity=quantity)
        return True

    async def remove(self, user_id: str, product_id: str) -> bool:
        return self._state.cart.pop((user_id, product_id), None) is not None

    async def clear(self, user_id: str) -> int:
        mine = [key for key in self._state.cart if key[0] == user_id]
        for key in mine:
            del self._state.cart[key]
        return len(mine)


class FakeUnitOfWork(RollbackUnitOfWork[State]):
    data = DATA

    def __init__(self, state: State | None = None) -> None:
        super().__init__(state or State())

    @property
    def users(self) -> FakeUsers:
        return FakeUsers(self.state)

    @property
    def refresh_tokens(self) -> FakeRefreshTokens:
        return FakeRefreshTokens(self.state)

    @property
    def throttle(self) -> FakeThrottle:
        return FakeThrottle(self.state)

    @property
    def cart(self) -> FakeCart:
        return FakeCart(self.state)

    @property
    def events(self) -> FakeEvents:
        return FakeEvents(self.state)


class FakeHasher:
    """Instant and transparent; records what it was asked, dummy verifications included."""

    def __init__(self, rounds: int = 12) -> None:
        self.rounds = rounds
        self.verified: list[str | None] = []

    async def hash(self, password: str) -> str:
        return f"fake${self.rounds:02d}${password}"

    async def verify(self, password: str, password_hash: str | None) -> bool:
        self.verified.append(password_hash)
        return password_hash is not None and password_hash.split("$", 2)[2] == password

    def needs_rehash(self, password_hash: str) -> bool:
        return password_hash.split("$")[1] != f"{self.rounds:02d}"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def policy(free: int = 5, window: int = 900, max_lock: int = 900) -> ThrottlePolicy:
    return ThrottlePolicy(free, timedelta(seconds=window), timedelta(seconds=max_lock))


def make_context(
    *,
    units: Units | None = None,
    hasher: FakeHasher | None = None,
    clock: Clock | None = None,
    address_free: int = 20,
    catalog: FakeCatalog | None = None,
) -> AuthDeps:
    """The use cases' `AuthDeps` over `units` (a fresh fake database if none)."""
    return AuthDeps(
        units=units or units_over(State()),
        hasher=hasher or FakeHasher(),
        tokens=TokenCodec(SECRET),
        policy=AuthPolicy(timedelta(days=7), policy(), policy(free=address_free)),
        catalog=catalog or FakeCatalog(),
        clock=clock or Clock(),
    )


def units_over(state: State) -> Units:
    """A unit-of-work factory over one fake database."""

    def units(*, readonly: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(state)

    return units


class FakeCatalog:
    """The products lookup: what exists now, who asked for what, and whether it is down."""

    def __init__(self) -> None:
        self.products: dict[str, CatalogProduct] = {}
        self.down = False
        self.asked: list[list[str]] = []

    def add(
        self,
        product_id: str,
        price_cents: int = 1000,
        tax_bp: int = 0,
        stock: int = 100,
        *,
        title: str | None = None,
        image_url: str | None = None,
    ) -> CatalogProduct:
        product = CatalogProduct(
            product_id, title or product_id.title(), price_cents, tax_bp, stock, image_url
        )
        self.products[product_id] = product
        return product

    async def lookup(self, product_ids: Sequence[str]) -> dict[str, CatalogProduct]:
        if self.down:
            raise ServiceUnavailable("The products service is unavailable")
        assert len(product_ids) <= 100, "the products lookup takes at most 100 ids"
        self.asked.append(list(product_ids))
        return {pid: self.products[pid] for pid in product_ids if pid in self.products}


def make_cart_context(state: State, catalog: FakeCatalog, clock: Clock | None = None) -> AuthDeps:
    return make_context(units=units_over(state), catalog=catalog, clock=clock)
