"""The time use cases stamp what they store with."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, in UTC, to the millisecond: the precision every back end keeps (a BSON date holds
    milliseconds). What a use case answers right after a write then equals what any later
    read answers, and what a follower copies from a feed equals what the owner serves."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
