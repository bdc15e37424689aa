"""Helpers every test layer shares: settings for a temporary data dir, tokens, an app client."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from retail.kernel.security import Role, TokenCodec
from retail.kernel.settings import Settings

SECRET = "test-signing-secret-that-is-long-enough-for-hs256-0123456789"
# Set TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test to run the suites on
# PostgreSQL; conftest.py then creates a database for the run and names it here.
TEST_DATABASE_ENV = "TEST_DATABASE_URL"
RUN_DATABASE_ENV = "RETAIL_TEST_RUN_DATABASE_URL"
S = TypeVar("S", bound=Settings)

tokens = TokenCodec(SECRET)


def database_overrides(data_dir: Path) -> dict[str, Any]:
    """On PostgreSQL runs: the run's database, and a schema prefix per data dir, so that
    settings made twice for one data dir (a restart, a second process) share their data."""
    url = os.environ.get(RUN_DATABASE_ENV)
    if not url:
        return {}
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return {"database_url": url, "database_schema_prefix": f"t{digest}_"}


def make_settings(cls: type[S], data_dir: Path, **overrides: Any) -> S:
    """Settings for a test: own data dir, a fixed secret, nothing read from the environment."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "jwt_secret_key": SECRET,
        "log_format": "text",
        "log_level": "WARNING",
        "retail_env": "test",
        **database_overrides(data_dir),
        **overrides,
    }
    return cls(_env_file=None, **values)


def bearer(user_id: str = "user-1", role: Role = "customer") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue_access(user_id, role)}"}


def admin_headers() -> dict[str, str]:
    return bearer("admin-1", "admin")


def service_headers(caller: str = "tests") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue_service(caller)}"}


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, behind an httpx client speaking ASGI."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def assert_error(response: httpx.Response, status: int, error_code: str | None = None) -> None:
    """The wire error format, everywhere: status_code, error_code, message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status
    assert isinstance(body["message"], str)
    assert body["message"]
    if error_code is not None:
        assert body["error_code"] == error_code, body
    assert "Traceback" not in response.text
