"""A service loads what it and its back end use, and nothing else (issue 12).

Every module a process imports stays resident for its life: PyMongo in a service on SQL,
boto3 without an S3 bucket, Alembic once the schema is at head, Pillow before any image is
uploaded, the search engine's libraries outside search. Each service is imported and started
on SQLite in a fresh interpreter, and what it then holds is compared with what it may hold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from retail.kernel.settings import SERVICE_PORTS
from tests.support import SECRET

# Never on SQL, whatever the service.
NOT_ON_SQL = {"pymongo", "bson", "motor"}
# Loaded by the one code path that needs them, never by importing or starting a service.
NOT_AT_START = {"boto3", "botocore", "s3transfer", "PIL", "numpy", "scipy", "bm25s"}
# httpx is the tests' transport to a peer (kernel/http.py); peers are called with aiohttp.
# Where its command line's libraries are installed it loads them too (rich, pygments).
NOT_AT_START |= {"httpx", "rich", "pygments"}
SEARCH_ENGINE = {"tantivy", "rapidfuzz"}
# SQLAlchemy's asyncio extension and its ORM: the PostgreSQL adapter's (kernel/postgres.py).
NOT_ON_SQLITE = {"sqlalchemy.orm", "sqlalchemy.ext"}
# Tracing is off unless OTEL_TRACES_EXPORTER names an exporter (kernel/tracing.py). The
# OpenTelemetry API itself is always loaded: FastAPI imports it.
TRACING = {"opentelemetry.sdk", "opentelemetry.exporter"}

PROBE = """
import asyncio, importlib, json, sys

def name_of(module):
    parts = module.split(".")
    if parts[0] == "opentelemetry" or parts[:2] in (["sqlalchemy", "orm"], ["sqlalchemy", "ext"]):
        return ".".join(parts[:2])
    return parts[0]

def loaded():
    return sorted({name_of(module) for module in sys.modules})

mains = [importlib.import_module(f"retail.{name}.main") for name in sys.argv[1:]]
imported = loaded()

async def start_and_stop():
    for main in mains:
        app = main.create_app()
        async with app.router.lifespan_context(app):
            pass

asyncio.run(start_and_stop())
print(json.dumps({"imported": imported, "started": loaded()}))
"""


def _probe(
    data_dir: Path, *services: str, extra_env: dict[str, str] | None = None
) -> dict[str, set[str]]:
    """What a fresh interpreter holds after importing the services, and after starting and
    stopping them one after the other."""
    env = {
        **(extra_env or {}),
        "DATA_DIR": str(data_dir),
        "JWT_SECRET_KEY": SECRET,
        "LOG_LEVEL": "ERROR",
        "FOLLOW_FEEDS": "false",
        "RECOVER_PENDING": "false",
        "RETAIL_ENV": "test",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *services],
        env=env,
        cwd=data_dir,  # no .env file is read from the checkout
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {stage: set(modules) for stage, modules in found.items()}


@pytest.fixture(scope="module")
def at_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose databases were migrated by an earlier start, as on every start but
    the first."""
    data_dir = tmp_path_factory.mktemp("data")
    _probe(data_dir, *SERVICE_PORTS)
    return data_dir


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_a_service_loads_only_what_it_uses(service: str, at_head: Path) -> None:
    loaded = _probe(at_head, service)
    forbidden = NOT_ON_SQL | NOT_ON_SQLITE | NOT_AT_START | TRACING | {"alembic", "mako"}
    assert "fastapi" in loaded["imported"]  # the probe sees what is loaded
    if service == "search":
        assert loaded["started"] >= SEARCH_ENGINE
    else:
        forbidden |= SEARCH_ENGINE
    assert loaded["started"] & forbidden == set()


def test_the_first_start_migrates_with_alembic(tmp_path: Path) -> None:
    """Alembic is only skipped when there is nothing to do: a new database needs it."""
    loaded = _probe(tmp_path, "categories")
    assert "alembic" not in loaded["imported"]
    assert "alembic" in loaded["started"]


def test_tracing_loads_opentelemetry_only_when_asked_for(at_head: Path) -> None:
    loaded = _probe(at_head, "categories", extra_env={"OTEL_TRACES_EXPORTER": "otlp"})
    assert loaded["started"] >= TRACING
