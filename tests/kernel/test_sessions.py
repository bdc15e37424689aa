"""The revocation set every service keeps from auth's feed (kernel/sessions.py): what it
refuses, how long it remembers, its cursor, and the token codec consulting it after its
cache of verified tokens; and following a feed into it, in process."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from retail.kernel.events import Event, InMemoryEventLog, notify_outbox_commit
from retail.kernel.security import Principal, SessionRevoked, TokenCodec
from retail.kernel.sessions import (
    CLOCK_MARGIN_SECONDS,
    SESSION_REVOKED,
    USER_CHANGED,
    LocalFeed,
    Revocations,
    revocations_followed,
)
from retail.kernel.settings import Settings

SECRET = "s" * 64
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOLD = 1800.0


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


def event(seq: int, kind: str, at: datetime = T0, **data: Any) -> Event:
    return Event(
        seq=seq, type=kind, key=str(data.get("sid", data.get("user_id"))), data=data, occurred_at=at
    )


def revoked(seq: int, sid: str, at: datetime = T0) -> Event:
    return event(seq, SESSION_REVOKED, at, sid=sid, user_id="u1")


def changed(seq: int, user_id: str, ver: int, at: datetime = T0) -> Event:
    return event(seq, USER_CHANGED, at, user_id=user_id, ver=ver, role="customer", is_active=True)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def revocations(clock: Clock) -> Revocations:
    return Revocations(HOLD, clock=clock)


def test_a_revoked_session_is_refused_and_others_are_not(revocations: Revocations) -> None:
    revocations.apply_now([revoked(1, "fam-1")])
    assert revocations.refuses(Principal("u1", "customer", "fam-1"))
    assert not revocations.refuses(Principal("u1", "customer", "fam-2"))
    assert not revocations.refuses(Principal("u1", "customer", None))


def test_tokens_older_than_the_users_version_are_refused(revocations: Revocations) -> None:
    revocations.apply_now([changed(1, "u1", 2), changed(2, "u1", 1)])  # versions only rise
    assert revocations.refuses(Principal("u1", "admin", "fam", version=0))
    assert revocations.refuses(Principal("u1", "admin", "fam", version=1))
    assert not revocations.refuses(Principal("u1", "customer", "fam", version=2))
    assert not revocations.refuses(Principal("u2", "admin", "fam", version=0))


def test_entries_are_forgotten_once_no_token_they_refuse_is_valid(
    revocations: Revocations, clock: Clock
) -> None:
    revocations.apply_now([revoked(1, "old"), changed(2, "u9", 1)])
    clock.now += HOLD - 1
    revocations.apply_now([revoked(3, "new", T0 + timedelta(seconds=HOLD - 1))])
    assert len(revocations) == 3
    clock.now += 2  # past the first two entries' time, not the third's
    revocations.apply_now([])
    assert len(revocations) == 1
    assert revocations.refuses(Principal("u1", "customer", "new"))
    assert not revocations.refuses(Principal("u9", "customer", None, version=0))


def test_a_later_event_keeps_a_user_entry_for_its_own_time(
    revocations: Revocations, clock: Clock
) -> None:
    revocations.apply_now([changed(1, "u1", 1)])
    clock.now += 600
    revocations.apply_now([changed(2, "u1", 2, T0 + timedelta(seconds=600))])
    clock.now += HOLD - 300  # the first event's time is up, the second's is not
    revocations.apply_now([])
    assert revocations.refuses(Principal("u1", "customer", None, version=1))


def test_rebuilding_skips_events_too_old_to_matter_and_moves_the_cursor(
    revocations: Revocations, clock: Clock
) -> None:
    long_ago = T0 - timedelta(seconds=HOLD + 1)
    revocations.apply_now([revoked(1, "ancient", long_ago), revoked(2, "recent")])
    assert revocations.cursor == 2
    assert len(revocations) == 1
    assert not revocations.refuses(Principal("u1", "customer", "ancient"))
    revocations.apply_now([revoked(2, "replayed"), revoked(1, "replayed")])  # seen: skipped
    assert not revocations.refuses(Principal("u1", "customer", "replayed"))


def test_unknown_and_malformed_events_change_nothing(revocations: Revocations) -> None:
    revocations.apply_now([event(1, "user.created", user_id="u1"), event(2, SESSION_REVOKED)])
    assert len(revocations) == 0
    assert revocations.cursor == 2


def test_the_codec_refuses_a_remembered_token_once_revoked() -> None:
    codec = TokenCodec(SECRET, access_ttl_seconds=60)
    codec.revocations = revocations = Revocations.for_tokens(codec)
    token = codec.issue_access("u1", "admin", "fam-1", version=3)
    assert codec.verify_access(token) == Principal("u1", "admin", "fam-1", 3)  # now cached
    revocations.apply_now([revoked(1, "fam-1", datetime.now(UTC))])
    with pytest.raises(SessionRevoked) as refused:
        codec.verify_access(token)
    assert (refused.value.status_code, refused.value.error_code) == (401, "SESSION_REVOKED")
    assert revocations._hold == 60 + CLOCK_MARGIN_SECONDS


def test_the_codec_refuses_a_token_of_a_changed_user() -> None:
    codec = TokenCodec(SECRET, access_ttl_seconds=60)
    codec.revocations = revocations = Revocations.for_tokens(codec)
    before, after = (codec.issue_access("u1", "admin", "f", version=v) for v in (0, 1))
    revocations.apply_now([changed(1, "u1", 1, datetime.now(UTC))])
    with pytest.raises(SessionRevoked):
        codec.verify_access(before)
    assert codec.verify_access(after).version == 1


class QuietSettings(Settings):
    service_name = "tests"


async def test_a_service_follows_the_feed_into_its_codec() -> None:
    """Through `revocations_followed` with a feed in process: the state at start is caught
    up before serving, and a later event reaches the codec while the app runs."""
    log = InMemoryEventLog()
    await log.append(SESSION_REVOKED, "fam-0", {"sid": "fam-0", "user_id": "u1"})
    app = FastAPI()
    app.state.tokens = codec = TokenCodec(SECRET, access_ttl_seconds=60)
    settings = QuietSettings(_env_file=None, jwt_secret_key=SECRET)
    early, late = (codec.issue_access("u1", "customer", f"fam-{n}") for n in (0, 1))
    async with revocations_followed(app, settings, source=LocalFeed(log.read_after)) as found:
        with pytest.raises(SessionRevoked):
            codec.verify_access(early)
        assert codec.verify_access(late).session_id == "fam-1"
        await log.append(SESSION_REVOKED, "fam-1", {"sid": "fam-1", "user_id": "u1"})
        notify_outbox_commit()  # as a commit that wrote events does: the held read answers
        for _ in range(1000):  # bounds a broken run only
            if found.cursor == 2:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(SessionRevoked):
            codec.verify_access(late)
    assert app.state.revocations is found


async def test_peers_wired_without_auth_follow_nothing() -> None:
    app = FastAPI()
    app.state.tokens = codec = TokenCodec(SECRET)
    settings = QuietSettings(_env_file=None, jwt_secret_key=SECRET)
    async with revocations_followed(app, settings, transports={}) as found:
        assert codec.revocations is found
        assert found.cursor == 0
