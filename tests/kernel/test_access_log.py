"""ACCESS_LOG: a line per request (on), only for error answers (errors), or none (off)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi import APIRouter, FastAPI

from retail.kernel.app import create_service_app
from retail.kernel.settings import Settings
from tests.support import make_settings, serve


class LoggedSettings(Settings):
    service_name: ClassVar[str] = "logged"


def _app(tmp_path: Path, access_log: str, sample_rate: float = 1.0) -> FastAPI:
    router = APIRouter()

    @router.get("/api/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    settings = make_settings(
        LoggedSettings, tmp_path, access_log=access_log, access_log_sample_rate=sample_rate
    )
    return create_service_app(
        settings, title="logged", description="", routers=[router], lifespan=lifespan
    )


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.statuses: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.statuses.append(record.__dict__["status"])


async def _logged_statuses(tmp_path: Path, access_log: str, sample_rate: float = 1.0) -> list[int]:
    lines, access = _Lines(), logging.getLogger("retail.access")
    level = access.level
    access.addHandler(lines)
    access.setLevel(logging.INFO)
    try:
        async with serve(_app(tmp_path, access_log, sample_rate)) as client:
            assert (await client.get("/api/ok")).status_code == 200
            assert (await client.get("/api/missing")).status_code == 404
    finally:
        access.removeHandler(lines)
        access.setLevel(level)
    return lines.statuses


@pytest.mark.parametrize(
    ("access_log", "expected"), [("on", [200, 404]), ("errors", [404]), ("off", [])]
)
async def test_access_log_setting_picks_the_lines(
    tmp_path: Path, access_log: str, expected: list[int]
) -> None:
    assert await _logged_statuses(tmp_path, access_log) == expected


async def test_a_sampled_access_log_still_logs_every_error(tmp_path: Path) -> None:
    """ACCESS_LOG_SAMPLE_RATE=0 keeps none of the answers below 400 and all the others."""
    assert await _logged_statuses(tmp_path, "on", sample_rate=0.0) == [404]
