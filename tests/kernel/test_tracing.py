"""Tracing through the standard OTEL_* variables: one order is one trace through orders,
products and inventory (W3C traceparent on peer calls), units of work are spans of it, and
every JSON log line of the order carries its trace id."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from retail.categories.config import CategoriesSettings
from retail.categories.main import create_app as create_categories_app
from retail.kernel.settings import SettingsError
from tests.kernel.shop import Shop, open_shop
from tests.support import make_settings, serve

Traced = tuple[Shop, InMemorySpanExporter]
JSON_LOGS: dict[str, Any] = {"log_format": "json", "log_level": "INFO"}


@pytest.fixture
async def traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Traced]:
    """The shop with OTEL_TRACES_EXPORTER=console, each service's spans also kept in memory."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    exporter = InMemorySpanExporter()
    async with open_shop(tmp_path, **JSON_LOGS) as shop:
        for app in shop.apps.values():
            app.state.tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
        yield shop, exporter


class JsonLines(logging.Handler):
    """The log lines as the apps' own handler formats them (JSON, with the trace ids)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.getLogger().handlers[0].formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["message"] == "request"]


@contextmanager
def json_lines() -> Iterator[JsonLines]:
    handler, root = JsonLines(), logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def _service(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def _one(spans: list[ReadableSpan], service: str, name: str) -> ReadableSpan:
    (found,) = [s for s in spans if _service(s) == service and s.name == name]
    return found


def _parent(span: ReadableSpan) -> int:
    assert span.parent is not None, span.name
    return span.parent.span_id


def _ids(span: ReadableSpan) -> tuple[str, str]:
    return format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")


async def test_an_order_is_one_trace_through_three_services(traced: Traced) -> None:
    shop, exporter = traced
    pen = await shop.product("Gel pen", stock=5)
    exporter.clear()
    with json_lines() as logged:
        placed = await shop.order(pen, 2)
    assert placed.status_code == 201, placed.text
    spans = list(exporter.get_finished_spans())

    order = _one(spans, "retail-orders", "POST /api/orders")
    assert order.kind == SpanKind.SERVER
    assert order.parent is None
    assert order.attributes is not None
    assert order.attributes["http.response.status_code"] == 201
    assert {s.context.trace_id for s in spans} == {order.context.trace_id}

    for peer, route in [
        ("products", "POST /internal/products/lookup"),
        ("inventory", "POST /internal/reservations"),
    ]:
        call = _one(spans, "retail-orders", f"POST {peer}")
        assert (call.kind, _parent(call)) == (SpanKind.CLIENT, order.context.span_id)
        served = _one(spans, f"retail-{peer}", route)
        assert (served.kind, _parent(served)) == (SpanKind.SERVER, call.context.span_id)

    units = [s for s in spans if s.name.endswith((" write", " read"))]
    assert {_service(s) for s in units} >= {"retail-orders", "retail-inventory"}
    assert all(s.attributes and s.attributes["db.system"] for s in units)

    access = logged.access()
    paths = {line["path"] for line in access}
    assert {"/api/orders", "/internal/reservations", "/internal/products/lookup"} <= paths
    trace_id = format(order.context.trace_id, "032x")
    assert all(line["trace_id"] == trace_id for line in access)
    (line,) = [line for line in access if line["path"] == "/api/orders"]
    assert (line["trace_id"], line["span_id"]) == _ids(order)


async def test_a_callers_traceparent_is_continued(traced: Traced) -> None:
    shop, exporter = traced
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
    assert (await shop.products.get("/api/products", headers=headers)).status_code == 200
    served = _one(list(exporter.get_finished_spans()), "retail-products", "GET /api/products")
    assert format(served.context.trace_id, "032x") == trace_id
    assert format(_parent(served), "016x") == parent_id


async def test_without_tracing_logs_carry_no_trace_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    app = create_categories_app(make_settings(CategoriesSettings, tmp_path, **JSON_LOGS))
    async with serve(app) as client:
        with json_lines() as logged:
            assert (await client.get("/api/categories")).status_code == 200
        assert app.state.tracing is None
    (line,) = logged.access()
    assert line["path"] == "/api/categories"
    assert "trace_id" not in line


def test_an_unknown_exporter_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(SettingsError, match="zipkin"):
        create_categories_app(make_settings(CategoriesSettings, tmp_path))
