"""Statements built once and run on SQLite without SQLAlchemy's per-call machinery.

SQLAlchemy Core spends most of an indexed lookup's time on the statement, not in SQLite:
building the expression, its cache key, the execution context and the result's metadata
(measured: ~0.3 ms a call on this machine against ~0.02 ms for sqlite3 itself). A hot
statement is therefore built once, at import, with `bindparam`s for what varies, and wrapped
in `Prepared`. On SQLite it is compiled once per set of parameter names into a `Plan`: the
SQL text, how each value is bound, how each column is read back. A call is then sqlite3's
`execute` plus the same bind and result processors SQLAlchemy would apply, and the answer is
an ordinary SQLAlchemy `Result`. On PostgreSQL the same plan (SQL with `$n` parameters) runs
on the unit's asyncpg connection through SQLAlchemy's own adapter, skipping the same per-call
machinery and its greenlet bridge (kernel/postgres.py). For anything a plan cannot express
(expanding IN, Python-side defaults), the statement goes through SQLAlchemy as usual.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

logger = logging.getLogger("retail.db")

Params = Mapping[str, Any]
# What a statement answers: rows of any shape (SQLAlchemy 2.1 types a row's columns).
Rows = Result[*tuple[Any, ...]]
_Binder = tuple[str | None, Any, Callable[[Any], Any] | None]


class Prepared:
    """A statement built once, to be run many times with different parameters."""

    __slots__ = ("_plans", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        # (dialect name, parameter names) -> plan, or None when SQLAlchemy must run it
        self._plans: dict[tuple[str, frozenset[str]], Plan | None] = {}

    def plan(self, dialect: Dialect, names: frozenset[str]) -> Plan | None:
        key = (dialect.name, names)
        try:
            return self._plans[key]
        except KeyError:
            plan = self._plans[key] = Plan.compile(self.statement, dialect, names)
            return plan

    def plan_for(
        self, dialect: Dialect, parameters: Params | Sequence[Params] | None
    ) -> Plan | None:
        """The plan for one call's parameters (a batch's first row names them all)."""
        first = parameters[0] if isinstance(parameters, Sequence) else parameters
        return self.plan(dialect, frozenset(first or ()))


class CursorRows(IteratorResult[*tuple[Any, ...]]):
    """A `Result` over rows already fetched, with the `rowcount` DML callers read."""

    rowcount: int


# The parameter styles a plan can bind: sqlite3's and asyncpg's (as SQLAlchemy renders it).
_POSITIONAL = frozenset({"qmark", "numeric_dollar"})


class Plan:
    """One compiled form of a prepared statement: its SQL, binders and result readers."""

    __slots__ = ("_binders", "_columns", "_described", "_metadata", "dialect", "sql")

    def __init__(
        self,
        sql: str,
        binders: list[_Binder],
        metadata: SimpleResultMetaData | None,
        *,
        dialect: Dialect,
        columns: list[tuple[str, Any]] | None = None,
    ) -> None:
        self.sql = sql
        self.dialect = dialect
        self._binders = binders
        self._metadata = metadata
        self._columns = columns or []
        # On PostgreSQL a column's reader may depend on the type the server reports for it
        # (numeric comes back as Decimal, float or int): built at the first answer.
        self._described: SimpleResultMetaData | None = None

    @classmethod
    def compile(cls, statement: Executable, dialect: Dialect, names: frozenset[str]) -> Plan | None:
        compiled = statement.compile(dialect=dialect, column_keys=sorted(names))  # type: ignore[attr-defined]
        assert isinstance(compiled, SQLCompiler)
        if dialect.paramstyle not in _POSITIONAL or compiled.positiontup is None:
            return None
        if compiled.insert_prefetch or compiled.update_prefetch:
            return None  # Python-side defaults: SQLAlchemy computes them per call
        binders: list[_Binder] = []
        processors = compiled._bind_processors
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            if bind.expanding or bind.callable is not None:
                return None
            if bind.key not in names and bind.required:
                return None  # SQLAlchemy says which value is missing
            key = bind.key if bind.key in names else None
            processor = processors.get(name)
            if processor is not None and not callable(processor):
                return None  # a processor per element of a tuple: not for this path
            binders.append((key, bind.value, processor))
        metadata = None
        columns = [(column.keyname, column.type) for column in compiled._result_columns]
        if columns and dialect.paramstyle == "qmark":  # sqlite3 reports no column types
            readers = [kind._cached_result_processor(dialect, None) for _, kind in columns]
            metadata = SimpleResultMetaData([key for key, _ in columns], _processors=readers)
        return cls(compiled.string, binders, metadata, dialect=dialect, columns=columns)

    def bind(self, params: Params | None) -> list[Any]:
        given = params or _NOTHING
        values = []
        for key, default, processor in self._binders:
            value = default if key is None else given[key]
            values.append(value if processor is None else processor(value))
        return values

    def run(
        self, connection: sqlite3.Connection, params: Params | Sequence[Params] | None
    ) -> CursorRows:
        """Run on a sqlite3 connection; errors arrive as SQLAlchemy's, as callers expect."""
        try:
            if isinstance(params, Sequence):
                cursor = connection.executemany(self.sql, [self.bind(p) for p in params])
            else:
                cursor = connection.execute(self.sql, self.bind(params))
            rows = cursor.fetchall() if self._metadata is not None else []
        except sqlite3.Error as error:
            raise sa_exc.DBAPIError.instance(
                self.sql, None, error, sqlite3.Error, hide_parameters=True
            ) from error
        return _cursor_rows(self._metadata or _NO_COLUMNS, rows, cursor.rowcount)

    def answer(
        self, rows: Sequence[Any], rowcount: int, description: Sequence[Sequence[Any]] | None
    ) -> CursorRows:
        """Rows a driver already fetched (asyncpg's records) as the `Result` SQLAlchemy would
        give; `description` is the DB-API's, whose second field is the column's type code."""
        if not self._columns:  # as on SQLite: no rows for a statement of unknown columns
            return _cursor_rows(_NO_COLUMNS, (), rowcount)
        return _cursor_rows(self._described or self._describe(description), rows, rowcount)

    def _describe(self, description: Sequence[Sequence[Any]] | None) -> SimpleResultMetaData:
        codes = [entry[1] for entry in description or ()]
        if len(codes) != len(self._columns):
            codes = [None] * len(self._columns)
        readers = [
            kind._cached_result_processor(self.dialect, code)
            for (_, kind), code in zip(self._columns, codes, strict=True)
        ]
        keys = [key for key, _ in self._columns]
        self._described = SimpleResultMetaData(keys, _processors=readers)
        return self._described


def _cursor_rows(metadata: SimpleResultMetaData, rows: Sequence[Any], rowcount: int) -> CursorRows:
    result = CursorRows(metadata, iter(rows))
    result.rowcount = rowcount
    return result


_NO_COLUMNS = SimpleResultMetaData([])
_NOTHING: Params = {}


def run_after_commit(callbacks: list[Callable[[], None]]) -> None:
    """What a unit of work asked to run once its commit has landed (e.g. waking held feed
    reads), in order; a failing one is logged and does not undo the commit."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            logger.exception("after-commit callback failed")
    callbacks.clear()
