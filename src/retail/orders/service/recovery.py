"""Recovery: finish or roll back what a crash or an outage left behind.

Every orders process runs `keep_recovering` from start-up on, one pass right away and then
one every few seconds. A pass claims, with a conditional write per order (its
`recovery_lease_until`), pending orders whose lease ran out (the placing request died, or
has been gone longer than the grace period) and failed or cancelled orders whose stock is
still to be released, so several processes never work on one order at once.

For a pending order it calls reserve again, which inventory answers idempotently: held ->
confirmed; refused -> failed, and released to be safe; inventory down -> the lease runs out
and a later pass tries again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from retail.kernel.errors import AppError
from retail.kernel.following import raise_if_cancelled
from retail.orders.domain import Order
from retail.orders.ports import OrdersDeps
from retail.orders.service import saga

logger = logging.getLogger("retail.orders.recovery")


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    confirmed: int = 0
    failed: int = 0
    deferred: int = 0
    released: int = 0
    purged_keys: int = 0


async def recover(deps: OrdersDeps, *, batch: int) -> RecoveryReport:
    """One pass: claim up to `batch` orders of each kind, settle them, purge old keys."""
    now = deps.clock()
    until = now + deps.policy.pending_grace
    async with deps.units() as uow:
        pending = await uow.orders.claim_pending(now, until, batch)
        releases = await uow.orders.claim_releases(now, until, batch)
        purged = await uow.idempotency.purge(now - deps.policy.idempotency_ttl, batch)
        await uow.commit()
    counts = {"confirmed": 0, "failed": 0, "deferred": 0}
    for order in pending:
        counts[await _settle(deps, order)] += 1
    released = 0
    for order in releases:
        released += await saga.release_stock(deps, order)
    return RecoveryReport(**counts, released=released, purged_keys=purged)


async def _settle(deps: OrdersDeps, order: Order) -> str:
    try:
        settled = await saga.finish_pending(deps, order)
    except AppError as exc:
        if exc.status_code >= 500:
            logger.warning("order %s stays pending: %s", order.id, exc.message)
            return "deferred"
        logger.info("pending order %s failed on recovery: %s", order.id, exc.error_code)
        return "failed"
    logger.info("pending order %s recovered as %s", order.id, settled.status)
    return "confirmed"


async def keep_recovering(deps: OrdersDeps, *, interval_seconds: float, batch: int) -> None:
    """Run passes for the life of the process; a failing pass is logged, not fatal."""
    while True:
        try:
            report = await recover(deps, batch=batch)
            if report != RecoveryReport():
                logger.info("recovery pass", extra={"report": report})
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("recovery pass failed; retrying")
        raise_if_cancelled()
        await asyncio.sleep(interval_seconds)
