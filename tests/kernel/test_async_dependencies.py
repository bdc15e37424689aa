"""Every route and dependency of every service is `async def`: FastAPI runs a plain `def` in
its thread pool, a thread hop per request for what is mostly an attribute read (measured in
docs/performance.md). Blocking work goes to a worker thread (`anyio.to_thread`) where it is done."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from retail.kernel.settings import SERVICE_PORTS, Settings
from tests.support import make_settings


def runs_on_the_loop(call: Callable[..., Any]) -> bool:
    # Security schemes (HTTPBearer, ...) are instances with an async __call__.
    return any(
        inspect.iscoroutinefunction(c) or inspect.isasyncgenfunction(c)
        for c in (call, type(call).__call__)
    )


def service_app(service: str, data_dir: Path) -> FastAPI:
    main = importlib.import_module(f"retail.{service}.main")
    config = importlib.import_module(f"retail.{service}.config")
    (settings_type,) = (
        value
        for name, value in vars(config).items()
        if isinstance(value, type) and issubclass(value, Settings) and value is not Settings
    )
    app: FastAPI = main.create_app(make_settings(settings_type, data_dir))
    return app


def calls(app: FastAPI) -> Iterator[tuple[str, Callable[..., Any]]]:
    # Included routers are resolved lazily: iter_route_contexts walks into them.
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            pending: list[Dependant] = [route.dependant]
            while pending:
                dependant = pending.pop()
                if dependant.call is not None:
                    yield route.path, dependant.call
                pending.extend(dependant.dependencies)


def blocking() -> int:
    return 1


def test_the_check_sees_a_plain_def() -> None:
    app = FastAPI()

    @app.get("/x")
    async def x(value: Annotated[int, Depends(blocking)]) -> int:
        return value

    assert [path for path, call in calls(app) if not runs_on_the_loop(call)] == ["/x"]


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_every_dependency_is_async(service: str, tmp_path: Path) -> None:
    found = list(calls(service_app(service, tmp_path)))
    assert len(found) > 10
    blocking = [
        f"{path}: {getattr(call, '__qualname__', call)}"
        for path, call in found
        if not runs_on_the_loop(call)
    ]
    assert blocking == []
