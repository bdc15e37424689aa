"""Use cases against in-memory fakes: accounts, sessions, rotation, throttling, admins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retail.auth import service
from retail.auth.config import AuthSettings
from retail.auth.domain import (
    LoginKeys,
    Session,
    ThrottlePolicy,
    User,
    email_problem,
    hash_refresh_token,
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
from retail.auth.main import _purging
from retail.auth.ports import AuthDeps
from retail.kernel.errors import ValidationFailed
from retail.kernel.security import TokenCodec
from retail.kernel.settings import SettingsError
from tests.auth.fakes import Clock, FakeHasher, FakeUnitOfWork, make_context, policy, units_over
from tests.support import SECRET, make_settings

ADDRESS = "203.0.113.7"
PASSWORD = "correct horse"
KEYS = LoginKeys.of("ada@shop.test", ADDRESS, policy(), policy())
ACCOUNT, ADDRESS_KEY = KEYS.account.key, KEYS.address.key


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hasher() -> FakeHasher:
    return FakeHasher()


@pytest.fixture
def deps(uow: FakeUnitOfWork, clock: Clock, hasher: FakeHasher) -> AuthDeps:
    return make_context(hasher=hasher, clock=clock, units=units_over(uow.state))


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


async def register(deps: AuthDeps, email: str = "ada@shop.test", name: str = "Ada") -> User:
    return await service.register(deps, email=email, name=name, password=PASSWORD)


async def login(
    deps: AuthDeps,
    email: str = "ada@shop.test",
    password: str = PASSWORD,
    address: str = ADDRESS,
) -> Session:
    return await service.login(deps, email=email, password=password, address=address)


# --- rules ------------------------------------------------------------------------------


def test_emails_normalise_to_one_spelling() -> None:
    assert normalize_email("  Ada@Shop.TEST ") == "ada@shop.test"
    assert email_problem("ada@shop.test") is None
    assert email_problem("not-an-email") is not None


@pytest.mark.parametrize(
    ("password", "ok"),
    [("1234567", False), ("12345678", True), ("é" * 36, True), ("é" * 37, False)],
)
def test_password_rules_count_characters_and_utf8_bytes(password: str, ok: bool) -> None:
    problem = password_problem(password)
    assert (problem is None) is ok
    assert problem is None or password not in problem


def test_throttle_keys_hold_no_personal_data() -> None:
    assert "ada" not in ACCOUNT
    assert ADDRESS not in ADDRESS_KEY
    assert ACCOUNT.startswith("account:")
    assert len(ACCOUNT) == len(LoginKeys.of("x" * 300, "", policy(), policy()).account.key)


def test_lock_grows_exponentially_after_the_free_failures_and_is_capped() -> None:
    policy = ThrottlePolicy(5, timedelta(minutes=15), timedelta(minutes=15))
    assert [policy.lock_after(n).total_seconds() for n in range(4, 9)] == [0, 0, 2, 4, 8]
    assert policy.lock_after(15) == timedelta(minutes=15)
    assert policy.lock_after(10_000) == timedelta(minutes=15)


# --- accounts ---------------------------------------------------------------------------


async def test_register_normalises_and_makes_a_customer(
    uow: FakeUnitOfWork, deps: AuthDeps
) -> None:
    user = await register(deps, email="  Ada@Shop.Test ")
    assert (user.email, user.role) == ("ada@shop.test", "customer")
    stored = uow.state.users[user.id]
    assert stored.password_hash != PASSWORD
    assert stored.created_at == deps.clock()


async def test_a_second_registration_in_another_case_is_refused(
    uow: FakeUnitOfWork, deps: AuthDeps
) -> None:
    await register(deps)
    with pytest.raises(EmailTaken):
        await register(deps, email="ADA@shop.test")
    assert len(uow.state.users) == 1


async def test_users_are_listed_newest_first(deps: AuthDeps, clock: Clock) -> None:
    for n in range(5):
        await register(deps, email=f"u{n}@shop.test")
        clock.advance(seconds=1)
    page = await service.list_users(deps, offset=1, limit=2)
    assert [u.email for u in page.items] == ["u3@shop.test", "u2@shop.test"]
    assert page.total == 5


async def test_unknown_users_are_not_found(deps: AuthDeps) -> None:
    with pytest.raises(UserNotFound):
        await service.get_user(deps, user_id="nope")
    with pytest.raises(AccountGone):
        await service.get_account(deps, user_id="nope")


# --- login ------------------------------------------------------------------------------


async def test_login_issues_an_access_token_for_the_family(
    uow: FakeUnitOfWork, deps: AuthDeps
) -> None:
    user = await register(deps)
    session = await login(deps, email=" ADA@shop.test")
    principal = TokenCodec(SECRET).verify_access(session.access_token)
    (stored,) = uow.state.tokens.values()
    assert (principal.user_id, principal.role) == (user.id, "customer")
    assert principal.session_id == stored.family_id
    # Only the hash is kept.
    assert stored.token_hash == hash_refresh_token(session.refresh_token)
    assert session.refresh_token not in repr(uow.state)
    assert stored.expires_at == deps.clock() + timedelta(days=7)


async def test_unknown_email_and_wrong_password_fail_alike(
    deps: AuthDeps, hasher: FakeHasher
) -> None:
    await register(deps)
    with pytest.raises(InvalidCredentials) as unknown:
        await login(deps, email="eve@shop.test")
    with pytest.raises(InvalidCredentials) as wrong:
        await login(deps, password="wrong password")
    assert unknown.value.message == wrong.value.message
    # The unknown email was still checked against a (dummy) hash: same work, same time.
    assert hasher.verified[0] is None
    assert hasher.verified[1] is not None


async def test_a_changed_cost_rehashes_on_login(uow: FakeUnitOfWork, clock: Clock) -> None:
    await register(
        make_context(units=units_over(uow.state), hasher=FakeHasher(rounds=10), clock=clock)
    )
    await login(
        make_context(units=units_over(uow.state), hasher=FakeHasher(rounds=12), clock=clock)
    )
    (user,) = uow.state.users.values()
    assert user.password_hash.startswith("fake$12$")


# --- throttling -------------------------------------------------------------------------


async def fail(deps: AuthDeps, times: int, **kwargs: str) -> None:
    for _ in range(times):
        with pytest.raises(InvalidCredentials):
            await login(deps, password="wrong password", **kwargs)


async def test_five_failures_are_free_then_locks_grow(
    deps: AuthDeps, clock: Clock, hasher: FakeHasher
) -> None:
    await register(deps)
    await fail(deps, 6)  # the sixth is still checked, and locks for 2 s
    checked = len(hasher.verified)
    with pytest.raises(LoginThrottled) as locked:
        await login(deps)  # even the right password waits
    assert locked.value.headers == {"Retry-After": "2"}
    assert len(hasher.verified) == checked  # refused before any password check
    clock.advance(seconds=2)
    await fail(deps, 1)
    with pytest.raises(LoginThrottled) as longer:
        await login(deps)
    assert longer.value.headers == {"Retry-After": "4"}


async def test_success_clears_the_account_but_not_the_address(
    uow: FakeUnitOfWork, deps: AuthDeps
) -> None:
    await register(deps)
    await fail(deps, 4)
    await login(deps)
    assert ACCOUNT not in uow.state.throttle
    assert uow.state.throttle[ADDRESS_KEY].failures == 4
    await fail(deps, 5)  # a fresh allowance for the account
    assert uow.state.throttle[ACCOUNT].locked_until is None


async def test_one_address_guessing_many_accounts_is_throttled(
    uow: FakeUnitOfWork, clock: Clock
) -> None:
    deps = make_context(clock=clock, address_free=3, units=units_over(uow.state))
    for n in range(4):
        await fail(deps, 1, email=f"victim{n}@shop.test")
    with pytest.raises(LoginThrottled):
        await login(deps, email="victim9@shop.test")
    await fail(deps, 1, email="victim9@shop.test", address="198.51.100.1")


async def test_unknown_emails_are_throttled_like_known_ones(deps: AuthDeps) -> None:
    await fail(deps, 6, email="ghost@shop.test")
    with pytest.raises(LoginThrottled):
        await login(deps, email="ghost@shop.test")


async def test_a_locked_attempt_counts_nothing(uow: FakeUnitOfWork, deps: AuthDeps) -> None:
    await fail(deps, 6)
    before = {k: v.failures for k, v in uow.state.throttle.items()}
    for _ in range(3):
        with pytest.raises(LoginThrottled):
            await login(deps)
    assert {k: v.failures for k, v in uow.state.throttle.items()} == before


async def test_counts_are_forgotten_after_a_quiet_window(
    uow: FakeUnitOfWork, deps: AuthDeps, clock: Clock
) -> None:
    await register(deps)
    for _ in range(8):
        await fail(deps, 1)
        clock.advance(minutes=1)  # longer than any lock so far (the 8th: 8 s)
    await fail(deps, 1)
    assert uow.state.throttle[ACCOUNT].failures == 9
    clock.advance(minutes=15, seconds=16)  # the 16 s lock, then not quite a quiet window
    await fail(deps, 1)
    assert uow.state.throttle[ACCOUNT].failures == 10
    clock.advance(minutes=15, seconds=33)  # the 32 s lock, then a whole quiet window
    await fail(deps, 1)
    assert uow.state.throttle[ACCOUNT].failures == 1
    assert await service.purge_stale(deps) == (0, 0, 0)
    clock.advance(minutes=16)
    assert await service.purge_stale(deps) == (2, 0, 0)


# --- refresh and logout -----------------------------------------------------------------


async def test_refresh_rotates_and_keeps_the_family(uow: FakeUnitOfWork, deps: AuthDeps) -> None:
    await register(deps)
    first = await login(deps)
    second = await service.refresh(deps, refresh_token=first.refresh_token)
    assert second.refresh_token != first.refresh_token
    old, new = sorted(uow.state.tokens.values(), key=lambda t: t.used_at is None)
    assert old.used_at is not None
    assert new.family_id == old.family_id
    codec = TokenCodec(SECRET)
    assert codec.verify_access(second.access_token).session_id == new.family_id


async def test_reuse_revokes_the_whole_family(deps: AuthDeps) -> None:
    await register(deps)
    first = await login(deps)
    other = await login(deps)  # another device: another family
    second = await service.refresh(deps, refresh_token=first.refresh_token)
    with pytest.raises(TokenReused):
        await service.refresh(deps, refresh_token=first.refresh_token)
    with pytest.raises(InvalidRefreshToken):
        await service.refresh(deps, refresh_token=second.refresh_token)
    assert await service.refresh(deps, refresh_token=other.refresh_token)


async def test_losing_a_rotation_race_is_reuse(uow: FakeUnitOfWork, deps: AuthDeps) -> None:
    await register(deps)
    session = await login(deps)
    (token,) = uow.state.tokens.values()
    uow.state.rotated_elsewhere.add(token.id)
    with pytest.raises(TokenReused):
        await service.refresh(deps, refresh_token=session.refresh_token)
    assert uow.state.tokens[token.id].revoked_at is not None


async def test_expired_and_unknown_tokens_are_refused(deps: AuthDeps, clock: Clock) -> None:
    await register(deps)
    session = await login(deps)
    with pytest.raises(InvalidRefreshToken):
        await service.refresh(deps, refresh_token="not-a-token")
    clock.advance(days=7)
    with pytest.raises(InvalidRefreshToken):
        await service.refresh(deps, refresh_token=session.refresh_token)
    clock.advance(seconds=1)
    assert await service.purge_stale(deps) == (1, 1, 0)  # a family, and a forgiven address


async def test_logout_revokes_the_family_and_is_idempotent(deps: AuthDeps) -> None:
    await register(deps)
    first = await login(deps)
    second = await service.refresh(deps, refresh_token=first.refresh_token)
    await service.logout(deps, refresh_token=first.refresh_token)  # any link of the family will do
    await service.logout(deps, refresh_token=second.refresh_token)
    await service.logout(deps, refresh_token="never-issued")
    with pytest.raises(InvalidRefreshToken):
        await service.refresh(deps, refresh_token=second.refresh_token)


# --- changing the account ---------------------------------------------------------------


async def test_name_changes_need_no_password(uow: FakeUnitOfWork, deps: AuthDeps) -> None:
    user = await register(deps)
    changed = await service.update_account(
        deps, user_id=user.id, session_id=None, address=ADDRESS, name="Ada L."
    )
    assert changed.name == "Ada L."
    assert uow.state.users[user.id].name == "Ada L."


async def test_password_change_signs_out_other_sessions(deps: AuthDeps) -> None:
    user = await register(deps)
    here, elsewhere = await login(deps), await login(deps)
    here_family = TokenCodec(SECRET).verify_access(here.access_token).session_id
    await service.update_account(
        deps,
        user_id=user.id,
        session_id=here_family,
        address=ADDRESS,
        password="new password",
        current_password=PASSWORD,
    )
    with pytest.raises(InvalidRefreshToken):
        await service.refresh(deps, refresh_token=elsewhere.refresh_token)
    assert await service.refresh(deps, refresh_token=here.refresh_token)
    assert await login(deps, password="new password")


async def test_password_change_needs_the_current_password(
    uow: FakeUnitOfWork, deps: AuthDeps
) -> None:
    user = await register(deps)
    for _ in range(6):
        with pytest.raises(CurrentPasswordIncorrect):
            await service.update_account(
                deps,
                user_id=user.id,
                session_id=None,
                address=ADDRESS,
                password="new password",
                current_password="a guess",
            )
    assert uow.state.users[user.id].password_hash.endswith(PASSWORD)
    with pytest.raises(LoginThrottled):  # guessing it here is throttled like a login
        await login(deps)


# --- roles and admins -------------------------------------------------------------------


async def test_the_last_admin_cannot_be_demoted(deps: AuthDeps) -> None:
    admin = await service.ensure_admin(deps, email="boss@shop.test", password=PASSWORD, name="Boss")
    with pytest.raises(LastAdmin):
        await service.change_access(deps, user_id=admin.id, role="customer")
    other = await register(deps)
    assert (await service.change_access(deps, user_id=other.id, role="admin")).role == "admin"
    assert (await service.change_access(deps, user_id=admin.id, role="customer")).role == "customer"
    with pytest.raises(LastAdmin):
        await service.change_access(deps, user_id=other.id, role="customer")
    with pytest.raises(UserNotFound):
        await service.change_access(deps, user_id="nope", role="admin")


async def test_the_last_active_admin_cannot_be_deactivated(
    uow: FakeUnitOfWork, deps: AuthDeps
) -> None:
    boss = await service.ensure_admin(deps, email="boss@shop.test", password=PASSWORD, name="Boss")
    with pytest.raises(LastAdmin):
        await service.change_access(deps, user_id=boss.id, is_active=False)
    other = await register(deps)
    await service.change_access(deps, user_id=other.id, role="admin")
    assert not (await service.change_access(deps, user_id=other.id, is_active=False)).is_active
    # A deactivated admin is no admin to fall back on: the boss is the last active one.
    with pytest.raises(LastAdmin):
        await service.change_access(deps, user_id=boss.id, is_active=False)
    with pytest.raises(LastAdmin):
        await service.change_access(deps, user_id=boss.id, role="customer", is_active=True)
    assert uow.state.users[boss.id].is_active_admin


async def test_deactivation_ends_every_session_and_reactivation_restores_sign_in(
    uow: FakeUnitOfWork, deps: AuthDeps
) -> None:
    user = await register(deps)
    first, second = await login(deps), await login(deps)
    changed = await service.change_access(deps, user_id=user.id, is_active=False)
    assert (changed.is_active, changed.token_version) == (False, 1)
    assert all(t.revoked_at is not None for t in uow.state.tokens.values())
    event = uow.state.events[-1]
    assert (event.type, event.key) == ("user.changed", user.id)
    assert event.data == {"user_id": user.id, "ver": 1, "role": "customer", "is_active": False}
    with pytest.raises(AccountDisabled):
        await login(deps)
    with pytest.raises(InvalidRefreshToken):
        await service.refresh(deps, refresh_token=second.refresh_token)
    with pytest.raises(AccountDisabled):
        await service.get_account(deps, user_id=user.id)
    del first
    await service.change_access(deps, user_id=user.id, is_active=True)
    again = await login(deps)
    assert TokenCodec(SECRET).verify_access(again.access_token).version == 2


async def test_a_change_to_nothing_publishes_nothing(uow: FakeUnitOfWork, deps: AuthDeps) -> None:
    user = await register(deps)
    same = await service.change_access(deps, user_id=user.id, role="customer", is_active=True)
    assert same.token_version == 0
    assert not uow.state.events


async def test_ended_sessions_are_published(uow: FakeUnitOfWork, deps: AuthDeps) -> None:
    """Logout, refresh-token reuse and a password change each publish the families they end
    (`sid` is the family id), for every service to refuse their access tokens."""
    user = await register(deps)
    codec = TokenCodec(SECRET)
    here, there, reused, gone = [await login(deps) for _ in range(4)]
    sid = {
        s.refresh_token: codec.verify_access(s.access_token).session_id
        for s in (here, there, reused, gone)
    }
    await service.logout(deps, refresh_token=gone.refresh_token)
    await service.logout(deps, refresh_token=gone.refresh_token)  # idempotent: published once
    await service.refresh(deps, refresh_token=reused.refresh_token)
    with pytest.raises(TokenReused):
        await service.refresh(deps, refresh_token=reused.refresh_token)
    await service.update_account(
        deps,
        user_id=user.id,
        session_id=sid[here.refresh_token],
        address=ADDRESS,
        password="new password",
        current_password=PASSWORD,
    )
    revoked = [(e.type, e.data["sid"]) for e in uow.state.events]
    assert revoked == [
        ("session.revoked", sid[gone.refresh_token]),
        ("session.revoked", sid[reused.refresh_token]),
        ("session.revoked", sid[there.refresh_token]),  # the caller's own session stays
    ]
    assert {e.data["user_id"] for e in uow.state.events} == {user.id}


async def test_access_tokens_carry_the_token_version(deps: AuthDeps) -> None:
    user = await register(deps)
    await service.change_access(deps, user_id=user.id, role="admin")
    session = await login(deps)
    principal = TokenCodec(SECRET).verify_access(session.access_token)
    assert (principal.role, principal.version) == ("admin", 1)
    refreshed = await service.refresh(deps, refresh_token=session.refresh_token)
    assert TokenCodec(SECRET).verify_access(refreshed.access_token).version == 1


async def test_the_feed_keeps_recent_events_and_always_the_newest(
    deps: AuthDeps, clock: Clock
) -> None:
    user = await register(deps)
    clock.now = datetime.now(UTC)  # the events are stamped by the outbox's own clock
    for _ in range(3):
        await service.logout(deps, refresh_token=(await login(deps)).refresh_token)
    assert (await service.purge_stale(deps))[2] == 0
    clock.advance(seconds=2 * (deps.tokens.access_ttl_seconds + 61))
    assert (await service.purge_stale(deps))[2] == 2
    assert [e.seq for e in await service.read_events(deps, after=0, limit=10)] == [3]
    del user


async def test_ensure_admin_creates_then_is_idempotent(uow: FakeUnitOfWork, deps: AuthDeps) -> None:
    first = await service.ensure_admin(
        deps, email=" Boss@Shop.test", password=PASSWORD, name=" Boss "
    )
    again = await service.ensure_admin(
        deps, email="boss@shop.test", password="another password", name="B"
    )
    assert (first.email, first.name, first.role) == ("boss@shop.test", "Boss", "admin")
    assert again.id == first.id
    assert len(uow.state.users) == 1
    assert await login(deps, email="boss@shop.test")  # the first password still holds


async def test_ensure_admin_promotes_a_customer_and_keeps_their_password(
    uow: FakeUnitOfWork, deps: AuthDeps
) -> None:
    user = await register(deps)
    admin = await service.ensure_admin(
        deps, email="ada@shop.test", password="other password", name="Ada"
    )
    assert (admin.id, admin.role) == (user.id, "admin")
    assert uow.state.users[user.id].password_hash.endswith(PASSWORD)


async def test_ensure_admin_racing_another_process_promotes_its_user(
    uow: FakeUnitOfWork, deps: AuthDeps
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    racer = User("racer", "boss@shop.test", "Boss", "customer", "fake$12$x", now, now)
    uow.state.registered_elsewhere = racer
    admin = await service.ensure_admin(deps, email="boss@shop.test", password=PASSWORD, name="Boss")
    assert (admin.id, admin.role) == ("racer", "admin")
    assert list(uow.state.users) == ["racer"]


@pytest.mark.parametrize(
    ("email", "password", "name"),
    [("nope", PASSWORD, "Boss"), ("b@shop.test", "short", "Boss"), ("b@shop.test", PASSWORD, " ")],
)
async def test_ensure_admin_validates_its_input(
    uow: FakeUnitOfWork, deps: AuthDeps, email: str, password: str, name: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await service.ensure_admin(deps, email=email, password=password, name=name)
    assert password not in refused.value.message
    assert not uow.state.users


@pytest.mark.parametrize(
    "values",
    [
        {"admin_email": "boss@shop.test"},
        {"admin_password": PASSWORD},
        {"admin_email": "nope", "admin_password": PASSWORD},
        {"admin_email": "boss@shop.test", "admin_password": "short"},
        {"retail_env": "production", "jwt_secret_key": "s" * 48, "bcrypt_rounds": 4},
    ],
)
def test_settings_refuse_what_cannot_run_safely(tmp_path: Path, values: dict[str, Any]) -> None:
    with pytest.raises(SettingsError) as refused:
        make_settings(AuthSettings, tmp_path, **values)
    assert PASSWORD not in str(refused.value)


async def test_the_purge_loop_stops_even_when_a_purge_swallows_the_cancellation(
    tmp_path: Path,
) -> None:
    # pymongo's async client can turn a cancellation into an error of its own; the loop
    # logs errors and goes on, so without a check it would sleep a whole window and more.
    purging = asyncio.Event()

    async def purge() -> None:
        purging.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise ConnectionError("the driver's own error") from None

    async def run_until_purging() -> None:
        async with _purging(purge, make_settings(AuthSettings, tmp_path)):
            await purging.wait()

    done, _ = await asyncio.wait({asyncio.create_task(run_until_purging())}, timeout=10)
    assert done, "the purge loop went on after its cancellation was swallowed"
