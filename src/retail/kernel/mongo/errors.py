"""Driver errors as the kernel's (unavailable -> 503, duplicate key -> the caller's
conflict), and stored timestamps as aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)

from retail.kernel.errors import ServiceUnavailable
from retail.kernel.mongo.client import logger

# Server errors that are the storage's state, not the request's: out of disk space, no
# writable primary (an election), shutting down, a lock not granted in time.
_UNAVAILABLE_CODES = frozenset({14031, 10107, 13435, 11600, 11602, 91, 189, 24, 46})


def is_unavailable(exc: BaseException) -> bool:
    """'Try again shortly': the server unreachable or slow, out of space or without a
    primary, or a transaction lost a conflict."""
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WTimeoutError):
        return True
    if isinstance(exc, OperationFailure) and exc.code in _UNAVAILABLE_CODES:
        return True
    return isinstance(exc, PyMongoError) and (
        exc.timeout
        or exc.has_error_label("TransientTransactionError")
        or exc.has_error_label("RetryableWriteError")
    )


@contextmanager
def unavailable_as_503() -> Iterator[None]:
    try:
        yield
    except PyMongoError as exc:
        if not is_unavailable(exc):
            raise
        logger.warning("MongoDB unavailable: %s", exc)
        raise ServiceUnavailable("The database is unavailable; try again shortly") from exc


@contextmanager
def duplicate_key_as(conflict: Callable[[], Exception]) -> Iterator[None]:
    """A duplicate key becomes the caller's own conflict (e.g. `ReservationExists`)."""
    try:
        yield
    except DuplicateKeyError:
        raise conflict() from None


def as_utc(value: datetime | str) -> datetime:
    """A stored timestamp as an aware UTC datetime. (nx-27017 hands back a datetime written
    by `$set` as a naive ISO string; MongoDB itself always returns a date.)"""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
