"""Idempotency-Key: a retried request gets the first answer instead of a second order.

The guard is the (user_id, key) row that `saga.open_order` inserts in the same transaction
as the pending order, so two concurrent requests with one key store one order, and the
answer is stored by the transaction that settles the order (`saga.confirm`, `saga.fail`).
This module finds a stored answer and, while the first request is still running, waits
for it briefly. It is the saga's lowest step: it imports no other use-case module.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from retail.orders.domain import Order, Outcome
from retail.orders.exceptions import (
    IdempotencyKeyReused,
    IdempotentRequestInProgress,
    ReplayedFailure,
)
from retail.orders.ports import OrdersDeps

# A first request usually finishes within a few milliseconds of local work and two peer
# calls; polling this often answers its repeat soon after without loading the database.
POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """A request's claim on its Idempotency-Key: who, which key, and what was asked."""

    user_id: str
    key: str
    request_hash: str


def claim_for(
    user_id: str, key: str | None, operation: str, payload: Mapping[str, Any]
) -> KeyClaim | None:
    if key is None:
        return None
    return KeyClaim(user_id, key, request_hash(operation, payload))


def request_hash(operation: str, payload: Mapping[str, Any]) -> str:
    """The request in canonical JSON (key order and spacing do not matter), hashed. The
    operation is part of it, so one key cannot serve both a new order and a reorder."""
    canonical = json.dumps(
        {"operation": operation, "request": payload},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def replay(deps: OrdersDeps, claim: KeyClaim) -> Order | None:
    """The first answer to this key (an order, or the refusal raised again); None if the key
    is new or expired. Raises if it was used for another request, or is still in flight
    after the policy's wait."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deps.policy.idempotency_wait_seconds
    while True:
        async with deps.units(readonly=True) as uow:
            record = await uow.idempotency.get(claim.user_id, claim.key)
        if record is None or record.expired(deps.clock(), deps.policy.idempotency_ttl):
            return None
        if record.request_hash != claim.request_hash:
            raise IdempotencyKeyReused()
        if record.outcome is not None:
            return answer(record.outcome)
        if loop.time() >= deadline:
            raise IdempotentRequestInProgress(details={"order_id": record.order_id})
        await asyncio.sleep(POLL_SECONDS)


def answer(outcome: Outcome) -> Order:
    if isinstance(outcome, Order):
        return outcome
    raise ReplayedFailure(outcome)
