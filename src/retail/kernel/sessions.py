"""Sessions that end everywhere: every service keeps, in memory, what auth's feed says was
revoked, and `TokenCodec` refuses a token it names (docs/architecture.md, "Revocation").

Auth publishes two events on its feed (`GET /internal/events`):
- `session.revoked` `{sid, user_id}`: a refresh-token family ended (logout, refresh-token
  reuse, a password change signing out the other sessions, a deactivation). Access tokens
  carrying that `sid` are refused.
- `user.changed` `{user_id, ver, role, is_active}`: the user's role or standing changed and
  their token version went up to `ver`. Access tokens of that user whose `ver` claim is
  lower are refused.

An entry is needed only while a token it refuses could still be valid: an access token
lives `ACCESS_TOKEN_EXPIRE_MINUTES` and was issued before the event, so each entry is
forgotten that long (plus a margin for clock skew) after the event occurred. The set is
therefore as small as the revocations of the last half hour, is rebuilt from the feed at
start, and is checked with two dictionary lookups per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI

from retail.kernel.events import Event, EventFeed, EventReader, VersionSource, read_or_wait
from retail.kernel.following import FeedFollower, FeedSource, following
from retail.kernel.http import Transports, peer_client
from retail.kernel.security import Principal, TokenCodec
from retail.kernel.settings import Settings

logger = logging.getLogger("retail.sessions")

SESSION_REVOKED = "session.revoked"
USER_CHANGED = "user.changed"
FEED_NAME = "auth sessions"
# Auth's clock stamps the events and ours expires the tokens: entries are kept this much
# longer than a token lives, so a skew below it never lets a stale token through.
CLOCK_MARGIN_SECONDS = 60.0
# How long a start waits for the first catch-up before serving anyway (auth may be down or
# still starting: fail open, see docs/architecture.md).
FIRST_SYNC_SECONDS = 2.0
# After a failed read the follower retries at most this far apart, so a revocation made
# just after auth comes back still arrives within the 2 s bound.
MAX_RETRY_SECONDS = 1.0

_Kind = Literal["sid", "user"]


class Revocations:
    """Revoked sessions and users' lowest valid token versions, each until no token it
    could refuse is still valid. Also the follower's `FeedTarget`: the cursor is in memory,
    so a start reads the feed from the beginning (auth keeps only recent events)."""

    def __init__(self, hold_seconds: float, *, clock: Callable[[], float] = time.time) -> None:
        self._hold = hold_seconds
        self._clock = clock
        self._sessions: dict[str, float] = {}  # sid -> forget at
        self._versions: dict[str, tuple[int, float]] = {}  # user id -> (version, forget at)
        self._expiries: deque[tuple[float, _Kind, str]] = deque()
        self.cursor = 0

    @classmethod
    def for_tokens(cls, tokens: TokenCodec) -> Revocations:
        return cls(tokens.access_ttl_seconds + CLOCK_MARGIN_SECONDS)

    def refuses(self, principal: Principal) -> bool:
        """Whether the token's session was revoked or its user changed since it was issued.
        An entry past its time refuses only tokens that have expired anyway."""
        sid = principal.session_id
        if sid is not None and sid in self._sessions:
            return True
        known = self._versions.get(principal.user_id)
        return known is not None and principal.version < known[0]

    def __len__(self) -> int:
        return len(self._sessions) + len(self._versions)

    # --- FeedTarget ---------------------------------------------------------------------

    async def load_cursor(self) -> int:
        return self.cursor

    async def apply(self, events: Sequence[Event]) -> None:
        self.apply_now(events)

    def apply_now(self, events: Sequence[Event]) -> None:
        now = self._clock()
        for event in events:
            if event.seq <= self.cursor:
                continue
            self.cursor = event.seq
            forget_at = event.occurred_at.timestamp() + self._hold
            if forget_at > now:
                self._record(event, forget_at)
        self._forget_expired(now)

    def _record(self, event: Event, forget_at: float) -> None:
        data = event.data
        if event.type == SESSION_REVOKED and isinstance(data.get("sid"), str):
            sid = data["sid"]
            self._sessions[sid] = max(self._sessions.get(sid, 0.0), forget_at)
            self._expiries.append((forget_at, "sid", sid))
        elif event.type == USER_CHANGED and isinstance(data.get("user_id"), str):
            user_id, version = data["user_id"], int(data.get("ver", 0))
            before = self._versions.get(user_id, (0, 0.0))
            self._versions[user_id] = (max(before[0], version), max(before[1], forget_at))
            self._expiries.append((forget_at, "user", user_id))

    def _forget_expired(self, now: float) -> None:
        """Events arrive in order, so the queue is (nearly) sorted by expiry: pop from the
        left while due. An entry extended by a later event stays until its own time."""
        while self._expiries and self._expiries[0][0] <= now:
            _, kind, key = self._expiries.popleft()
            if kind == "sid":
                if self._sessions.get(key, now + 1) <= now:
                    del self._sessions[key]
            elif self._versions.get(key, (0, now + 1))[1] <= now:
                del self._versions[key]


class LocalFeed:
    """A `FeedSource` over this process's own outbox: how auth follows its own feed, with
    the same long polling, so its other processes' revocations reach it too."""

    def __init__(self, read: EventReader, version: VersionSource | None = None) -> None:
        self._read = read
        self._version = version

    async def read_events(self, after: int, limit: int, *, wait: float = 0) -> EventFeed:
        events = await read_or_wait(self._read, after, limit, wait, version=self._version)
        return EventFeed(events=events, last_seq=events[-1].seq if events else after)


@asynccontextmanager
async def revocations_followed(
    app: FastAPI,
    settings: Settings,
    transports: Transports | None = None,
    *,
    source: FeedSource | None = None,
) -> AsyncIterator[Revocations]:
    """For the life of an app (inside its lifespan): the token codec refuses what auth's
    feed revoked. `source` is auth's own outbox (`LocalFeed`); other services read auth's
    feed over HTTP. Peers wired in process (`transports`) without auth: nothing to follow."""
    tokens: TokenCodec = app.state.tokens
    revocations = Revocations.for_tokens(tokens)
    tokens.revocations = revocations
    app.state.revocations = revocations
    unwired = source is None and transports is not None and "auth" not in transports
    if not settings.follow_revocations or unwired:
        yield revocations
        return
    client = None
    if source is None:
        client = peer_client(settings, "auth", tokens, transports)
        source = client
    # No linger: a revocation is refused everywhere as soon as it is heard, and they are
    # rare enough that batching them saves nothing.
    follower = FeedFollower(FEED_NAME, source, revocations, max_backoff=MAX_RETRY_SECONDS, linger=0)
    try:
        await _first_sync(follower)
        async with following(follower):
            yield revocations
    finally:
        if client is not None:
            await client.aclose()


async def _first_sync(follower: FeedFollower) -> None:
    """Catch up before serving, briefly; if auth cannot answer now, serve anyway and let
    the follower catch up in the background (fail open)."""
    try:
        await asyncio.wait_for(follower.catch_up(), FIRST_SYNC_SECONDS)
    except Exception as exc:  # auth down or starting: logged, not fatal
        logger.info("revocations: auth's feed not read at start (%r); following it", exc)
