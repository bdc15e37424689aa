"""SQL adapter: the repositories (domain objects in and out) and the unit of work; the
tables are in `tables.py`.

Status changes and recovery claims are single conditional UPDATEs decided by rows affected.
Driver errors become the domain's signals: a duplicate order number `OrderNumberTaken`, a
duplicate (user_id, key) `IdempotencyKeyTaken`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    desc,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from retail.kernel.db import SqlSession, SqlUnitOfWork, is_unique_violation, rows_affected
from retail.kernel.prepared import Prepared
from retail.orders.adapters.records import outcome_from_json, outcome_to_json
from retail.orders.adapters.tables import (
    idempotency_keys,
    line_rows,
    order_counts,
    order_lines,
    order_of,
    orders,
    skipped_rows,
)
from retail.orders.domain import (
    IdempotencyRecord,
    Order,
    OrderQuery,
    OrderStatus,
    Outcome,
    Page,
)
from retail.orders.exceptions import IdempotencyKeyTaken, OrderNumberTaken


def _page_condition(shape: _PageShape, table: Table = orders) -> ColumnElement[bool]:
    """The page's filter on `orders`, or on `order_counts` (which has the same two columns)."""
    conditions: list[ColumnElement[bool]] = [true()]
    if shape.by_user:
        conditions.append(table.c.user_id == bindparam("p_user"))
    if shape.by_status:
        conditions.append(table.c.status == bindparam("p_status"))
    elif shape.hide_failed:
        conditions.append(table.c.status != "failed")
    return and_(*conditions)


class _PageShape(NamedTuple):
    """Which filters a page query has; its values travel as parameters."""

    by_user: bool
    by_status: bool
    hide_failed: bool


class _PageStatements(NamedTuple):
    total: Prepared
    rows: Prepared
    lines: Prepared


@functools.cache
def _page_statements(shape: _PageShape) -> _PageStatements:
    """A page's three statements, built once per shape (six at most): the total, the orders
    (newest first, ties by id) and their lines, selected by the same page as a subquery so
    that no IN list is built per call. A customer's total is summed from `order_counts` (at
    most seven rows) instead of counting the customer's orders."""
    condition = _page_condition(shape)
    page = (
        select(orders)
        .where(condition)
        .order_by(desc(orders.c.created_at), desc(orders.c.id))
        .limit(bindparam("p_limit"))
        .offset(bindparam("p_offset"))
    )
    ids = page.with_only_columns(orders.c.id).scalar_subquery()
    lines = (
        select(order_lines)
        .where(order_lines.c.order_id.in_(ids))
        .order_by(order_lines.c.order_id, order_lines.c.position)
    )
    if shape.by_user:
        counted = _page_condition(shape, order_counts)
        count = select(func.coalesce(func.sum(order_counts.c.n), 0)).where(counted)
    else:
        count = select(func.count()).select_from(orders).where(condition)
    return _PageStatements(Prepared(count), Prepared(page), Prepared(lines))


def _page_params(query: OrderQuery, offset: int, limit: int) -> tuple[_PageShape, dict[str, Any]]:
    shape = _PageShape(query.user_id is not None, query.status is not None, query.hide_failed)
    params: dict[str, Any] = {"p_limit": limit, "p_offset": offset}
    if query.user_id is not None:
        params["p_user"] = query.user_id
    if query.status is not None:
        params["p_status"] = query.status
    return shape, params


# The order path's statements, built once (`Prepared`: see retail.kernel.prepared).
_ADD_ORDER = Prepared(insert(orders))
_ADD_LINES = Prepared(insert(order_lines))
_ADD_KEY = Prepared(insert(idempotency_keys))
_KEY = Prepared(
    select(idempotency_keys).where(
        idempotency_keys.c.user_id == bindparam("p_user"),
        idempotency_keys.c.key == bindparam("p_key"),
    )
)
# The SET columns are the other parameters' names (status, updated_at, release_due, ...).
_ORDER = Prepared(select(orders).where(orders.c.id == bindparam("p_id")))
_ORDER_LINES = Prepared(
    select(order_lines)
    .where(order_lines.c.order_id == bindparam("p_id"))
    .order_by(order_lines.c.position)
)
_TRANSITION = Prepared(
    update(orders).where(
        orders.c.id == bindparam("p_id"), orders.c.status == bindparam("p_expected")
    )
)


class SqlOrderRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, order: Order) -> None:
        values = {
            "id": order.id,
            "order_number": order.order_number,
            "user_id": order.user_id,
            "status": order.status,
            "shipping_address": order.shipping_address,
            "skipped_items": skipped_rows(order),
            "reservation_id": order.reservation_id,
            "release_due": order.release_due,
            "recovery_lease_until": order.recovery_lease_until,
            "created_at": order.created_at,
            "updated_at": order.updated_at,
        }
        try:
            # Parameters apart from the statement: its cache key is then computed from
            # the columns only, not from every value.
            await self._session.execute(_ADD_ORDER, values)
        except IntegrityError as exc:
            if is_unique_violation(exc) and "order_number" in str(exc.orig):
                raise OrderNumberTaken() from None
            raise
        await self._session.execute(_ADD_LINES, line_rows(order))

    async def get(self, order_id: str) -> Order | None:
        params = {"p_id": order_id}
        row = (await self._session.execute(_ORDER, params)).mappings().first()
        if row is None:
            return None
        lines = (await self._session.execute(_ORDER_LINES, params)).mappings().all()
        return order_of(row, lines)

    async def page(self, query: OrderQuery, *, offset: int, limit: int) -> Page[Order]:
        shape, params = _page_params(query, offset, limit)
        statements = _page_statements(shape)
        total = await self._session.scalar(statements.total, params)
        rows = (await self._session.execute(statements.rows, params)).mappings().all()
        if not rows:
            return Page([], int(total or 0))
        found = await self._session.execute(statements.lines, params)
        return Page(_with_lines(rows, found.mappings()), int(total or 0))

    async def transition(
        self,
        order_id: str,
        expected: OrderStatus,
        new: OrderStatus,
        now: datetime,
        *,
        release_due: bool = False,
        lease_until: datetime | None = None,
    ) -> bool:
        values: dict[str, Any] = {"status": new, "updated_at": now}
        if release_due:
            values["release_due"] = True
        if lease_until is not None:
            values["recovery_lease_until"] = lease_until
        params = {**values, "p_id": order_id, "p_expected": expected}
        result = await self._session.execute(_TRANSITION, params)
        return rows_affected(result) == 1

    async def replace_lines(self, order: Order) -> bool:
        result = await self._session.execute(
            update(orders)
            .where(orders.c.id == order.id, orders.c.status == "pending")
            .values(
                skipped_items=skipped_rows(order),
                reservation_id=order.reservation_id,
                updated_at=order.updated_at,
            )
        )
        if rows_affected(result) != 1:
            return False
        await self._session.execute(delete(order_lines).where(order_lines.c.order_id == order.id))
        await self._session.execute(_ADD_LINES, line_rows(order))
        return True

    async def claim_pending(self, now: datetime, until: datetime, limit: int) -> list[Order]:
        return await self._claim(orders.c.status == "pending", now, until, limit)

    async def claim_releases(self, now: datetime, until: datetime, limit: int) -> list[Order]:
        return await self._claim(orders.c.release_due == true(), now, until, limit)

    async def release_done(self, order_id: str, now: datetime) -> None:
        await self._session.execute(
            update(orders).where(orders.c.id == order_id).values(release_due=False)
        )

    async def _claim(
        self, due: ColumnElement[bool], now: datetime, until: datetime, limit: int
    ) -> list[Order]:
        expired = and_(due, orders.c.recovery_lease_until <= now)
        candidates = await self._session.scalars(
            select(orders.c.id).where(expired).order_by(orders.c.recovery_lease_until).limit(limit)
        )
        claimed: list[str] = []
        for order_id in candidates.all():
            # Conditional on the lease still being expired: another process may have just
            # claimed it (on PostgreSQL; SQLite's writer lock already serialises this).
            result = await self._session.execute(
                update(orders)
                .where(orders.c.id == order_id, expired)
                .values(recovery_lease_until=until)
            )
            if rows_affected(result) == 1:
                claimed.append(order_id)
        return await self._load(orders.c.id.in_(claimed)) if claimed else []

    async def _load(self, condition: ColumnElement[bool]) -> list[Order]:
        rows = (await self._session.execute(select(orders).where(condition))).mappings().all()
        if not rows:
            return []
        found_lines = await self._session.execute(
            select(order_lines)
            .where(order_lines.c.order_id.in_([row["id"] for row in rows]))
            .order_by(order_lines.c.order_id, order_lines.c.position)
        )
        return _with_lines(rows, found_lines.mappings())


def _with_lines(rows: Sequence[RowMapping], found_lines: Iterable[RowMapping]) -> list[Order]:
    """Orders from their rows and their lines (grouped by order, in position order)."""
    lines: dict[str, list[RowMapping]] = {row["id"]: [] for row in rows}
    for line in found_lines:
        lines[line["order_id"]].append(line)
    return [order_of(row, lines[row["id"]]) for row in rows]


class SqlIdempotencyRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def get(self, user_id: str, key: str) -> IdempotencyRecord | None:
        result = await self._session.execute(_KEY, {"p_user": user_id, "p_key": key})
        row = result.mappings().first()
        if row is None:
            return None
        outcome = row["outcome"]
        return IdempotencyRecord(
            user_id=row["user_id"],
            key=row["key"],
            request_hash=row["request_hash"],
            order_id=row["order_id"],
            created_at=row["created_at"],
            outcome=None if outcome is None else outcome_from_json(outcome),
        )

    async def add(self, record: IdempotencyRecord) -> None:
        values = {
            "user_id": record.user_id,
            "key": record.key,
            "request_hash": record.request_hash,
            "order_id": record.order_id,
            "outcome": None,
            "created_at": record.created_at,
        }
        try:
            # No savepoint: the use case abandons its transaction when it loses this race.
            await self._session.execute(_ADD_KEY, values)
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise IdempotencyKeyTaken() from None
            raise

    async def complete(self, order_id: str, outcome: Outcome) -> None:
        t = idempotency_keys
        await self._session.execute(
            update(t)
            .where(t.c.order_id == order_id, t.c.outcome.is_(None))
            .values(outcome=outcome_to_json(outcome))
        )

    async def discard(self, user_id: str, key: str) -> None:
        t = idempotency_keys
        await self._session.execute(delete(t).where(t.c.user_id == user_id, t.c.key == key))

    async def discard_for_order(self, order_id: str) -> None:
        t = idempotency_keys
        await self._session.execute(delete(t).where(t.c.order_id == order_id))

    async def purge(self, before: datetime, limit: int) -> int:
        t = idempotency_keys
        old = select(t.c.user_id, t.c.key).where(t.c.created_at < before).limit(limit)
        doomed = (await self._session.execute(old)).all()
        for user_id, key in doomed:
            await self.discard(user_id, key)
        return len(doomed)


class OrdersUnitOfWork(SqlUnitOfWork):
    """Orders and idempotency keys in one transaction (writers gated: see SqlUnitOfWork)."""

    orders: SqlOrderRepository
    idempotency: SqlIdempotencyRepository

    def _bind(self, session: SqlSession) -> None:
        self.orders = SqlOrderRepository(session)
        self.idempotency = SqlIdempotencyRepository(session)
