"""Alembic for the services: bringing a database to head at start-up, and what every
service's `env.py` runs.

At start-up the schema is nearly always at head already. Alembic's machinery (its import
alone pulls in Mako and the DDL support of every dialect: ~0.2 s of CPU and ~10 MiB that a
process would then keep) is loaded only when the version table says there is something to
do. The head is read from the script directory's revision files without importing them.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from sqlalchemy import MetaData

VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps


def upgrade_to_head(connection: Connection, script_location: Path) -> None:
    """Apply the migrations under `script_location` up to head, unless already there."""
    heads = script_heads(script_location)
    if heads is not None and heads == applied_revisions(connection):
        return
    from alembic import command  # here, not at the top: see the module's docstring
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def script_heads(script_location: Path) -> frozenset[str] | None:
    """The revisions no other revision revises; None when a revision file does not say
    plainly what it is (then Alembic decides)."""
    revised: set[str] = set()
    revisions: set[str] = set()
    for path in sorted((script_location / "versions").glob("*.py")):
        found = _revision_of(path.read_text(encoding="utf-8"))
        if found is None:
            return None
        revision, down = found
        revisions.add(revision)
        revised.update(down)
    return frozenset(revisions - revised) if revisions else None


def _revision_of(source: str) -> tuple[str, frozenset[str]] | None:
    """`revision` and `down_revision` of one revision file: literals at its top level."""
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        target, value = _assignment(node)
        if target in {"revision", "down_revision"} and value is not None:
            try:
                values[target] = ast.literal_eval(value)
            except ValueError:
                return None
    revision, down = values.get("revision"), values.get("down_revision", ...)
    if not isinstance(revision, str) or down is ...:
        return None
    if down is None:
        return revision, frozenset()
    if isinstance(down, str):
        return revision, frozenset({down})
    if isinstance(down, tuple | list) and all(isinstance(d, str) for d in down):
        return revision, frozenset(down)
    return None


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Name):
            return target.id, node.value
    return None, None


def applied_revisions(connection: Connection) -> frozenset[str]:
    """What the version table records (on PostgreSQL, the one the search_path finds)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return frozenset()
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    return frozenset(str(row[0]) for row in rows)


def _run(connection: Connection, metadata: MetaData) -> None:
    from alembic import context

    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str, metadata: MetaData) -> None:
    from retail.kernel.db import create_engine  # db imports this module

    database = create_engine(url)
    try:
        await database.run_sync(lambda connection: _run(connection, metadata))
    finally:
        await database.dispose()


def run_env(metadata: MetaData) -> None:
    """The body of every service's env.py: on the connection `upgrade_to_head` passes, or,
    for `alembic` on the command line, on a fresh engine from `sqlalchemy.url`."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection, metadata)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url (alembic -x or alembic.ini) to run migrations")
    asyncio.run(_run_from_url(url, metadata))
