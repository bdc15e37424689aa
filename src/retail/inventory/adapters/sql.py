"""SQL adapter: tables, the repositories (domain objects in and out), the unit of work.

Stock only moves through single conditional UPDATEs whose `rows affected` decide; the
CHECK (stock >= 0) is the last line of defence should any write ever get that wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from retail.inventory.domain import Movement, Page, Reservation, ReservationLine, StockLevel
from retail.inventory.exceptions import ReservationExists
from retail.kernel.db import (
    SqlSession,
    SqlUnitOfWork,
    UtcDateTime,
    is_unique_violation,
    rows_affected,
)
from retail.kernel.events import SqlCursorStore, SqlEventLog, cursor_table, outbox_table
from retail.kernel.prepared import Prepared

metadata = MetaData()

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("product_id", String(64), primary_key=True),
    Column("title", Text, nullable=False),
    Column("category_id", String(64), nullable=True),
    Column("stock", Integer, nullable=False),
    Column("low_stock_threshold", Integer, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    CheckConstraint("stock >= 0", name="ck_stock_levels_stock_not_negative"),
    CheckConstraint(
        "low_stock_threshold IS NULL OR low_stock_threshold >= 0",
        name="ck_stock_levels_threshold_not_negative",
    ),
    Index("ix_stock_levels_title", "title", "product_id"),
)
stock_movements = Table(
    "stock_movements",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("product_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("before", Integer, nullable=False),
    Column("after", Integer, nullable=False),
    Column("change", Integer, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("order_id", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_stock_movements_product_id", "product_id", "id"),
)
reservations = Table(
    "reservations",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("released_at", UtcDateTime(), nullable=True),
    CheckConstraint("status IN ('reserved', 'released')", name="ck_reservations_status"),
)
reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column(
        "order_id",
        String(64),
        ForeignKey("reservations.order_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("product_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "product_id", name="pk_reservation_lines"),
    CheckConstraint("quantity > 0", name="ck_reservation_lines_quantity_positive"),
)
outbox = outbox_table(metadata)
feed_cursors = cursor_table(metadata)


# The reservation path's statements, built once (`Prepared`: see retail.kernel.prepared).
# Bind names differ from column names, which SQLAlchemy keeps for INSERT/UPDATE values.
_LEVEL = Prepared(select(stock_levels).where(stock_levels.c.product_id == bindparam("p_id")))
_STOCK = Prepared(
    select(stock_levels.c.stock).where(stock_levels.c.product_id == bindparam("p_id"))
)
_TAKE = Prepared(
    update(stock_levels)
    .where(
        stock_levels.c.product_id == bindparam("p_id"),
        stock_levels.c.stock >= bindparam("p_quantity"),
    )
    .values(stock=stock_levels.c.stock - bindparam("p_quantity"), updated_at=bindparam("p_now"))
    # The level it left, in the same round trip (SQLite 3.35+ and PostgreSQL): no SELECT.
    .returning(stock_levels.c.stock)
)
_ADD_MOVEMENT = Prepared(insert(stock_movements))
_ADD_RESERVATION = Prepared(insert(reservations))
_ADD_RESERVATION_LINES = Prepared(insert(reservation_lines))
_RESERVATION = Prepared(select(reservations).where(reservations.c.order_id == bindparam("p_order")))
_RESERVATION_LINES = Prepared(
    select(reservation_lines.c.product_id, reservation_lines.c.quantity)
    .where(reservation_lines.c.order_id == bindparam("p_order"))
    .order_by(reservation_lines.c.product_id)
)


# Bound parameters per IN list: well under every back end's limit.
_IN_CHUNK = 500


def _movement_row(movement: Movement) -> dict[str, Any]:
    # Spelled out, not `asdict`: that deep-copies every field, a real share of a reservation.
    # No id: the database numbers movements, and that is their order.
    return {
        "product_id": movement.product_id,
        "kind": movement.kind,
        "before": movement.before,
        "after": movement.after,
        "change": movement.change,
        "reason": movement.reason,
        "actor": movement.actor,
        "order_id": movement.order_id,
        "created_at": movement.created_at,
    }


def _level(row: RowMapping) -> StockLevel:
    return StockLevel(**row)


def _movement(row: RowMapping) -> Movement:
    # `change` is stored for readers of the table; the domain derives it.
    return Movement(**{key: value for key, value in row.items() if key != "change"})


class SqlStockRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, level: StockLevel) -> bool:
        if await self.get(level.product_id) is not None:
            return False
        await self._session.execute(insert(stock_levels).values(asdict(level)))
        return True

    async def add_many(self, levels: Sequence[StockLevel]) -> list[StockLevel]:
        wanted = {level.product_id: level for level in reversed(levels)}  # the first of each
        ids = list(wanted)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            known = await self._session.scalars(
                select(stock_levels.c.product_id).where(stock_levels.c.product_id.in_(chunk))
            )
            for product_id in known:
                wanted.pop(product_id, None)
        new = [level for level in levels if wanted.get(level.product_id) is level]
        if new:
            await self._session.execute(insert(stock_levels), [asdict(level) for level in new])
        return new

    async def get(self, product_id: str) -> StockLevel | None:
        result = await self._session.execute(_LEVEL, {"p_id": product_id})
        row = result.mappings().first()
        return _level(row) if row else None

    async def page(self, *, low_stock: int | None, offset: int, limit: int) -> Page[StockLevel]:
        condition: ColumnElement[bool] = true()
        if low_stock is not None:
            own = func.coalesce(stock_levels.c.low_stock_threshold, low_stock)
            condition = stock_levels.c.stock <= own
        total = await self._session.scalar(
            select(func.count()).select_from(stock_levels).where(condition)
        )
        rows = await self._session.execute(
            select(stock_levels)
            .where(condition)
            .order_by(stock_levels.c.title, stock_levels.c.product_id)
            .offset(offset)
            .limit(limit)
        )
        return Page([_level(row) for row in rows.mappings()], int(total or 0))

    async def describe(
        self, product_id: str, title: str, category_id: str | None, now: datetime
    ) -> bool:
        return await self._update(product_id, title=title, category_id=category_id, updated_at=now)

    async def compare_and_set(
        self, product_id: str, expected: int, stock: int, now: datetime
    ) -> bool:
        return await self._update(
            product_id, stock_levels.c.stock == expected, stock=stock, updated_at=now
        )

    async def set_threshold(self, product_id: str, threshold: int | None) -> None:
        await self._update(product_id, low_stock_threshold=threshold)

    async def decrement(self, product_id: str, quantity: int, now: datetime) -> int | None:
        values = {"p_id": product_id, "p_quantity": quantity, "p_now": now}
        left = (await self._session.execute(_TAKE, values)).first()
        return None if left is None else int(left[0])

    async def increment(self, product_id: str, quantity: int, now: datetime) -> int | None:
        given = await self._update(
            product_id, stock=stock_levels.c.stock + quantity, updated_at=now
        )
        return await self._stock_of(product_id) if given else None

    async def remove(self, product_id: str) -> bool:
        result = await self._session.execute(
            delete(stock_levels).where(stock_levels.c.product_id == product_id)
        )
        return rows_affected(result) > 0

    async def _update(self, product_id: str, *conditions: Any, **values: Any) -> bool:
        """One conditional UPDATE; whether it matched a row is the answer."""
        result = await self._session.execute(
            update(stock_levels)
            .where(stock_levels.c.product_id == product_id, *conditions)
            .values(**values)
        )
        return rows_affected(result) == 1

    async def _stock_of(self, product_id: str) -> int | None:
        # Read after our own write: the row is write-locked by this transaction, so this
        # is exactly the value our UPDATE left.
        stock = await self._session.scalar(_STOCK, {"p_id": product_id})
        return None if stock is None else int(stock)


class SqlMovementRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, movement: Movement) -> None:
        await self._session.execute(_ADD_MOVEMENT, _movement_row(movement))

    async def add_many(self, movements: Sequence[Movement]) -> None:
        if movements:
            await self._session.execute(_ADD_MOVEMENT, [_movement_row(m) for m in movements])

    async def page(self, product_id: str, *, offset: int, limit: int) -> Page[Movement]:
        mine = stock_movements.c.product_id == product_id
        total = await self._session.scalar(
            select(func.count()).select_from(stock_movements).where(mine)
        )
        rows = await self._session.execute(
            select(stock_movements)
            .where(mine)
            .order_by(stock_movements.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return Page([_movement(row) for row in rows.mappings()], int(total or 0))


class SqlReservationRepository:
    def __init__(self, session: SqlSession) -> None:
        self._session = session

    async def add(self, reservation: Reservation) -> None:
        try:
            await self._session.execute(
                _ADD_RESERVATION,
                {
                    "order_id": reservation.order_id,
                    "status": reservation.status,
                    "created_at": reservation.created_at,
                },
            )
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise ReservationExists() from None
            raise
        order_id = reservation.order_id
        rows = [
            {"order_id": order_id, "product_id": line.product_id, "quantity": line.quantity}
            for line in reservation.lines
        ]
        if rows:
            await self._session.execute(_ADD_RESERVATION_LINES, rows)

    async def get(self, order_id: str) -> Reservation | None:
        found = await self._session.execute(_RESERVATION, {"p_order": order_id})
        row = found.mappings().first()
        if row is None:
            return None
        lines = await self._session.execute(_RESERVATION_LINES, {"p_order": order_id})
        return Reservation(
            order_id=row["order_id"],
            status=row["status"],
            lines=tuple(ReservationLine(p, q) for p, q in lines),
            created_at=row["created_at"],
        )

    async def mark_released(self, order_id: str, now: datetime) -> bool:
        result = await self._session.execute(
            update(reservations)
            .where(reservations.c.order_id == order_id, reservations.c.status == "reserved")
            .values(status="released", released_at=now)
        )
        return rows_affected(result) == 1


class InventoryUnitOfWork(SqlUnitOfWork):
    stock: SqlStockRepository
    movements: SqlMovementRepository
    reservations: SqlReservationRepository
    cursors: SqlCursorStore
    events: SqlEventLog

    def _bind(self, session: SqlSession) -> None:
        self.stock = SqlStockRepository(session)
        self.movements = SqlMovementRepository(session)
        self.reservations = SqlReservationRepository(session)
        self.cursors = SqlCursorStore(session, feed_cursors)
        self.events = SqlEventLog(session, outbox)
