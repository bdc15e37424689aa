"""Start-up migrations: Alembic runs only when the version table is behind the scripts."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine

from retail.kernel import migrations


def _scripts(service: str) -> Path:
    return Path(__file__).parents[2] / "src" / "retail" / service / "migrations"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")


def _alembic(connection: Connection, service: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_scripts(service)))
    config.attributes["connection"] = connection
    return config


@pytest.mark.parametrize("service", ["auth", "products", "categories", "inventory", "orders"])
def test_the_heads_read_from_the_files_are_alembics(service: str) -> None:
    alembic_heads = ScriptDirectory(str(_scripts(service))).get_heads()
    assert migrations.script_heads(_scripts(service)) == frozenset(alembic_heads)


def test_a_new_database_is_migrated_and_recorded_at_head(engine: Engine) -> None:
    with engine.begin() as connection:
        migrations.upgrade_to_head(connection, _scripts("auth"))
        assert migrations.applied_revisions(connection) == migrations.script_heads(_scripts("auth"))
        assert inspect(connection).has_table("cart_items")


def test_at_head_alembic_is_not_run(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with engine.begin() as connection:
        migrations.upgrade_to_head(connection, _scripts("auth"))

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Alembic ran on a database at head")

    monkeypatch.setattr(command, "upgrade", refuse)
    with engine.begin() as connection:
        migrations.upgrade_to_head(connection, _scripts("auth"))


def test_a_database_behind_is_brought_to_head(engine: Engine) -> None:
    with engine.begin() as connection:
        command.upgrade(_alembic(connection, "auth"), "0001")
        assert not inspect(connection).has_table("cart_items")
    with engine.begin() as connection:
        migrations.upgrade_to_head(connection, _scripts("auth"))
        assert inspect(connection).has_table("cart_items")
        assert migrations.applied_revisions(connection) == frozenset({"0003"})


def test_a_version_the_scripts_do_not_know_is_left_to_alembic(engine: Engine) -> None:
    """A database from a newer release is not silently taken for one at head."""
    with engine.begin() as connection:
        migrations.upgrade_to_head(connection, _scripts("categories"))
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with engine.begin() as connection, pytest.raises(Exception, match="ffff"):
        migrations.upgrade_to_head(connection, _scripts("categories"))


def _write(directory: Path, name: str, body: str) -> None:
    (directory / "versions").mkdir(parents=True, exist_ok=True)
    (directory / "versions" / name).write_text(body)


def test_merges_and_branches_give_every_head(tmp_path: Path) -> None:
    _write(tmp_path, "a.py", 'revision = "a"\ndown_revision = None\n')
    _write(tmp_path, "b.py", 'revision: str = "b"\ndown_revision: str | None = "a"\n')
    _write(tmp_path, "c.py", 'revision = "c"\ndown_revision = "a"\n')
    assert migrations.script_heads(tmp_path) == frozenset({"b", "c"})
    _write(tmp_path, "d.py", 'revision = "d"\ndown_revision = ("b", "c")\n')
    assert migrations.script_heads(tmp_path) == frozenset({"d"})


@pytest.mark.parametrize(
    "body",
    [
        "revision = make_id()\ndown_revision = None\n",
        'revision = "x"\n',  # no down_revision: not a revision file we understand
        "down_revision = None\n",
    ],
)
def test_a_file_that_does_not_say_plainly_leaves_the_decision_to_alembic(
    tmp_path: Path, body: str
) -> None:
    _write(tmp_path, "a.py", 'revision = "a"\ndown_revision = None\n')
    _write(tmp_path, "b.py", body)
    assert migrations.script_heads(tmp_path) is None
