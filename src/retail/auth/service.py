"""Use cases of accounts and sessions: `(deps: AuthDeps, *, ...)`. Each opens its own units of
work from `deps.units`; bcrypt always runs outside them, so no database lock is held for the
quarter second a hash takes."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from retail.auth.domain import (
    LoginKeys,
    Page,
    RefreshToken,
    Session,
    User,
    email_problem,
    hash_refresh_token,
    name_problem,
    new_refresh_token,
    normalize_email,
    password_problem,
)
from retail.auth.exceptions import (
    AccountDisabled,
    AccountGone,
    CurrentPasswordIncorrect,
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    LastAdmin,
    LoginThrottled,
    TokenReused,
    UserNotFound,
)
from retail.auth.ports import AuthDeps, UnitOfWork
from retail.kernel.errors import ValidationFailed
from retail.kernel.events import Event
from retail.kernel.metrics import LOGIN_THROTTLED
from retail.kernel.security import Role
from retail.kernel.sessions import CLOCK_MARGIN_SECONDS, SESSION_REVOKED, USER_CHANGED

# --- accounts ---------------------------------------------------------------------------


async def register(deps: AuthDeps, *, email: str, name: str, password: str) -> User:
    """A new customer. The unique index decides a race between two equal emails."""
    return await _create_user(deps, normalize_email(email), name, password, "customer")


async def _create_user(deps: AuthDeps, email: str, name: str, password: str, role: Role) -> User:
    # Hashed even if the email turns out to be taken: the answer takes as long either way.
    password_hash = await deps.hasher.hash(password)
    now = deps.clock()
    user = User(str(uuid.uuid4()), email, name, role, password_hash, now, now)
    async with deps.units() as uow:
        await uow.users.add(user)
        await uow.commit()
    return user


async def get_user(deps: AuthDeps, *, user_id: str) -> User:
    async with deps.units(readonly=True) as uow:
        user = await uow.users.get(user_id)
    if user is None:
        raise UserNotFound()
    return user


async def get_account(deps: AuthDeps, *, user_id: str) -> User:
    """The signed-in user; their token outliving their account is a 401, not a 404. (A
    deactivated account's tokens are refused before this, by the revocation set; this
    check holds while that is catching up.)"""
    try:
        user = await get_user(deps, user_id=user_id)
    except UserNotFound:
        raise AccountGone() from None
    if not user.is_active:
        raise AccountDisabled()
    return user


async def list_users(deps: AuthDeps, *, offset: int, limit: int) -> Page[User]:
    async with deps.units(readonly=True) as uow:
        return await uow.users.page(offset=offset, limit=limit)


async def update_account(
    deps: AuthDeps,
    *,
    user_id: str,
    session_id: str | None,
    address: str,
    name: str | None = None,
    password: str | None = None,
    current_password: str | None = None,
) -> User:
    """Change name and/or password. A new password needs the current one (throttled like a
    login) and signs out every other session: all families but `session_id`'s."""
    user = await get_account(deps, user_id=user_id)
    password_hash = None
    keys = _keys(deps, user.email, address)
    if password is not None:
        await _admit(deps, keys)
        if not await deps.hasher.verify(current_password or "", user.password_hash):
            raise CurrentPasswordIncorrect()
        password_hash = await deps.hasher.hash(password)
    now = deps.clock()
    async with deps.units() as uow:
        if not await uow.users.update_profile(user_id, now, name=name, password_hash=password_hash):
            raise AccountGone()
        if password_hash is not None:
            families = await uow.refresh_tokens.revoke_user_families(
                user_id, now, keep_family=session_id
            )
            for family_id in families:
                await _session_revoked(uow, family_id, user_id)
            await _forgive(uow, keys)
        await uow.commit()
    return await get_account(deps, user_id=user_id)


async def change_access(
    deps: AuthDeps,
    *,
    user_id: str,
    role: Role | None = None,
    is_active: bool | None = None,
) -> User:
    """An admin changes a user's role and/or standing (each optional). Either change raises
    the user's token version, so every service refuses their older access tokens within
    the feed's bound; a deactivation also ends their refresh-token families, and a
    deactivated account cannot sign in. Its orders stay. The last active admin can be
    neither demoted nor deactivated."""
    now = deps.clock()
    async with deps.units() as uow:
        user = await uow.users.get(user_id)
        if user is None:
            raise UserNotFound()
        role = user.role if role is None else role
        is_active = user.is_active if is_active is None else is_active
        if (role, is_active) == (user.role, user.is_active):
            return user
        if user.is_active_admin and not (role == "admin" and is_active):
            admins = await uow.users.lock_admin_ids()
            if user.id in admins and len(admins) == 1:
                raise LastAdmin()
        version = await uow.users.set_access(user_id, now, role=role, is_active=is_active)
        if version is None:
            raise UserNotFound()
        if not is_active:
            await uow.refresh_tokens.revoke_user_families(user_id, now, keep_family=None)
        user.role, user.is_active, user.token_version, user.updated_at = (
            role,
            is_active,
            version,
            now,
        )
        await _user_changed(uow, user)
        await uow.commit()
    return user


async def ensure_admin(deps: AuthDeps, *, email: str, password: str, name: str) -> User:
    """Create the admin, or promote the user who has this email. Idempotent, and safe when
    several processes start at once. An existing user keeps their password: the one in the
    settings only creates, or a restart would undo every later password change."""
    problems = {
        "email": email_problem(email),
        "password": password_problem(password),
        "name": name_problem(name.strip()),
    }
    if any(problems.values()):
        found = {k: v for k, v in problems.items() if v}
        raise ValidationFailed(f"Invalid admin: {', '.join(found)}", details=found)
    email = normalize_email(email)
    promoted = await _promote(deps, email)
    if promoted is not None:
        return promoted
    try:
        return await _create_user(deps, email, name.strip(), password, "admin")
    except EmailTaken:  # another process created it meanwhile
        promoted = await _promote(deps, email)
        if promoted is None:
            raise
        return promoted


async def _promote(deps: AuthDeps, email: str) -> User | None:
    async with deps.units() as uow:
        user = await uow.users.get_by_email(email)
        if user is None or user.is_admin:
            return user
        user.role, user.updated_at = "admin", deps.clock()
        version = await uow.users.set_access(
            user.id, user.updated_at, role="admin", is_active=user.is_active
        )
        user.token_version = version if version is not None else user.token_version
        await _user_changed(uow, user)
        await uow.commit()
    return user


# --- sessions ---------------------------------------------------------------------------


async def login(deps: AuthDeps, *, email: str, password: str, address: str) -> Session:
    """Unknown email and wrong password look the same: same error, same bcrypt work."""
    email = normalize_email(email)
    keys = _keys(deps, email, address)
    user = await _admit(deps, keys)
    verified = await deps.hasher.verify(password, user.password_hash if user else None)
    if user is None or not verified:
        raise InvalidCredentials()  # the admitted attempt stays counted as a failure
    if not user.is_active:  # said only to who knows the password
        raise AccountDisabled()
    new_hash = None
    if deps.hasher.needs_rehash(user.password_hash):  # BCRYPT_ROUNDS changed since
        new_hash = await deps.hasher.hash(password)
    now = deps.clock()
    family_id = str(uuid.uuid4())
    token, raw = _link(family_id, user.id, now, deps.policy.refresh_ttl)
    async with deps.units() as uow:
        await _forgive(uow, keys)
        if new_hash is not None:
            await uow.users.update_profile(user.id, now, name=None, password_hash=new_hash)
        await uow.refresh_tokens.add(token)
        await uow.commit()
    return _session(deps, user, raw, family_id)


async def refresh(deps: AuthDeps, *, refresh_token: str) -> Session:
    """Rotate: use this link up and hand out the next. Presenting a used link again means
    two parties hold the family, so the whole family is revoked, the newest link included."""
    now = deps.clock()
    async with deps.units() as uow:
        current = await uow.refresh_tokens.find(hash_refresh_token(refresh_token))
        if current is None or current.revoked_at is not None:
            raise InvalidRefreshToken()
        if current.used_at is None and current.is_expired(now):
            raise InvalidRefreshToken()
        if current.used_at is not None or not await uow.refresh_tokens.use(current.id, now):
            await uow.refresh_tokens.revoke_family(current.family_id, now)
            await _session_revoked(uow, current.family_id, current.user_id)
            await uow.commit()  # the revocation stands although the request fails
            raise TokenReused()
        user = await uow.users.get(current.user_id)
        if user is None or not user.is_active:
            raise InvalidRefreshToken()
        successor, raw = _link(current.family_id, user.id, now, deps.policy.refresh_ttl)
        await uow.refresh_tokens.add(successor)
        await uow.commit()
    return _session(deps, user, raw, current.family_id)


async def logout(deps: AuthDeps, *, refresh_token: str) -> None:
    """Revoke the token's family. Unknown or already revoked tokens are fine: idempotent."""
    async with deps.units() as uow:
        current = await uow.refresh_tokens.find(hash_refresh_token(refresh_token))
        if current is not None and current.revoked_at is None:
            await uow.refresh_tokens.revoke_family(current.family_id, deps.clock())
            await _session_revoked(uow, current.family_id, current.user_id)
            await uow.commit()


async def purge_stale(deps: AuthDeps) -> tuple[int, int, int]:
    """Forget quiet throttle keys, dead token families, and feed events older than any
    access token they could refuse; (keys, families, events) removed."""
    now = deps.clock()
    window = max(deps.policy.account.window, deps.policy.address.window)
    async with deps.units() as uow:
        keys = await uow.throttle.purge_quiet(now - window)
        families = await uow.refresh_tokens.purge_expired_families(now)
        events = await uow.events.purge_before(now - event_retention(deps))
        await uow.commit()
    return keys, families, events


def event_retention(deps: AuthDeps) -> timedelta:
    """How long auth's feed keeps an event: twice what the followers hold it (a token's
    life plus the clock margin), so a follower a little behind still reads it."""
    return 2 * timedelta(seconds=deps.tokens.access_ttl_seconds + CLOCK_MARGIN_SECONDS)


async def read_events(deps: AuthDeps, *, after: int, limit: int) -> list[Event]:
    """A page of auth's feed (the kernel's /internal/events)."""
    async with deps.units(readonly=True) as uow:
        return await uow.events.read_after(after, limit)


async def _session_revoked(uow: UnitOfWork, family_id: str, user_id: str) -> None:
    await uow.events.append(SESSION_REVOKED, family_id, {"sid": family_id, "user_id": user_id})


async def _user_changed(uow: UnitOfWork, user: User) -> None:
    data = {
        "user_id": user.id,
        "ver": user.token_version,
        "role": user.role,
        "is_active": user.is_active,
    }
    await uow.events.append(USER_CHANGED, user.id, data)


def _link(family_id: str, user_id: str, now: datetime, ttl: timedelta) -> tuple[RefreshToken, str]:
    raw = new_refresh_token()
    token_id = str(uuid.uuid4())
    return RefreshToken(token_id, family_id, user_id, hash_refresh_token(raw), now, now + ttl), raw


def _session(deps: AuthDeps, user: User, refresh_token: str, family_id: str) -> Session:
    access = deps.tokens.issue_access(user.id, user.role, family_id, user.token_version)
    return Session(user, access, refresh_token, deps.tokens.access_ttl_seconds)


# --- throttling -------------------------------------------------------------------------


def _keys(deps: AuthDeps, email: str, address: str) -> LoginKeys:
    return LoginKeys.of(email, address, deps.policy.account, deps.policy.address)


async def _admit(deps: AuthDeps, keys: LoginKeys) -> User | None:
    """Count the attempt against both keys BEFORE the password is checked, or refuse it
    (429) if one is locked. Counting first means a burst of parallel guesses cannot all
    pass the check while the first ones are still hashing. Returns the account's user."""
    now = deps.clock()
    async with deps.units() as uow:
        locks = [
            await uow.throttle.admit(key.key, key.policy, now)
            for key in (keys.account, keys.address)
        ]
        until = max((lock for lock in locks if lock is not None), default=None)
        if until is not None:  # leaving without a commit uncounts the key that admitted
            LOGIN_THROTTLED.labels(key="account" if locks[0] else "address").inc()
            raise LoginThrottled(retry_after=_seconds_until(until, now))
        user = await uow.users.get_by_email(keys.email)
        await uow.commit()
    return user


async def _forgive(uow: UnitOfWork, keys: LoginKeys) -> None:
    """The attempt succeeded: the account starts afresh, the address gets its one back.
    (Clearing the address too would let one valid account reset an attacker's counter.)"""
    await uow.throttle.clear(keys.account.key)
    await uow.throttle.forgive(keys.address.key)


def _seconds_until(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))
