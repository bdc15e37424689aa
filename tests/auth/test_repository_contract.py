"""The repositories and unit of work of every back end, against one contract: the unique email,
conditional rotation, revocation, the throttle's counting and locks, the cart's conditional
adds, rollback unless committed; races run through two separately opened stores on one
database, as two processes would race.

Timestamps are whole milliseconds (a BSON date's precision), so what comes back from storage
equals what went in.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from retail.auth import cart, service
from retail.auth.dependencies import Units
from retail.auth.domain import MAX_CART_LINES, CartLine, RefreshToken, Session, ThrottlePolicy, User
from retail.auth.exceptions import CartFull, EmailTaken, InvalidRefreshToken
from retail.auth.ports import AuthDeps
from retail.kernel.security import Role
from tests.auth.conftest import Processes
from tests.auth.fakes import FakeCatalog, make_context

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = ThrottlePolicy(2, timedelta(minutes=15), timedelta(minutes=15))


def both(processes: Processes) -> tuple[Units, Units]:
    return processes.one, processes.two


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


async def add_user(units: Units, new: User) -> User:
    async with units() as uow:
        await uow.users.add(new)
        await uow.commit()
    return new


async def add_token(units: Units, new: RefreshToken) -> RefreshToken:
    async with units() as uow:
        await uow.refresh_tokens.add(new)
        await uow.commit()
    return new


# --- users ------------------------------------------------------------------------------


async def test_users_round_trip_as_domain_objects(processes: Processes) -> None:
    one = processes.one
    made = await add_user(one, user())
    async with one(readonly=True) as uow:
        by_id = await uow.users.get(made.id)
        by_email = await uow.users.get_by_email("ada@shop.test")
        assert await uow.users.get("nope") is None
        assert await uow.users.get_by_email("nobody@shop.test") is None
    assert by_id == by_email == made
    assert by_id is not None
    assert by_id.created_at.utcoffset() == timedelta(0)


async def test_a_taken_email_is_a_conflict(processes: Processes) -> None:
    await add_user(processes.one, user())
    with pytest.raises(EmailTaken):
        await add_user(processes.two, user())


async def test_two_processes_registering_one_email_make_one_user(processes: Processes) -> None:
    deps = make_context(units=processes.one)
    results = await asyncio.gather(
        *(
            service.register(
                replace(deps, units=units), email="ada@shop.test", name="A", password="p"
            )
            for units in (processes.one, processes.two, processes.one, processes.two)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, User) for r in results) == 1
    assert sum(isinstance(r, EmailTaken) for r in results) == 3
    async with processes.one(readonly=True) as uow:
        assert (await uow.users.page(offset=0, limit=10)).total == 1


async def test_users_page_newest_first(processes: Processes) -> None:
    for n in range(5):
        await add_user(processes.one, user(f"u{n}@shop.test", at=NOW + timedelta(seconds=n)))
    async with processes.one(readonly=True) as uow:
        page = await uow.users.page(offset=2, limit=2)
    assert [u.email for u in page.items] == ["u2@shop.test", "u1@shop.test"]
    assert page.total == 5


async def test_update_lock_and_admin_ids(processes: Processes) -> None:
    one = processes.one
    ada = await add_user(one, user())
    boss = await add_user(one, user("boss@shop.test", role="admin"))
    later = NOW + timedelta(hours=1)
    async with one() as uow:
        assert await uow.users.update_profile(ada.id, NOW, name="Ada L.", password_hash=None)
        assert await uow.users.update_profile(ada.id, later, name=None, password_hash="$2b$x")
        assert await uow.users.set_access(ada.id, later, role="admin", is_active=True) == 1
        assert await uow.users.set_access("nope", later, role="admin", is_active=True) is None
        assert not await uow.users.update_profile("nope", later, name="x", password_hash=None)
        await uow.commit()
    async with one() as uow:
        expected = replace(ada, name="Ada L.", password_hash="$2b$x", role="admin")
        assert await uow.users.lock(ada.id) == replace(expected, updated_at=later, token_version=1)
        assert await uow.users.lock("nope") is None
        assert sorted(await uow.users.lock_admin_ids()) == sorted([ada.id, boss.id])
        # A deactivated admin is no admin to count on; each change raises the version.
        assert await uow.users.set_access(boss.id, later, role="admin", is_active=False) == 1
        assert await uow.users.lock_admin_ids() == [ada.id]
        assert await uow.users.set_access(boss.id, later, role="admin", is_active=True) == 2
        await uow.commit()
    async with one(readonly=True) as uow:
        found = await uow.users.get(boss.id)
        assert found is not None
        assert (found.is_active, found.token_version) == (True, 2)


# --- refresh tokens ---------------------------------------------------------------------


async def test_tokens_round_trip_as_domain_objects(processes: Processes) -> None:
    owner = await add_user(processes.one, user())
    link = await add_token(processes.one, token(owner))
    async with processes.two(readonly=True) as uow:
        assert await uow.refresh_tokens.find(link.token_hash) == link
        assert await uow.refresh_tokens.find("unknown") is None


async def test_only_one_of_two_rotations_wins(processes: Processes) -> None:
    owner = await add_user(processes.one, user())
    link = await add_token(processes.one, token(owner))

    async def rotate(units: Units) -> bool:
        async with units() as uow:
            won = await uow.refresh_tokens.use(link.id, NOW)
            await asyncio.sleep(0.01)  # hold the transaction while the other one tries
            await uow.commit()
        return won

    assert sorted(await asyncio.gather(rotate(processes.one), rotate(processes.two))) == [
        False,
        True,
    ]
    async with processes.one(readonly=True) as uow:
        used = await uow.refresh_tokens.find(link.token_hash)
    assert used is not None
    assert used.used_at == NOW


async def test_two_processes_refreshing_one_token_give_one_session(processes: Processes) -> None:
    one, two = processes.one, processes.two
    deps = make_context(units=one)
    await service.register(deps, email="a@shop.test", name="A", password="p")
    session = await service.login(deps, email="a@shop.test", password="p", address="a")
    results = await asyncio.gather(
        service.refresh(deps, refresh_token=session.refresh_token),
        service.refresh(replace(deps, units=two), refresh_token=session.refresh_token),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Session", "TokenReused"]
    winner = next(r for r in results if isinstance(r, Session))
    with pytest.raises(InvalidRefreshToken):  # the loser revoked the family, winner's too
        await service.refresh(deps, refresh_token=winner.refresh_token)


async def test_revocation_and_purge(processes: Processes) -> None:
    one = processes.one
    owner = await add_user(one, user())
    other = await add_user(one, user("bob@shop.test"))
    keep, drop = await add_token(one, token(owner, "keep")), await add_token(one, token(owner))
    dead = await add_token(one, token(owner, "dead", expires=NOW - timedelta(days=1)))
    # A family with one expired link and one live one stays whole.
    old_link = await add_token(one, token(other, "mixed", expires=NOW - timedelta(days=1)))
    await add_token(one, token(other, "mixed"))
    async with one() as uow:
        revoked = await uow.refresh_tokens.revoke_user_families(owner.id, NOW, keep_family="keep")
        assert revoked == ["dead", "f1"]
        assert await uow.refresh_tokens.purge_expired_families(NOW) == 1
        await uow.commit()
    async with one(readonly=True) as uow:
        kept = await uow.refresh_tokens.find(keep.token_hash)
        dropped = await uow.refresh_tokens.find(drop.token_hash)
        assert await uow.refresh_tokens.find(dead.token_hash) is None
        assert await uow.refresh_tokens.find(old_link.token_hash) is not None
    assert kept is not None
    assert kept.revoked_at is None
    assert dropped is not None
    assert dropped.revoked_at == NOW
    async with one() as uow:  # a revoked token cannot be used; its family revokes once
        assert not await uow.refresh_tokens.use(drop.id, NOW)
        assert await uow.refresh_tokens.revoke_family("f1", NOW) == 0
        assert await uow.refresh_tokens.revoke_family("keep", NOW) == 1


# --- the login throttle -----------------------------------------------------------------
# Counts are observed through the locks they set: with 2 free failures, the 3rd locks for
# 2 s, the 4th for 4 s, the 5th for 8 s.


async def admit(
    units: Units,
    at: datetime,
    key: str = "account:a",
    policy: ThrottlePolicy = POLICY,
) -> datetime | None:
    async with units() as uow:
        locked = await uow.throttle.admit(key, policy, at)
        await uow.commit()
    return locked


async def throttle(units: Units, action: str, key: str = "account:a") -> None:
    async with units() as uow:
        await getattr(uow.throttle, action)(key)
        await uow.commit()


def after(seconds: float, start: datetime = NOW) -> datetime:
    return start + timedelta(seconds=seconds)


async def test_the_throttle_counts_locks_refuses_forgives_and_clears(
    processes: Processes,
) -> None:
    one = processes.one
    assert [await admit(one, NOW) for _ in range(3)] == [None, None, None]  # 3rd: lock 2 s
    assert await admit(one, after(1)) == after(2)  # refused: counts nothing
    assert await admit(one, after(2)) is None  # the 4th: lock 4 s (not 8 s)
    assert await admit(one, after(3)) == after(6)
    await throttle(one, "forgive")  # back to 3
    assert await admit(one, after(6)) is None  # the 4th again: 4 s
    assert await admit(one, after(7)) == after(10)
    await throttle(one, "clear")
    assert [await admit(one, after(7)) for _ in range(3)] == [None, None, None]
    assert await admit(one, after(7)) == after(9)


async def test_the_throttle_restarts_after_a_quiet_window_and_purges(
    processes: Processes,
) -> None:
    one = processes.one
    for _ in range(3):
        await admit(one, NOW)
    later = NOW + timedelta(minutes=15, seconds=3)  # locked until NOW + 2 s, then quiet
    assert [await admit(one, later) for _ in range(3)] == [None, None, None]
    assert await admit(one, later) == after(2, later)  # counted from 1 again: 3rd locks 2 s
    await admit(one, NOW, key="address:b")
    async with one() as uow:
        assert await uow.throttle.purge_quiet(after(1)) == 1
        await uow.commit()
    async with one() as uow:  # account:a stays, locked
        assert await uow.throttle.admit("account:a", POLICY, after(1, later)) == after(2, later)


async def test_concurrent_admits_from_two_processes_lose_no_count(processes: Processes) -> None:
    # 19 free: the 20th failure, and only it, locks. Had a count been lost, nothing would.
    wide = ThrottlePolicy(19, timedelta(minutes=15), timedelta(minutes=15))
    racing = (admit(units, NOW, policy=wide) for _ in range(10) for units in both(processes))
    assert await asyncio.gather(*racing) == [None] * 20
    assert await admit(processes.one, NOW, policy=wide) == after(2)


# --- the cart ---------------------------------------------------------------------------

ADA = "11111111-1111-4111-8111-111111111111"


async def with_owner(processes: Processes) -> str:
    owner = await add_user(processes.one, replace(user(), id=ADA))
    return owner.id


async def add(units: Units, line: CartLine, limit: int = 100) -> int | None:
    async with units() as uow:
        quantity = await uow.cart.add(line, limit=limit)
        await uow.commit()
    return quantity


async def test_cart_lines_round_trip_oldest_first(processes: Processes) -> None:
    owner = await with_owner(processes)
    bob = (await add_user(processes.one, user("bob@shop.test"))).id
    lines = [
        CartLine(owner, "rug", 2, after(5)),
        CartLine(owner, "lamp", 1, after(1)),
        CartLine(owner, "b-cup", 1, after(5)),
        CartLine(bob, "rug", 9, after(0)),
    ]
    for line in lines:
        assert await add(processes.one, line) == line.quantity
    async with processes.two(readonly=True) as uow:
        assert await uow.cart.lines(owner) == [lines[1], lines[2], lines[0]]
        assert await uow.cart.get(owner, "rug") == lines[0]
        assert await uow.cart.get(owner, "ghost") is None
        assert await uow.cart.count(owner) == 3
        assert await uow.cart.lines("nobody") == []


async def test_the_add_is_conditional_on_the_limit(processes: Processes) -> None:
    owner = await with_owner(processes)
    first = CartLine(owner, "lamp", 3, NOW)
    assert await add(processes.one, first, limit=5) == 3
    assert await add(processes.one, CartLine(owner, "lamp", 2, after(9)), limit=5) == 5
    assert await add(processes.one, CartLine(owner, "lamp", 1, after(9)), limit=5) is None
    assert await add(processes.one, CartLine(owner, "rug", 6, NOW), limit=5) is None
    async with processes.one(readonly=True) as uow:
        assert await uow.cart.lines(owner) == [replace(first, quantity=5)]  # added_at kept


async def test_set_remove_and_clear(processes: Processes) -> None:
    owner = await with_owner(processes)
    for product in ("lamp", "rug", "cup"):
        await add(processes.one, CartLine(owner, product, 1, NOW))
    async with processes.one() as uow:
        assert await uow.cart.set_quantity(owner, "lamp", 7)
        assert not await uow.cart.set_quantity(owner, "ghost", 7)
        assert await uow.cart.remove(owner, "rug")
        assert not await uow.cart.remove(owner, "rug")
        await uow.commit()
    async with processes.one() as uow:
        assert [(line.product_id, line.quantity) for line in await uow.cart.lines(owner)] == [
            ("cup", 1),
            ("lamp", 7),
        ]
        assert await uow.cart.clear(owner) == 2
        await uow.commit()
    async with processes.one(readonly=True) as uow:
        assert await uow.cart.count(owner) == 0


async def write_everything_then_fail(units: Units, owner: str) -> None:
    async with units() as uow:
        await uow.users.add(user("new@shop.test"))
        await uow.cart.add(CartLine(owner, "lamp", 2, NOW), limit=100)
        await uow.cart.add(CartLine(owner, "rug", 1, NOW), limit=100)
        await uow.throttle.admit("account:x", POLICY, NOW)
        raise RuntimeError("the use case failed")


async def test_nothing_is_kept_unless_committed(processes: Processes) -> None:
    owner = await with_owner(processes)
    await add(processes.one, CartLine(owner, "lamp", 1, NOW))
    with pytest.raises(RuntimeError):
        await write_everything_then_fail(processes.one, owner)
    async with processes.two(readonly=True) as uow:
        assert await uow.users.get_by_email("new@shop.test") is None
        assert await uow.cart.lines(owner) == [CartLine(owner, "lamp", 1, NOW)]
    assert [await admit(processes.two, NOW, "account:x") for _ in range(3)] == [None] * 3
    assert await admit(processes.two, NOW, "account:x") == after(2)  # the failed one is gone


async def test_racing_adds_from_two_processes_all_count(processes: Processes) -> None:
    owner = await with_owner(processes)

    async def add_held(units: Units) -> int | None:
        async with units() as uow:
            quantity = await uow.cart.add(CartLine(owner, "rug", 1, NOW), limit=100)
            await asyncio.sleep(0.005)  # hold the transaction while others try
            await uow.commit()
        return quantity

    answers = await asyncio.gather(
        *(add_held(units) for _ in range(5) for units in both(processes))
    )
    assert sorted(q for q in answers if q is not None) == list(range(1, 11))
    async with processes.one(readonly=True) as uow:
        line = await uow.cart.get(owner, "rug")
    assert line is not None
    assert line.quantity == 10


def contexts(processes: Processes, catalog: FakeCatalog) -> list[AuthDeps]:
    return [make_context(units=units, catalog=catalog) for units in (processes.one, processes.two)]


async def test_racing_customers_adds_through_the_use_case_all_count(
    processes: Processes,
) -> None:
    owner = await with_owner(processes)
    catalog = FakeCatalog()
    catalog.add("rug", stock=1000)
    adds = (
        cart.add_item(deps, user_id=owner, product_id="rug", quantity=3)
        for _ in range(4)
        for deps in contexts(processes, catalog)
    )
    await asyncio.gather(*adds)
    view = await cart.view_cart(contexts(processes, catalog)[0], user_id=owner)
    assert view.total_items == 24


async def test_racing_new_lines_never_pass_the_line_cap(processes: Processes) -> None:
    owner = await with_owner(processes)
    catalog = FakeCatalog()
    for n in range(MAX_CART_LINES + 3):
        catalog.add(f"p{n:02d}")
    for n in range(MAX_CART_LINES - 1):
        await add(processes.one, CartLine(owner, f"p{n:02d}", 1, NOW))
    last = [f"p{n:02d}" for n in range(MAX_CART_LINES - 1, MAX_CART_LINES + 3)]
    one, two = contexts(processes, catalog)
    answers = await asyncio.gather(
        *(
            cart.add_item(deps, user_id=owner, product_id=pid, quantity=1)
            for deps, pid in zip([one, two] * 2, last, strict=True)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(a, CartFull) for a in answers) == 3, answers
    async with processes.one(readonly=True) as uow:
        assert await uow.cart.count(owner) == MAX_CART_LINES
